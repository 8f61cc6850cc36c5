"""The teacher protocol: write a new question from a seed, then answer a question.

A teacher returns one TeacherOutput per request, in request order, with the tokens the call
cost (the paper compares strategies at equal teacher compute). ``text`` is the parsed content,
None when the completion could not be parsed (the filters count that as ``unparsable``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ray_asd.tasks import Task


@dataclass(frozen=True)
class TeacherOutput:
    text: str | None
    raw: str
    prompt_tokens: int
    completion_tokens: int


class Teacher(Protocol):
    """Two-step generation (DESIGN section 2, step 4).

    ``seeds`` holds one integer per request: sampling is reproducible per request, and a cache
    can key on it, so a resumed trial asks for exactly what the uninterrupted one asked for.
    """

    @property
    def model(self) -> str:
        """The teacher's model name, recorded in every synthetic item's provenance."""
        ...

    def write_questions(
        self, task: Task, seed_questions: Sequence[str], seeds: Sequence[int]
    ) -> list[TeacherOutput]: ...

    def answer_questions(
        self, task: Task, questions: Sequence[str], seeds: Sequence[int]
    ) -> list[TeacherOutput]: ...


_TOKEN = re.compile(r"\w+|[^\w\s]")


def approximate_tokens(text: str) -> int:
    """Words plus punctuation marks: a tokenizer-free stand-in where no tokenizer applies."""
    return len(_TOKEN.findall(text))
