"""Raters: models other than the student that rate its answers, as columns of the scored
seed table (DESIGN section 2: ``reward``, ``judge``, ``lion``).

The loop asks for the columns a strategy's scorer reads; the student scoring stage fills in
the student's own (answers, NLLs, gradient embeddings), then :class:`Raters` the rest:

- ``reward``: a reward model's score of (question, student answer);
- ``judge_rating``: an LLM judge's 1-10 rating of the student answer;
- ``lion_gap``: the judge's rating of the teacher's answer to the seed minus its rating of
  the student's (LION's referee). The teacher answers each seed once per trial: that answer
  and its rating are kept in the trial's memo (checkpointed), so later iterations and a
  resumed trial neither ask nor pay for them again. A seed whose teacher answer or its
  rating failed is asked again next iteration and meanwhile gets the middle gap.

LLM calls made here are charged as teacher compute (:class:`RatingCost`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd

from ray_asd.raters.judge import Judge, Rating
from ray_asd.strategies.scorers import JUDGE_RATING, LION_GAP, REWARD
from ray_asd.tasks import Task
from ray_asd.teacher import Generated, Teacher

# (questions, answers) -> one reward each
RewardFn = Callable[[list[str], list[str]], np.ndarray]
RATER_COLUMNS = frozenset({REWARD, JUDGE_RATING, LION_GAP})
JUDGED_COLUMNS = frozenset({JUDGE_RATING, LION_GAP})  # the columns an LLM judge fills in


@dataclass
class RatingCost:
    """What the LLM calls of one rating pass cost (charged to the trial as teacher compute)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0
    cached: int = 0
    retries: int = 0  # transient failures retried by the backend
    unrated: int = 0  # answers the judge never rated: they got the neutral rating
    failed: int = 0  # requests that failed for good

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: RatingCost) -> RatingCost:
        return RatingCost(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def add(self, spent: Sequence[Rating | Generated]) -> None:
        for call in spent:
            self.prompt_tokens += call.prompt_tokens
            self.completion_tokens += call.completion_tokens
            self.calls += call.calls
            self.cached += call.cached
            self.retries += call.retries
            self.failed += call.error is not None
            self.unrated += isinstance(call, Rating) and not call.parsed


@dataclass
class Raters:
    """Fills in rater columns of a scored seed table.

    Attributes:
        task: the trial's task.
        reward: the reward model (None: the ``reward`` column cannot be asked for).
        judge: the LLM judge (``judge_rating``, ``lion_gap``).
        teacher: answers the seeds for ``lion_gap``.
    """

    task: Task
    reward: RewardFn | None = None
    judge: Judge | None = None
    teacher: Teacher | None = None
    producers: dict[str, Callable[..., np.ndarray]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.producers = {
            REWARD: self._reward,
            JUDGE_RATING: self._judge_rating,
            LION_GAP: self._lion_gap,
        }

    def __call__(
        self,
        table: pd.DataFrame,
        columns: Sequence[str],
        memo: dict[str, Any],
        rng: np.random.Generator,
    ) -> tuple[pd.DataFrame, RatingCost]:
        """``table`` (with ``student_answer``) plus the rater columns named in ``columns``.

        Args:
            table: scored seeds, ``id``, ``question`` and ``student_answer`` at least.
            columns: the columns wanted; those that are not rater columns are ignored.
            memo: the trial's memo (values kept per seed for the whole trial).
            rng: the trial's generator (seeds of sampled judge requests).
        """
        cost = RatingCost()
        rated = table.copy()
        for column in columns:
            if column in self.producers:
                rated[column] = self.producers[column](table, memo, rng, cost)
        return rated, cost

    def _reward(
        self, table: pd.DataFrame, memo: dict[str, Any], rng: np.random.Generator, cost: RatingCost
    ) -> np.ndarray:
        if self.reward is None:
            raise ValueError("the reward column needs a reward model")
        return np.asarray(
            self.reward(list(table["question"]), list(table["student_answer"])), dtype=float
        )

    def _judge_rating(
        self, table: pd.DataFrame, memo: dict[str, Any], rng: np.random.Generator, cost: RatingCost
    ) -> np.ndarray:
        ratings = self._rate(list(table["question"]), list(table["student_answer"]), rng)
        cost.add(ratings)
        return np.array([r.value for r in ratings])

    def _lion_gap(
        self, table: pd.DataFrame, memo: dict[str, Any], rng: np.random.Generator, cost: RatingCost
    ) -> np.ndarray:
        if self.teacher is None:
            raise ValueError("the lion_gap column needs a teacher")
        references: dict[str, dict[str, Any]] = memo.setdefault("lion", {})
        new = table[~table["id"].isin(list(references))]
        if len(new):
            seeds = rng.integers(0, 2**31 - 1, size=len(new)).tolist()
            answered = self.teacher.answer(self.task, list(new["question"]), seeds)
            cost.add(answered)
            ok = [i for i, a in enumerate(answered) if a.answer and a.error is None]
            rated = self._rate(
                [answered[i].question or "" for i in ok],
                [answered[i].answer or "" for i in ok],
                rng,
            )
            cost.add(rated)
            # Kept for the trial only when both the answer and its rating came back: a seed
            # whose teacher failed (an outage) is asked again next iteration.
            for i, rating in zip(ok, rated, strict=True):
                if rating.parsed:
                    references[new["id"].iloc[i]] = {
                        "teacher_answer": answered[i].answer,
                        "teacher_rating": rating.value,
                    }
        student = self._rate(list(table["question"]), list(table["student_answer"]), rng)
        cost.add(student)
        known = table["id"].isin(list(references)).to_numpy()
        gaps = np.full(len(table), np.nan)
        for row in np.flatnonzero(known):
            gaps[row] = references[table["id"].iloc[row]]["teacher_rating"] - student[row].value
        # A seed without a teacher reference is neither hard nor easy: the middle gap.
        middle = float(np.median(gaps[known])) if known.any() else 0.0
        return np.where(known, gaps, middle)

    def _rate(
        self, questions: list[str], answers: list[str], rng: np.random.Generator
    ) -> list[Rating]:
        seeds = rng.integers(0, 2**31 - 1, size=len(questions)).tolist()
        return self._need_judge().rate(questions, answers, seeds)

    def _need_judge(self) -> Judge:
        if self.judge is None:
            raise ValueError("judge ratings need a judge")
        return self.judge


__all__ = ["JUDGED_COLUMNS", "RATER_COLUMNS", "Judge", "Raters", "Rating", "RatingCost", "RewardFn"]
