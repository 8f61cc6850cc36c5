"""Scorers: one float per seed, where higher means pick first (DESIGN section 2).

Scorers read columns of the scored seed table, never models (as in baal): the student scoring
stage (in-process or on Ray Data actors) computes the columns a scorer declares in
``columns``, so a scorer that needs another model (reward, judge) only adds a column.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

# Columns of the scored seed table that the student scoring stage fills in.
ANSWER_NLL = "answer_nll"  # mean token NLL of the student's own (greedy) answer
REFERENCE_NLL = "reference_nll"  # mean token NLL of the reference answer under the student
CORRECT = "correct"  # the task's checker on the student's answer


class Scorer(Protocol):
    """Maps a scored seed table to one float per row; higher = pick first."""

    @property
    def columns(self) -> tuple[str, ...]:
        """The table columns this scorer reads (the scoring stage must compute them)."""
        ...

    def __call__(self, table: pd.DataFrame) -> np.ndarray: ...


@dataclass(frozen=True)
class NoScore:
    """Every seed scores 0: for strategies whose selector ignores scores (random, static)."""

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
    """

    column: str
    negate: bool = False

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.column,)

    def __call__(self, table: pd.DataFrame) -> np.ndarray:
        values = table[self.column].to_numpy(dtype=float)
        return -values if self.negate else values


def loss() -> Scorer:
    return ColumnScore(ANSWER_NLL)


def loss_gt() -> Scorer:
    return ColumnScore(REFERENCE_NLL)


def wrong() -> Scorer:
    return ColumnScore(CORRECT, negate=True)


def none() -> Scorer:
    return NoScore()


SCORERS = {"none": none, "loss": loss, "loss_gt": loss_gt, "wrong": wrong}
