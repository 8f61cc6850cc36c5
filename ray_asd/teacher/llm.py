"""LLM teachers: prompts rendered for the task, sent to a completion backend, parsed back.

Two-step generation (the default, DESIGN section 2): one batch of ``write_question`` requests,
then one batch of ``answer_question`` requests for the questions that parsed. One-step: a
single ``one_step`` request per seed returns problem and solution together (half the calls,
but the answer is written by the model that just invented the problem, without a fresh look).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from ray_asd.tasks import Task
from ray_asd.teacher.base import Completion, CompletionBackend, Generated
from ray_asd.teacher.prompts import Prompts, parse_answer, parse_one_step, parse_question

Mode = Literal["two_step", "one_step"]


@dataclass
class LLMTeacher:
    """Renders the task's prompts, completes them with ``completions``, parses the replies.

    Attributes:
        completions: the model (the judge of the judge and lion strategies too, unless the
            config names one of its own).
        prompts: the templates.
        mode: two-step or one-step generation.
    """

    completions: CompletionBackend
    prompts: Prompts
    mode: Mode = "two_step"

    @property
    def model(self) -> str:
        return str(self.completions.identity["model"])

    def generate(
        self, task: Task, seed_questions: Sequence[str], seeds: Sequence[int]
    ) -> list[Generated]:
        if not seed_questions:
            return []
        step = "one_step" if self.mode == "one_step" else "write_question"
        written = self.completions.complete(
            [self.prompts.render(step, task, q) for q in seed_questions], seeds
        )
        if self.mode == "one_step":
            return [_item(w, *parse_one_step(task, w.text)) for w in written]
        questions = [parse_question(w.text) if w.error is None else None for w in written]
        to_answer = [i for i, q in enumerate(questions) if q]
        answered = self._answer(
            task, [questions[i] for i in to_answer], [seeds[i] for i in to_answer]
        )
        answers = dict(zip(to_answer, answered, strict=True))
        items = []
        for i, (w, question) in enumerate(zip(written, questions, strict=True)):
            a = answers.get(i)
            if a is None:
                items.append(_item(w, question, None))
                continue
            answer = parse_answer(task, a.text) if a.error is None else None
            items.append(_item(w, question, answer, a))
        return items

    def answer(self, task: Task, questions: Sequence[str], seeds: Sequence[int]) -> list[Generated]:
        answered = self._answer(task, questions, seeds)
        return [
            _item(a, question, parse_answer(task, a.text) if a.error is None else None)
            for question, a in zip(questions, answered, strict=True)
        ]

    def _answer(
        self, task: Task, questions: Sequence[str], seeds: Sequence[int]
    ) -> list[Completion]:
        prompts = [self.prompts.render("answer_question", task, q) for q in questions]
        return self.completions.complete(prompts, seeds)


def _item(
    written: Completion,
    question: str | None,
    answer: str | None,
    answered: Completion | None = None,
) -> Generated:
    calls = [c for c in (written, answered) if c is not None]
    errors = [c.error for c in calls if c.error is not None]
    return Generated(
        question if written.error is None else None,
        answer,
        sum(c.prompt_tokens for c in calls),
        sum(c.completion_tokens for c in calls),
        calls=len(calls),
        retries=sum(c.retries for c in calls),
        cached=sum(c.cached for c in calls),
        error=errors[0] if errors else None,
    )
