"""The Task: what a seed row is, how it is prompted, and how an answer to it is judged.

A task is a declarative value (as in lm-evaluation-harness): names of its data columns, a
default hub dataset, and pure functions for final-answer extraction and checking. Loading lives
in `ray_asd.tasks.loading`; the built-in tasks in `ray_asd.tasks.builtin`.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ray_asd.tasks.bounds import MAX_OUTPUT_CHARS
from ray_asd.tasks.numeric import NEW_QUESTION

# Every loaded table has these columns, in this order (DESIGN section 3: tables move as columns).
TABLE_COLUMNS = ("id", "source_row", "question", "answer")
# DIFFICULTY (`ray_asd.columns`): a further column where the task knows each row's difficulty
# (higher = harder): the `difficulty` strategy (the positive control) and the per-difficulty
# metrics read it.


@dataclass(frozen=True)
class HubDataset:
    """Where a task's data lives on the Hugging Face hub by default."""

    path: str
    config: str | None = None


@dataclass(frozen=True)
class Oracle:
    """A task's programmatic teacher, for verifiable and procedural tasks.

    Attributes:
        write: ``(seed question, rng) -> new question`` of the seed's kind, or None.
        answer: ``question -> reference answer`` in the task's format, or None.
    """

    write: Callable[[str, random.Random], str | None]
    answer: Callable[[str], str | None]


@dataclass(frozen=True)
class Task:
    """A seed task.

    Attributes:
        name: registry name, e.g. ``"gsm8k"``.
        version: bumped whenever extraction or checking changes, so results stay comparable.
        question_column: default name of the question column in source data.
        answer_column: default name of the reference answer column.
        answer_format: one sentence telling a model how to state its final answer; teacher
            prompts include it and the task's extractor reads exactly that format.
        final_pattern: a regular expression for the line that states the final answer
            (``#### 18``, ``Answer: ... = 24``); a generated answer ends with the first such
            line. None where the answer's end cannot be told (MATH boxes intermediate results).
        extract: the final answer of a model output or a reference answer, as a string, or
            None when there is none.
        is_correct: ``(question, output, reference_answer) -> bool``, the task's checker.
        hub: the default hub dataset, if the task has a standard one.
        builtin: ``split -> table``, the task's own data, made without files or network.
        read_file: a task-specific file format (``path -> table``) tried before the generic
            readers, e.g. the Tree-of-Thoughts CSV of Game of 24 which has no answer column.
        verify: ``(question, answer) -> bool``, an independent check that a (synthetic)
            item is self-consistent, for tasks where one exists (Game of 24, arith).
        oracle: the task's programmatic teacher, where it has one.
        prompt_family: the teacher prompt templates written for this kind of task
            (``ray_asd/teacher/prompts/<family>/``).
        difficulty: ``question -> difficulty`` where the question alone tells it (arith: its
            number of operations), for seeds and synthetic items alike; None otherwise.
    """

    name: str
    version: int
    question_column: str
    answer_column: str
    answer_format: str
    final_pattern: str | None
    extract: Callable[[str], str | None]
    is_correct: Callable[[str, str, str], bool]
    hub: HubDataset | None = None
    builtin: Callable[[str], pd.DataFrame] | None = None
    read_file: Callable[[Path], pd.DataFrame | None] | None = None
    verify: Callable[[str, str], bool] | None = None
    oracle: Oracle | None = None
    prompt_family: str = "generic"
    difficulty: Callable[[str], int | None] | None = None

    def cut_after_final(self, text: str) -> str:
        """``text`` without what a model wrote after answering.

        Cuts at the end of the first line matching ``final_pattern`` and before any line
        that starts a new question (``Question:``, ``Problem 2.``): small models often
        ramble on into a new problem with its own final answer, which must not be graded.
        Reads at most MAX_OUTPUT_CHARS (+1, so that an output without a cut stays overlong).
        """
        text = text[: MAX_OUTPUT_CHARS + 1]
        end = len(text)
        rambling = NEW_QUESTION.search(text)
        if rambling is not None:
            end = rambling.start()
        if self.final_pattern is not None:
            final = re.search(self.final_pattern, text[:end], flags=re.MULTILINE | re.IGNORECASE)
            line_end = text.find("\n", final.end()) if final is not None else -1
            if line_end >= 0:
                end = min(end, line_end)
        return text[:end].rstrip()

    def prompt(self, question: str) -> str:
        """The student's prompt for a question: plain text. SmolLM2-135M's chat template did
        not help it (0% on arith either way, measured on 100 problems)."""
        return f"Question: {question}\nAnswer:"


def compare_finals(
    extract: Callable[[str], str | None], equal: Callable[[str, str], bool]
) -> Callable[[str, str, str], bool]:
    """A checker that extracts both final answers and compares them; the question is unused."""

    def is_correct(question: str, output: str, reference: str) -> bool:
        predicted, expected = extract(output), extract(reference)
        return predicted is not None and expected is not None and equal(predicted, expected)

    return is_correct
