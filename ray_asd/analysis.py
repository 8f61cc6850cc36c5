"""What the loop records for `ray-asd report`'s score fidelity and ordering (the paper's
Figures 2 and 3), apart from the method: none of it is charged to the teacher budget, and none
of it draws from the trial's generator, so a trial's picks are the same with it on or off.

- Each iteration, every accepted item is scored as its seed was (same scorer, same student):
  ``seed_score``, ``score``, ``student_correct`` (fidelity).
- At the last iteration, every item's *seed* is scored, and every item answered, by the
  student of the first and of the final iteration: ``seed_score_first``, ``correct_first``,
  ``seed_score_final``, ``correct_final`` (ordering: items by their seed's score).

Strategies without a scorer (random, static) are scored with ``analysis.scorer`` (default
``loss``), so the analyses see the unrestricted range of random picks.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ray_asd.config import TrialConfig
from ray_asd.raters import RATER_COLUMNS, RatingCost
from ray_asd.strategies import Strategy, compose, scalar_scores

if TYPE_CHECKING:
    from ray_asd.loop import TrialParts


def item_strategy(strategy: Strategy, config: TrialConfig) -> Strategy:
    """The strategy whose scorer rates seeds and items for the analyses: the trial's own, or
    ``analysis.scorer`` for a strategy without a scorer."""
    if strategy.scorer_name != "none":
        return strategy
    return compose(config.analysis.scorer, "top_k", name=f"analysis:{config.analysis.scorer}")


def _scored(
    parts: TrialParts,
    scorer: Strategy,
    table: pd.DataFrame,
    rng: np.random.Generator,
) -> tuple[np.ndarray, pd.DataFrame, RatingCost]:
    """``table`` answered by the current student (in the trial's process), rated if the
    scorer needs raters (a memo of their own), scored: (scores, answered table, rating cost)."""
    columns = tuple(c for c in scorer.scorer.columns if c not in table.columns)
    answered = (parts.item_answers or parts.student_answers)(table, columns)
    cost = RatingCost()
    if RATER_COLUMNS.intersection(columns) and parts.rate is not None:
        answered, cost = parts.rate(answered, columns, {}, rng)
    return scalar_scores(scorer.score(answered)), answered, cost


def _item_table(items: list[dict[str, Any]], task_difficulty: Any) -> pd.DataFrame:
    table = pd.DataFrame([{k: item[k] for k in ("id", "question", "answer")} for item in items])
    if task_difficulty is not None:
        table["difficulty"] = [task_difficulty(q) for q in table["question"]]
    return table


def score_items(
    parts: TrialParts,
    config: TrialConfig,
    items: list[dict[str, Any]],
    pool: pd.DataFrame,
    seed_scores: dict[str, float],
    t: int,
) -> RatingCost:
    """Adds ``seed_score``, ``score`` and ``student_correct`` (the current student's answer
    against the teacher's) to each accepted item of ``items``, in place; returns what rating
    them cost. ``seed_scores``: the iteration's scores of the seeds (the trial's scorer);
    strategies without one have their picked seeds scored here with ``analysis.scorer``."""
    accepted = [item for item in items if item["accepted"]]
    if not accepted:
        return RatingCost()
    scorer = item_strategy(parts.strategy, config)
    rng = np.random.default_rng([config.seed, 2, t])
    cost = RatingCost()
    if scorer is not parts.strategy:
        seeds = pool[pool["id"].isin({item["seed_id"] for item in accepted})]
        values, _, cost = _scored(parts, scorer, seeds, rng)
        seed_scores = dict(zip(seeds["id"], values.tolist(), strict=True))
    values, answered, item_cost = _scored(
        parts, scorer, _item_table(accepted, parts.task.difficulty), rng
    )
    for item, value, correct in zip(accepted, values, answered["correct"], strict=True):
        item.update(
            seed_score=seed_scores[item["seed_id"]],
            score=float(value),
            student_correct=bool(correct),
            scorer=scorer.scorer_name,
        )
    return cost + item_cost


def score_orderings(
    parts: TrialParts,
    config: TrialConfig,
    items: list[dict[str, Any]],
    pool: pd.DataFrame,
    scores: list[dict[str, float]],
    first_student: Path,
    scratch: Path,
) -> RatingCost:
    """At the last iteration: every accepted item's seed score and the student's correctness on
    the item, under the final iteration's student (the current one) and the first iteration's
    (``first_student``, the checkpoint iteration 0 started from); in place, as
    ``seed_score_{final,first}`` and ``correct_{final,first}``. The current student is saved
    to ``scratch`` and loaded back, so training goes on from it.

    ``scores``: the trial's seed scores per iteration (its scorer scores the whole pool every
    iteration, so the first and last entries are the two students' seed scores); strategies
    without a scorer have the seeds scored here with ``analysis.scorer``.
    """
    accepted = [item for item in items if item["accepted"] and item["iteration"] >= 0]
    if not accepted:
        return RatingCost()
    scorer = item_strategy(parts.strategy, config)
    table = _item_table(accepted, None)
    seeds = pool[pool["id"].isin({item["seed_id"] for item in accepted})]
    parts.save_student(scratch)
    total = RatingCost()
    final = len(scores) - 1
    for which, iteration, student in (("final", final, None), ("first", 0, first_student)):
        if student is not None:
            parts.load_student(student)
        correct = (parts.item_answers or parts.student_answers)(table, ())["correct"]
        if scorer is parts.strategy:
            seed_scores = scores[iteration]
        else:
            rng = np.random.default_rng([config.seed, 3, iteration])
            values, _, cost = _scored(parts, scorer, seeds, rng)
            seed_scores = dict(zip(seeds["id"], values.tolist(), strict=True))
            total = total + cost
        for item, right in zip(accepted, correct, strict=True):
            item[f"seed_score_{which}"] = seed_scores[item["seed_id"]]
            item[f"correct_{which}"] = bool(right)
    parts.load_student(scratch if scratch.exists() else None)
    return total
