"""Scorers: one float per seed, where higher means pick first (DESIGN section 2).

Scorers read columns of the scored seed table, never models (as in baal): the student scoring
stage (in-process or on the runner's scoring actors) computes the columns a scorer declares in
``columns``, so a scorer that needs another model (reward, judge) only adds a column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

from ray_asd.columns import (
    ANSWER_NLL,
    CORRECT,
    DIFFICULTY,
    GRAD_EMBEDDING,
    JUDGE_RATING,
    LION_GAP,
    REFERENCE_NLL,
    REWARD,
)

_STEP = re.compile(r"[^\n]+?(?:\.(?=\s)|\n|$)")


def count_steps(answer: str) -> int:
    """Reasoning steps of an answer: its sentences and lines (at least 1).

    ``"12 + 7 = 19. 19 - 5 = 14.\n#### 14"`` has 3 steps.
    """
    return max(1, sum(1 for step in _STEP.findall(answer) if step.strip(" .\n")))


def normalise_nll(total_nll: float, n_tokens: int, answer: str, how: str) -> float:
    """An answer's NLL as a loss score: per token (``mean``, the paper's), ``sum``, or ``step``.

    Per-token means favour short answers (measured on arith: `loss_gt` top-64 picked almost only
    one-step problems); ``sum`` and ``step`` weigh long, multi-step answers up.
    """
    if how == "mean":
        return total_nll / max(n_tokens, 1)
    if how == "sum":
        return total_nll
    if how == "step":
        return total_nll / count_steps(answer)
    raise ValueError(f"unknown loss normalisation {how!r}; use mean, sum or step")


class Scorer(Protocol):
    """Maps a scored seed table to one float per row (higher = pick first), or to one vector
    per row for selectors that pick by geometry."""

    @property
    def columns(self) -> tuple[str, ...]:
        """The table columns this scorer reads (the scoring stage must compute them)."""
        ...

    def __call__(self, table: pd.DataFrame) -> np.ndarray: ...


@dataclass(frozen=True)
class NoScore:
    """Every seed scores 0: for strategies whose selector ignores scores (random, static), and
    for a bandit, whose arms score for themselves (its ``columns``: every column they read)."""

    columns: tuple[str, ...] = ()

    def __call__(self, table: pd.DataFrame) -> np.ndarray:
        return np.zeros(len(table))


@dataclass(frozen=True)
class ColumnScore:
    """A column of the scored table as the score, negated where lower means pick first.

    ``loss``: the student's uncertainty on its own answer, highest first. References: the
    paper's winner (arXiv 2512.00884, section 3). ``loss_gt``: the NLL of the reference.
    ``llm2llm``: correctness negated, so wrong answers (0) outrank right ones (-1); ties are
    broken at random by the selector. References: Lee et al. 2024, "LLM2LLM".
    ``reward``/``judge``: the rating negated, the worst-rated answers first. ``lion``: the
    teacher-student gap, largest first (References: Jiang et al. 2023, "Lion").
    """

    column: str
    negate: bool = False

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.column,)

    def __call__(self, table: pd.DataFrame) -> np.ndarray:
        values = table[self.column].to_numpy(dtype=float)
        return -values if self.negate else values


@dataclass(frozen=True)
class EmbeddingScore:
    """A column of equal-length vectors as one row of a score matrix per seed, for selectors
    that pick by geometry (k-means++); scalar selectors rank by the vectors' norms.

    ``badge``: the gradient embedding of the student's own answer, whose norm is its
    uncertainty and whose direction tells seeds apart. References: Ash et al. 2020, "BADGE".
    """

    column: str

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.column,)

    def __call__(self, table: pd.DataFrame) -> np.ndarray:
        return np.stack([np.asarray(row, dtype=float) for row in table[self.column]])


def loss() -> Scorer:
    return ColumnScore(ANSWER_NLL)


def loss_gt() -> Scorer:
    return ColumnScore(REFERENCE_NLL)


def wrong() -> Scorer:
    return ColumnScore(CORRECT, negate=True)


def reward() -> Scorer:
    return ColumnScore(REWARD, negate=True)


def judge() -> Scorer:
    return ColumnScore(JUDGE_RATING, negate=True)


def lion() -> Scorer:
    return ColumnScore(LION_GAP)


def badge() -> Scorer:
    return EmbeddingScore(GRAD_EMBEDDING)


def difficulty() -> Scorer:
    """The task's own difficulty of each seed (arith: its operations; the Game of 24 CSV: its
    rank), hardest first: the positive control. It reads nothing from the student, so if it
    cannot beat random on a setup, no student-guided scorer is likely to."""
    return ColumnScore(DIFFICULTY)


def none() -> Scorer:
    return NoScore()


SCORERS = {
    "none": none,
    "loss": loss,
    "loss_gt": loss_gt,
    "wrong": wrong,
    "reward": reward,
    "judge": judge,
    "lion": lion,
    "badge": badge,
    "difficulty": difficulty,
}
