"""Selectors: pick m seeds from their scores (higher = pick first), reusable by any scorer.

Every selector takes its randomness from the generator it is given, so a trial's picks are
reproducible under its seed, and resuming from a checkpoint (which stores the generator's
state) picks exactly what the uninterrupted run picked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


class Selector(Protocol):
    """Chooses ``m`` row indices given one score per row."""

    def __call__(self, scores: np.ndarray, m: int, rng: np.random.Generator) -> np.ndarray: ...


def _ranked(scores: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices from highest to lowest score; ties in random order (never by position)."""
    tie_breaker = rng.permutation(len(scores))
    return np.lexsort((tie_breaker, -scores))


def _check_m(scores: np.ndarray, m: int) -> None:
    if not 0 <= m <= len(scores):
        raise ValueError(f"cannot pick {m} of {len(scores)} seeds without repeats")


@dataclass(frozen=True)
class TopK:
    """The m highest scores; ties broken uniformly at random."""

    def __call__(self, scores: np.ndarray, m: int, rng: np.random.Generator) -> np.ndarray:
        _check_m(scores, m)
        return _ranked(scores, rng)[:m]


@dataclass(frozen=True)
class BottomK:
    """The m lowest scores (the easiest seeds); ties broken uniformly at random."""

    def __call__(self, scores: np.ndarray, m: int, rng: np.random.Generator) -> np.ndarray:
        _check_m(scores, m)
        return _ranked(-scores, rng)[:m]


@dataclass(frozen=True)
class Balanced:
    """``hard_share`` of the picks from the top of the ranking, the rest from the bottom.

    References: LION (Jiang et al. 2023) trains on hard and easy instructions alike.
    """

    hard_share: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.hard_share <= 1.0:
            raise ValueError(f"hard_share must be in [0, 1], got {self.hard_share}")

    def __call__(self, scores: np.ndarray, m: int, rng: np.random.Generator) -> np.ndarray:
        _check_m(scores, m)
        ranking = _ranked(scores, rng)
        n_hard = round(m * self.hard_share)
        return np.concatenate([ranking[:n_hard], ranking[len(ranking) - (m - n_hard) :][::-1]])


@dataclass(frozen=True)
class Uniform:
    """m seeds uniformly at random, ignoring scores; m may exceed the pool.

    Draws without repeats until every seed was drawn once, then starts a fresh permutation,
    so a large up-front budget (``static``) covers the pool evenly.
    """

    def __call__(self, scores: np.ndarray, m: int, rng: np.random.Generator) -> np.ndarray:
        n = len(scores)
        if n == 0 and m > 0:
            raise ValueError("cannot pick from an empty seed pool")
        rounds = [rng.permutation(n) for _ in range(-(-m // n) if n else 0)]
        return np.concatenate(rounds)[:m] if rounds else np.empty(0, dtype=int)


SELECTORS = {"top_k": TopK, "bottom_k": BottomK, "balanced": Balanced, "uniform": Uniform}
