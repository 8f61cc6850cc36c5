"""Selectors: pick m seeds from their scores (higher = pick first), reusable by any scorer.

Every selector takes its randomness from the generator it is given, so a trial's picks are
reproducible under its seed, and resuming from a checkpoint (which stores the generator's
state) picks exactly what the uninterrupted run picked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Protocol

import numpy as np


class Selector(Protocol):
    """Chooses ``m`` row indices given one score per row.

    A selector with ``takes_vectors = True`` gets the scorer's output as it is, one vector per
    row for an embedding scorer (``badge``); the others get one float per row (an embedding's
    norm).
    """

    def __call__(self, scores: np.ndarray, m: int, rng: np.random.Generator) -> np.ndarray: ...


def scalar_scores(scores: np.ndarray) -> np.ndarray:
    """One float per row: the scores themselves, or the norms of per-row vectors."""
    return scores if scores.ndim == 1 else np.linalg.norm(scores, axis=1)


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
        n_hard = math.floor(m * self.hard_share + 0.5)  # halves up, not to even
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


@dataclass(frozen=True)
class Stochastic:
    """m seeds sampled without replacement, higher scores likelier: a batch of the hardest
    seeds tends to hold near-identical ones, and sampling spreads it.

    ``kind`` sets each seed's sampling weight from its score s (rank r: 1 = highest score),
    with beta = 1 / temperature (Kirsch et al. 2023, "Stochastic Batch Acquisition"; baal's
    PowerSampling):

    - ``softmax``: exp(beta * s), any scores;
    - ``power``: s ** beta, scores must be positive (losses are);
    - ``softrank``: r ** -beta, any scores, insensitive to their scale.

    A small temperature approaches top-k; a large one approaches uniform. Sampling uses the
    Gumbel-top-k trick: the m largest of log-weight + Gumbel noise are an exact sample.

    References: Kirsch, Farquhar, Atighehchian, Jesson, Branchaud-Charron, Gal (2023).
    """

    kind: str = "softmax"
    temperature: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in STOCHASTIC_KINDS:
            raise ValueError(f"kind must be one of {STOCHASTIC_KINDS}, got {self.kind!r}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")

    def log_weights(self, scores: np.ndarray) -> np.ndarray:
        beta = 1.0 / self.temperature
        if self.kind == "softmax":
            return beta * scores
        if self.kind == "power":
            bad = np.flatnonzero(scores <= 0)
            if bad.size:
                raise ValueError(
                    f"power sampling needs positive scores; rows {bad[:5].tolist()} are not "
                    "(use kind softmax or softrank)"
                )
            return beta * np.log(scores)
        ranks = np.empty(len(scores))
        ranks[np.argsort(-scores, kind="stable")] = np.arange(1, len(scores) + 1)
        return -beta * np.log(ranks)

    def __call__(self, scores: np.ndarray, m: int, rng: np.random.Generator) -> np.ndarray:
        _check_m(scores, m)
        keys = self.log_weights(np.asarray(scores, dtype=float)) + rng.gumbel(size=len(scores))
        return np.argsort(-keys, kind="stable")[:m]


STOCHASTIC_KINDS = ("softmax", "power", "softrank")


@dataclass(frozen=True)
class KMeansPP:
    """k-means++ seeding over the score vectors: m seeds far apart and far from the origin.

    The first pick is the row of largest norm (BADGE: the most uncertain), or of highest
    score when each row has one float; each further pick
    is drawn with probability proportional to its squared distance to the nearest pick so
    far, so a batch covers distinct regions instead of one cluster of near-identical seeds.
    One float per row works too (diversity along the score axis). Rows identical to a pick
    have distance 0 and are never drawn while any other row is left; once every row left
    coincides with a pick, the rest are drawn uniformly.

    References: Arthur and Vassilvitskii 2007 ("k-means++"); Ash et al. 2020 ("BADGE").
    """

    takes_vectors: ClassVar[bool] = True

    def __call__(self, scores: np.ndarray, m: int, rng: np.random.Generator) -> np.ndarray:
        _check_m(scores, m)
        points = np.asarray(scores, dtype=float).reshape(len(scores), -1)
        if m == 0:
            return np.empty(0, dtype=int)
        # Vectors: the longest first; one score per seed: the highest, as every selector.
        first = np.einsum("ij,ij->i", points, points) if scores.ndim > 1 else points[:, 0]
        picks = [int(_ranked(first, rng)[0])]
        nearest = np.full(len(points), np.inf)
        for _ in range(m - 1):
            nearest = np.minimum(nearest, ((points - points[picks[-1]]) ** 2).sum(axis=1))
            nearest[picks] = 0.0
            total = nearest.sum()
            if total > 0:
                picks.append(int(rng.choice(len(points), p=nearest / total)))
            else:
                left = np.setdiff1d(np.arange(len(points)), picks)
                picks.append(int(rng.choice(left)))
        return np.asarray(picks)


def softmax(temperature: float = 1.0) -> Stochastic:
    return Stochastic("softmax", temperature)


def power(temperature: float = 1.0) -> Stochastic:
    return Stochastic("power", temperature)


def softrank(temperature: float = 1.0) -> Stochastic:
    return Stochastic("softrank", temperature)


SELECTORS = {
    "top_k": TopK,
    "bottom_k": BottomK,
    "balanced": Balanced,
    "uniform": Uniform,
    "softmax": softmax,
    "power": power,
    "softrank": softrank,
    "kmeans_pp": KMeansPP,
}
