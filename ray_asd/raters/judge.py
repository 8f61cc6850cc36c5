"""The LLM judge: rates answers 1-10 for correctness and reasoning (``judge``, ``lion``).

Any completion backend judges: the teacher's (the experiment's pool) or a judge model of its
own. A reply without a rating is asked again with the reply and a format reminder appended,
which changes the request even for a greedy judge; an answer never rated gets the neutral
rating and is counted. Every call's tokens are charged to the trial as teacher compute.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from ray_asd.config import JudgeConfig
from ray_asd.raters.rating import parse_rating
from ray_asd.teacher import Completion, CompletionBackend
from ray_asd.teacher.prompts import read_template

BUILTIN_PROMPT = Path(__file__).parent / "prompts" / "judge.txt"
PLACEHOLDERS = frozenset({"question", "answer"})
REMINDER = (
    "\n\nYour reply was:\n{reply}\n\nIt ends without a rating. Reply with the verdict line "
    'only: "Rating: N", where N is an integer from 1 to 10.'
)
MAX_REPLY_CHARS = 2000  # of a reply quoted back to the judge
_PLACEHOLDER = re.compile(r"\{(question|answer)\}")


@dataclass(frozen=True)
class Rating:
    """A judge's rating of one answer.

    Attributes:
        value: the rating, or the neutral one when no reply held a rating.
        parsed: whether a reply held a rating.
        prompt_tokens, completion_tokens, calls, cached: what asking cost.
        error: the backend's error for the last request, if it failed for good.
    """

    value: float
    parsed: bool
    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0
    cached: int = 0
    retries: int = 0
    error: str | None = None

    def charged(self, completion: Completion) -> Rating:
        return Rating(
            self.value,
            self.parsed,
            self.prompt_tokens + completion.prompt_tokens,
            self.completion_tokens + completion.completion_tokens,
            self.calls + 1,
            self.cached + completion.cached,
            self.retries + completion.retries,
            completion.error,
        )


@dataclass(frozen=True)
class Judge:
    """Rates (question, answer) pairs through a completion backend.

    Attributes:
        backend: the judge model.
        template: the prompt, with ``{question}`` and ``{answer}``.
        attempts: requests per answer at most (the first plus reminders).
        neutral: the rating of an answer no reply rated.

    Build it with :meth:`load`: its defaults are `ray_asd.config.JudgeConfig`'s.
    """

    backend: CompletionBackend
    template: str
    attempts: int
    neutral: float

    @classmethod
    def load(cls, backend: CompletionBackend, config: JudgeConfig) -> Judge:
        """The judge ``config`` describes, rating through ``backend``.

        Args:
            backend: the judge model (``config.llm``'s pool or backend, or the teacher's).
            config: the template file (None: the built-in one), attempts and neutral rating.

        Raises:
            ConfigError: a missing template file or one with unknown placeholders.
        """
        template = read_template(config.prompt or BUILTIN_PROMPT, PLACEHOLDERS)
        return cls(backend, template, config.attempts, config.neutral)

    def prompt(self, question: str, answer: str) -> str:
        # One pass, not str.format: questions and answers hold braces (LaTeX, sets), and a
        # question's own "{answer}" must stay as it is.
        values = {"question": question.strip(), "answer": answer.strip() or "(no answer)"}
        return _PLACEHOLDER.sub(lambda match: values[match[1]], self.template)

    def rate(
        self, questions: Sequence[str], answers: Sequence[str], seeds: Sequence[int]
    ) -> list[Rating]:
        """One rating per (question, answer); ``seeds`` make sampled judges reproducible."""
        prompts = [self.prompt(q, a) for q, a in zip(questions, answers, strict=True)]
        ratings = [Rating(self.neutral, parsed=False) for _ in prompts]
        requests = list(prompts)
        pending = list(range(len(prompts)))
        for _ in range(self.attempts):
            if not pending:
                break
            replies = self.backend.complete(
                [requests[i] for i in pending], [seeds[i] for i in pending]
            )
            unrated = []
            for i, reply in zip(pending, replies, strict=True):
                value = parse_rating(reply.text) if reply.error is None else None
                ratings[i] = ratings[i].charged(reply)
                if value is not None:
                    ratings[i] = replace(ratings[i], value=value, parsed=True)
                    continue
                unrated.append(i)
                if reply.error is None:  # a failed request is sent again as it was
                    quoted = reply.text.strip()[-MAX_REPLY_CHARS:] or "(empty)"
                    requests[i] = prompts[i] + REMINDER.replace("{reply}", quoted)
            pending = unrated
        return ratings
