"""Selection strategies: a scorer (one float, or one vector, per seed) plus a selector (the
rule that picks).

Named strategies of DESIGN section 2 are presets over the two registries; any other pairing
is built with :func:`compose`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ray_asd.registry import build
from ray_asd.strategies.scorers import SCORERS, Scorer
from ray_asd.strategies.selectors import SELECTORS, Selector, scalar_scores


@dataclass(frozen=True)
class Strategy:
    """How seeds are chosen each iteration.

    Attributes:
        name: as shown in results and MLflow tags.
        scorer: one float per seed, higher = pick first (or one vector per seed).
        selector: picks m seeds from the scores.
        upfront: pick and generate the whole budget (m x T) at t = 0 with the base model,
            then train on its first m x (t + 1) items in pick order at step t (``static``).
        scorer_name: the scorer's registry name (``none`` for random and static).
        selector_name: the selector's registry name.
    """

    name: str
    scorer: Scorer
    selector: Selector
    upfront: bool = False
    scorer_name: str = ""
    selector_name: str = ""

    @property
    def blind(self) -> bool:
        """Reads nothing from the student or the seeds: two blind strategies compared are an
        A/A test, the noise floor of every comparison (random vs static, or random with two
        random streams)."""
        return self.scorer_name == "none" and self.selector_name == "uniform"

    def score(self, table: pd.DataFrame) -> np.ndarray:
        """One finite float per seed of a scored seed table (higher = pick first), or one
        finite vector per seed from an embedding scorer.

        Raises:
            ValueError: a score is NaN or infinite (names the seed ids), or a column the
                scorer reads is missing.
        """
        missing = [c for c in self.scorer.columns if c not in table.columns]
        if missing:
            raise ValueError(
                f"strategy {self.name!r} needs column(s) {missing} in the scored seeds"
            )
        scores = np.asarray(self.scorer(table), dtype=float)
        bad = ~np.isfinite(scores).reshape(len(scores), -1).all(axis=1)
        if bad.any():
            ids = table["id"].to_numpy()[bad][:5].tolist()
            raise ValueError(
                f"strategy {self.name!r}: non-finite scores for {int(bad.sum())} seed(s), "
                f"e.g. {ids}"
            )
        return scores

    def pick(self, scores: np.ndarray, m: int, rng: np.random.Generator) -> np.ndarray:
        """Row positions of the ``m`` seeds the selector picks from validated ``scores``."""
        vectors = getattr(self.selector, "takes_vectors", False)
        picked = self.selector(scores if vectors else scalar_scores(scores), m, rng)
        return np.asarray(picked, dtype=int)

    def select(self, table: pd.DataFrame, m: int, rng: np.random.Generator) -> np.ndarray:
        """``pick(score(table), m, rng)``: row positions of the ``m`` picked seeds."""
        return self.pick(self.score(table), m, rng)


def compose(
    scorer: str,
    selector: str,
    *,
    name: str | None = None,
    scorer_params: Mapping[str, Any] | None = None,
    selector_params: Mapping[str, Any] | None = None,
    upfront: bool = False,
) -> Strategy:
    """A strategy from a registered scorer and selector, e.g. ``compose("loss", "balanced")``.

    Raises:
        ConfigError: an unknown scorer/selector name or parameter.
    """
    return Strategy(
        name=name or f"{scorer}+{selector}",
        scorer=build("scorer", SCORERS, scorer, scorer_params or {}),
        selector=build("selector", SELECTORS, selector, selector_params or {}),
        upfront=upfront,
        scorer_name=scorer,
        selector_name=selector,
    )


STRATEGIES: dict[str, Callable[[], Strategy]] = {
    "random": lambda: compose("none", "uniform", name="random"),
    "static": lambda: compose("none", "uniform", name="static", upfront=True),
    "loss": lambda: compose("loss", "top_k", name="loss"),
    "loss_gt": lambda: compose("loss_gt", "top_k", name="loss_gt"),
    "llm2llm": lambda: compose("wrong", "top_k", name="llm2llm"),
    "reward": lambda: compose("reward", "top_k", name="reward"),
    "judge": lambda: compose("judge", "top_k", name="judge"),
    "lion": lambda: compose("lion", "balanced", name="lion"),
    "badge": lambda: compose("badge", "kmeans_pp", name="badge"),
    "difficulty": lambda: compose("difficulty", "top_k", name="difficulty"),
}


def make_strategy(name: str) -> Strategy:
    """The named strategy of DESIGN section 2 (``random``, ``static``, ``loss``, ...)."""
    return build("strategy", STRATEGIES, name, {})


__all__ = [
    "SCORERS",
    "SELECTORS",
    "STRATEGIES",
    "Scorer",
    "Selector",
    "Strategy",
    "compose",
    "make_strategy",
    "scalar_scores",
]
