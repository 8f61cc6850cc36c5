"""Teacher prompt templates per task family, and parsing of the completions.

Templates are text files with ``{question}`` and ``{answer_format}`` placeholders, in
``prompts/<family>/<step>.txt`` next to this module: the steps are ``write_question`` and
``answer_question`` (two-step generation, DESIGN section 2) and ``one_step`` (question and
answer in one call). A task names its family (math word problems, MATH, Game of 24, logic,
generic); a config may pick another family or replace any step with its own file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from ray_asd.errors import ConfigError
from ray_asd.registry import suggest
from ray_asd.tasks import Task

BUILTIN = Path(__file__).parent / "prompts"
STEPS = ("write_question", "answer_question", "one_step")
PLACEHOLDERS = {"question", "answer_format"}
_FIELD = re.compile(r"(?<!\{)\{(\w*)\}(?!\})")
# A written question ends where a model starts solving it or writing the next one.
_QUESTION_END = re.compile(
    r"\n\s*\n|\n\s*(?:solution|answer|new problem|problem|example)\s*\d*\s*[:.]",
    flags=re.IGNORECASE,
)
# Where a one-step completion's answer starts.
_SOLUTION_START = re.compile(r"^\s*(?:solution|answer)\s*:", flags=re.IGNORECASE | re.MULTILINE)
_PROBLEM_LABEL = re.compile(r"^\s*(?:new\s+)?(?:problem|question)\s*:\s*", flags=re.IGNORECASE)
MAX_QUESTION_CHARS = 2000


def families() -> list[str]:
    return sorted(path.name for path in BUILTIN.iterdir() if path.is_dir())


@cache
def _builtin(family: str, step: str) -> str:
    return (BUILTIN / family / f"{step}.txt").read_text(encoding="utf-8")


def read_template(path: Path, placeholders: frozenset[str] | set[str] = PLACEHOLDERS) -> str:
    """A template file's text.

    Raises:
        ConfigError: the file is missing or uses a placeholder other than ``placeholders``.
    """
    if not path.is_file():
        raise ConfigError(f"prompt template: no such file {path}")
    text = path.read_text(encoding="utf-8")
    unknown = set(_FIELD.findall(text)) - placeholders
    if unknown:
        raise ConfigError(
            f"prompt template {path}: unknown placeholder(s) {sorted(unknown)}; "
            f"use {sorted(placeholders)}"
        )
    return text


@dataclass(frozen=True)
class Prompts:
    """The templates a teacher renders: its task's family, or ``family``, with per-step files
    replacing built-in templates.

    Attributes:
        family: the family for every task (None: each task's own ``prompt_family``).
        files: step -> template text read from a config's file.
    """

    family: str | None = None
    files: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, family: str | None = None, files: Mapping[str, Path | None] | None = None):
        """Built-in templates, any step replaceable by a file.

        Raises:
            ConfigError: an unknown family or step, or a bad template file.
        """
        if family is not None and family not in families():
            raise ConfigError(f"unknown prompt family {family!r}{suggest(family, families())}")
        texts = {}
        for step, path in (files or {}).items():
            if step not in STEPS:
                raise ConfigError(f"unknown prompt step {step!r}{suggest(step, list(STEPS))}")
            if path is not None:
                texts[step] = read_template(path)
        return cls(family, texts)

    def template(self, step: str, task: Task) -> str:
        return self.files.get(step) or _builtin(self.family or task.prompt_family, step)

    def render(self, step: str, task: Task, question: str) -> str:
        # str.replace, not str.format: questions contain braces (LaTeX) that format would parse.
        return (
            self.template(step, task)
            .replace("{question}", question.strip())
            .replace("{answer_format}", task.answer_format)
        )


def parse_question(completion: str) -> str | None:
    """The new question in a completion: its first paragraph, or None if empty or runaway."""
    text = _PROBLEM_LABEL.sub("", completion.strip(), count=1)
    question = _QUESTION_END.split(text, maxsplit=1)[0].strip()
    return question if question and len(question) <= MAX_QUESTION_CHARS else None


def parse_answer(task: Task, completion: str) -> str | None:
    """The answer in a completion, cut after its first final answer; None if empty."""
    answer = task.cut_after_final(completion.strip()).strip()
    return answer or None


def parse_one_step(task: Task, completion: str) -> tuple[str | None, str | None]:
    """(question, answer) of a one-step completion: the problem, then ``Solution:`` and the
    answer. Either is None when missing."""
    parts = _SOLUTION_START.split(completion, maxsplit=1)
    if len(parts) < 2:
        return parse_question(completion), None
    return parse_question(parts[0]), parse_answer(task, parts[1])
