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

LLM calls made here are charged as teacher compute (`ray_asd.records.Spend`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ray_asd.columns import JUDGE_RATING, LION_GAP, REWARD
from ray_asd.raters.judge import Judge, Rating
from ray_asd.records import Spend
from ray_asd.tasks import Task
from ray_asd.teacher import Teacher

# (questions, answers) -> one reward each
RewardFn = Callable[[list[str], list[str]], np.ndarray]
# A rater column's producer: (table, memo, rng) -> (one value per row, what its calls cost)
Producer = Callable[[pd.DataFrame, dict[str, Any], np.random.Generator], tuple[np.ndarray, Spend]]


def ratings_spend(ratings: Sequence[Rating]) -> Spend:
    """What a batch of judge calls cost, answers it never rated counted."""
    return Spend.of(ratings, unrated=sum(not rating.parsed for rating in ratings))


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
    producers: dict[str, Producer] = field(init=False, repr=False)

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
    ) -> tuple[pd.DataFrame, Spend]:
        """``table`` (with ``student_answer``) plus the rater columns named in ``columns``.

        Args:
            table: scored seeds, ``id``, ``question`` and ``student_answer`` at least.
            columns: the columns wanted; those that are not rater columns are ignored.
            memo: the trial's memo (values kept per seed for the whole trial).
            rng: the trial's generator (seeds of sampled judge requests).
        """
        cost = Spend()
        rated = table.copy()
        for column in columns:
            if column in self.producers:
                rated[column], spent = self.producers[column](table, memo, rng)
                cost += spent
        return rated, cost

    def _reward(
        self, table: pd.DataFrame, memo: dict[str, Any], rng: np.random.Generator
    ) -> tuple[np.ndarray, Spend]:
        if self.reward is None:
            raise ValueError("the reward column needs a reward model")
        rewards = self.reward(list(table["question"]), list(table["student_answer"]))
        return np.asarray(rewards, dtype=float), Spend()

    def _judge_rating(
        self, table: pd.DataFrame, memo: dict[str, Any], rng: np.random.Generator
    ) -> tuple[np.ndarray, Spend]:
        ratings = self._rate(list(table["question"]), list(table["student_answer"]), rng)
        return np.array([r.value for r in ratings]), ratings_spend(ratings)

    def _lion_gap(
        self, table: pd.DataFrame, memo: dict[str, Any], rng: np.random.Generator
    ) -> tuple[np.ndarray, Spend]:
        if self.teacher is None:
            raise ValueError("the lion_gap column needs a teacher")
        references: dict[str, dict[str, Any]] = memo.setdefault("lion", {})
        new = table[~table["id"].isin(list(references))]
        cost = Spend()
        if len(new):
            seeds = rng.integers(0, 2**31 - 1, size=len(new)).tolist()
            answered = self.teacher.answer(self.task, list(new["question"]), seeds)
            cost += Spend.of(answered)
            ok = [i for i, a in enumerate(answered) if a.answer and a.error is None]
            rated = self._rate(
                [answered[i].question or "" for i in ok],
                [answered[i].answer or "" for i in ok],
                rng,
            )
            cost += ratings_spend(rated)
            # Kept for the trial only when both the answer and its rating came back: a seed
            # whose teacher failed (an outage) is asked again next iteration.
            for i, rating in zip(ok, rated, strict=True):
                if rating.parsed:
                    references[new["id"].iloc[i]] = {
                        "teacher_answer": answered[i].answer,
                        "teacher_rating": rating.value,
                    }
        student = self._rate(list(table["question"]), list(table["student_answer"]), rng)
        cost += ratings_spend(student)
        known = table["id"].isin(list(references)).to_numpy()
        gaps = np.full(len(table), np.nan)
        for row in np.flatnonzero(known):
            gaps[row] = references[table["id"].iloc[row]]["teacher_rating"] - student[row].value
        # A seed without a teacher reference is neither hard nor easy: the middle gap.
        middle = float(np.median(gaps[known])) if known.any() else 0.0
        return np.where(known, gaps, middle), cost

    def _rate(
        self, questions: list[str], answers: list[str], rng: np.random.Generator
    ) -> list[Rating]:
        seeds = rng.integers(0, 2**31 - 1, size=len(questions)).tolist()
        return self._need_judge().rate(questions, answers, seeds)

    def _need_judge(self) -> Judge:
        if self.judge is None:
            raise ValueError("judge ratings need a judge")
        return self.judge


__all__ = ["Judge", "Raters", "Rating", "RewardFn", "ratings_spend"]
