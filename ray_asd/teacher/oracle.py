"""The oracle teacher: a task's programmatic generator standing in for an LLM.

No LLM small enough for a laptop teaches: SmolLM2-135M as a teacher never wrote a new, solvable
problem (measured on this project's 2-core machine), so meaningful laptop experiments run on
verifiable tasks with this teacher. It is charged the tokens an LLM teacher would be charged
for the same two-step prompts and outputs, so budgets in teacher tokens stay comparable across
teachers.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ray_asd.errors import ConfigError
from ray_asd.tasks import Task
from ray_asd.tasks.base import Oracle
from ray_asd.teacher.base import Generated, approximate_tokens
from ray_asd.teacher.prompts import Prompts


@dataclass
class OracleTeacher:
    """Writes and answers questions with ``task.oracle``.

    Attributes:
        count_tokens: how to count tokens (the student's tokenizer in a trial).
        prompts: the templates whose rendered size is charged as prompt tokens.
    """

    count_tokens: Callable[[str], int] = approximate_tokens
    prompts: Prompts = field(default_factory=Prompts)
    model: str = "oracle"

    @property
    def completions(self) -> None:
        """The oracle calls no model, so it cannot judge."""
        return None

    def generate(
        self, task: Task, seed_questions: Sequence[str], seeds: Sequence[int]
    ) -> list[Generated]:
        oracle = _oracle(task)
        items = []
        for seed_question, seed in zip(seed_questions, seeds, strict=True):
            write_cost = self.count_tokens(
                self.prompts.render("write_question", task, seed_question)
            )
            question = oracle.write(seed_question, random.Random(seed))
            if question is None:
                items.append(Generated(None, None, write_cost, 0, calls=1))
                continue
            answered = self._answer(task, question)
            items.append(
                Generated(
                    question,
                    answered.answer,
                    write_cost + answered.prompt_tokens,
                    self.count_tokens(question) + answered.completion_tokens,
                    calls=2,
                )
            )
        return items

    def answer(self, task: Task, questions: Sequence[str], seeds: Sequence[int]) -> list[Generated]:
        _oracle(task)
        return [self._answer(task, question) for question in questions]

    def _answer(self, task: Task, question: str) -> Generated:
        """``task.oracle.answer``, charged as an LLM's answer_question call."""
        answer = _oracle(task).answer(question)
        return Generated(
            question,
            answer,
            self.count_tokens(self.prompts.render("answer_question", task, question)),
            self.count_tokens(answer or ""),
            calls=1,
        )


def _oracle(task: Task) -> Oracle:
    if task.oracle is None:
        raise ConfigError(f"teacher oracle: task {task.name!r} has no programmatic oracle")
    return task.oracle
