"""Teacher prompt templates: writing a new question from a seed, and answering a question.

Templates are text files with ``{question}`` and ``{answer_format}`` placeholders; the built-in
ones live next to this module and a config may point at its own files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ray_asd.errors import ConfigError
from ray_asd.tasks import Task

BUILTIN = Path(__file__).parent / "prompts"
PLACEHOLDERS = {"question", "answer_format"}
_FIELD = re.compile(r"(?<!\{)\{(\w*)\}(?!\})")
# A written question ends where a model starts solving it or writing the next one.
_QUESTION_END = re.compile(
    r"\n\s*\n|\n\s*(?:solution|answer|new problem|problem|example)\s*\d*\s*[:.]",
    flags=re.IGNORECASE,
)
MAX_QUESTION_CHARS = 2000


@dataclass(frozen=True)
class Prompts:
    """The two templates of two-step generation (DESIGN section 2, step 4)."""

    write_question: str
    answer_question: str

    @classmethod
    def load(
        cls, write_question: Path | None = None, answer_question: Path | None = None
    ) -> Prompts:
        """Built-in templates, each replaceable by a file.

        Raises:
            ConfigError: a file is missing or uses a placeholder other than PLACEHOLDERS.
        """
        texts = {}
        for name, path in (
            ("write_question", write_question),
            ("answer_question", answer_question),
        ):
            path = path or BUILTIN / f"{name}.txt"
            if not path.is_file():
                raise ConfigError(f"prompt template {name}: no such file {path}")
            text = path.read_text(encoding="utf-8")
            unknown = set(_FIELD.findall(text)) - PLACEHOLDERS
            if unknown:
                raise ConfigError(
                    f"prompt template {path}: unknown placeholder(s) {sorted(unknown)}; "
                    f"use {sorted(PLACEHOLDERS)}"
                )
            texts[name] = text
        return cls(**texts)

    def for_writing(self, task: Task, seed_question: str) -> str:
        return _render(self.write_question, seed_question, task)

    def for_answering(self, task: Task, question: str) -> str:
        return _render(self.answer_question, question, task)


def _render(template: str, question: str, task: Task) -> str:
    # str.replace, not str.format: questions contain braces (LaTeX) that format would parse.
    return template.replace("{question}", question.strip()).replace(
        "{answer_format}", task.answer_format
    )


def parse_question(completion: str) -> str | None:
    """The new question in a completion: its first paragraph, or None if empty or runaway."""
    question = _QUESTION_END.split(completion.strip(), maxsplit=1)[0].strip()
    return question if question and len(question) <= MAX_QUESTION_CHARS else None


def parse_answer(task: Task, completion: str) -> str | None:
    """The answer in a completion, cut after its first final answer; None if empty."""
    answer = task.cut_after_final(completion.strip()).strip()
    return answer or None
