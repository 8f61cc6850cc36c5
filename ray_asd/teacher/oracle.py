"""The oracle teacher: a task's programmatic generator standing in for an LLM.

No small local LLM can teach (STACK-NOTES), so meaningful laptop experiments run on verifiable
tasks with this teacher. It is charged the tokens an LLM teacher would be charged for the same
prompts and outputs, so budgets in teacher tokens stay comparable across teachers.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ray_asd.errors import ConfigError
from ray_asd.tasks import Task
from ray_asd.teacher.base import TeacherOutput, approximate_tokens
from ray_asd.teacher.prompts import Prompts


@dataclass
class OracleTeacher:
    """Writes and answers questions with ``task.oracle``.

    Attributes:
        count_tokens: how to count tokens (the student's tokenizer in a trial).
        prompts: the templates whose rendered size is charged as prompt tokens.
    """

    count_tokens: Callable[[str], int] = approximate_tokens
    prompts: Prompts = field(default_factory=Prompts.load)
    model: str = "oracle"

    @staticmethod
    def _oracle(task: Task):
        if task.oracle is None:
            raise ConfigError(f"teacher oracle: task {task.name!r} has no programmatic oracle")
        return task.oracle

    def _output(self, prompt: str, text: str | None) -> TeacherOutput:
        raw = text or ""
        return TeacherOutput(text, raw, self.count_tokens(prompt), self.count_tokens(raw))

    def write_questions(
        self, task: Task, seed_questions: Sequence[str], seeds: Sequence[int]
    ) -> list[TeacherOutput]:
        oracle = self._oracle(task)
        return [
            self._output(
                self.prompts.for_writing(task, question),
                oracle.write(question, random.Random(seed)),
            )
            for question, seed in zip(seed_questions, seeds, strict=True)
        ]

    def answer_questions(
        self, task: Task, questions: Sequence[str], seeds: Sequence[int]
    ) -> list[TeacherOutput]:
        oracle = self._oracle(task)
        return [
            self._output(self.prompts.for_answering(task, question), oracle.answer(question))
            for question, _ in zip(questions, seeds, strict=True)
        ]
