"""Selection strategies: a scorer (one float, or one vector, per seed) plus a selector (the
rule that picks).

Named strategies of DESIGN section 2 are presets over the two registries; any other pairing
is built with :func:`compose`; a learning-progress bandit over several of them with
:func:`compose_bandit`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ray_asd.errors import ConfigError
from ray_asd.registry import build, suggest
from ray_asd.strategies.bandit import Exp3S
from ray_asd.strategies.scorers import SCORERS, NoScore, Scorer
from ray_asd.strategies.selectors import SELECTORS, Selector, TopK, scalar_scores


@dataclass(frozen=True)
class Strategy:
    """How seeds are chosen each iteration.

    Attributes:
        name: as shown in results and MLflow tags.
        scorer: one float per seed, higher = pick first (or one vector per seed).
        selector: picks m seeds from the scores.
        upfront: pick and generate the whole budget (m x T) at t = 0 with the base model,
            then train on its first m x (t + 1) items in pick order at step t (``static``).
        scorer_name: the scorer's registry name (``none`` for random and static, ``bandit``
            for a bandit).
        selector_name: the selector's registry name (``exp3s`` for a bandit).
        arms: a bandit's arms, each a strategy that picks its share of an iteration's seeds.
        bandit: the rule that splits the picks among ``arms`` (None: not a bandit).
    """

    name: str
    scorer: Scorer
    selector: Selector
    upfront: bool = False
    scorer_name: str = ""
    selector_name: str = ""
    arms: tuple[Strategy, ...] = ()
    bandit: Exp3S | None = None

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


def compose_bandit(
    arms: Sequence[str],
    bandit: Exp3S,
    *,
    name: str,
    selector: str,
    selector_params: Mapping[str, Any] | None = None,
) -> Strategy:
    """A learning-progress bandit (`ray_asd.strategies.bandit`) over ``arms``, e.g.
    ``["loss", "loss_gt", "llm2llm", "random"]``: each a named strategy (``lion`` picks as
    the preset does, with ``balanced``), else a scorer paired with ``selector``.

    Its scorer reads every column an arm reads (so the plan computes them) and scores 0;
    within an iteration the arms pick disjoint seeds, so, as top-k, it picks a seed at most
    once (what `ray_asd.preflight` asks its selector).

    Raises:
        ConfigError: fewer than two arms, a repeated one, ``static`` (it picks its whole budget
            up front), or a name that is neither a strategy nor a scorer (one line, naming
            ``strategy.arms[i]``).
    """
    if len(arms) < 2 or len(set(arms)) < len(arms):
        raise ConfigError(f"strategy.arms: a bandit needs two or more distinct arms, got {arms}")
    built = tuple(_arm(arm, i, selector, selector_params) for i, arm in enumerate(arms))
    columns = tuple(dict.fromkeys(c for arm in built for c in arm.scorer.columns))
    return Strategy(
        name=name,
        scorer=NoScore(columns),
        selector=TopK(),
        scorer_name="bandit",
        selector_name="exp3s",
        arms=built,
        bandit=bandit,
    )


def _arm(
    arm: str, index: int, selector: str, selector_params: Mapping[str, Any] | None
) -> Strategy:
    if arm in STRATEGIES:
        strategy = make_strategy(arm)
        if strategy.upfront:
            raise ConfigError(
                f"strategy.arms[{index}]: {arm} picks its whole budget up front and cannot be "
                "an arm; use random"
            )
        return strategy
    if arm in SCORERS:
        return compose(arm, selector, name=arm, selector_params=selector_params)
    known = {**STRATEGIES, **SCORERS}
    raise ConfigError(
        f"strategy.arms[{index}]: unknown arm {arm!r}: an arm is a strategy or a scorer"
        f"{suggest(arm, known)}"
    )


__all__ = [
    "SCORERS",
    "SELECTORS",
    "STRATEGIES",
    "Scorer",
    "Selector",
    "Strategy",
    "compose",
    "compose_bandit",
    "make_strategy",
    "scalar_scores",
]
