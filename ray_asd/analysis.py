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

from ray_asd.columns import column
from ray_asd.config import TrialConfig
from ray_asd.records import Item, Spend
from ray_asd.strategies import Strategy, compose, scalar_scores

if TYPE_CHECKING:
    from ray_asd.parts import TrialParts
    from ray_asd.state import TrialState


def item_strategy(strategy: Strategy, config: TrialConfig) -> Strategy:
    """The strategy whose scorer rates seeds and items for the analyses: the trial's own, or
    ``analysis.scorer`` for a strategy without a scorer of its own (random, static, and a
    bandit, whose combined scorer gives every seed 0 and whose arms each score their own)."""
    if strategy.scorer_name not in ("none", "bandit"):
        return strategy
    return compose(config.analysis.scorer, "top_k", name=f"analysis:{config.analysis.scorer}")


def _scored(
    parts: TrialParts,
    scorer: Strategy,
    table: pd.DataFrame,
    rng: np.random.Generator,
) -> tuple[np.ndarray, pd.DataFrame, Spend]:
    """``table`` answered by the current student (in the trial's process), rated if the
    scorer needs raters (a memo of their own), scored: (scores, answered table, rating cost)."""
    columns = tuple(c for c in scorer.scorer.columns if c not in table.columns)
    answered = parts.student.answers_here(table, columns)
    cost = Spend()
    rated = tuple(c for c in columns if column(c).rated)
    if rated and parts.rate is not None:
        answered, cost = parts.rate(answered, rated, {}, rng)
    return scalar_scores(scorer.score(answered)), answered, cost


def _item_table(items: list[Item], task_difficulty: Any) -> pd.DataFrame:
    table = pd.DataFrame(
        [{"id": item.id, "question": item.question, "answer": item.answer} for item in items]
    )
    if task_difficulty is not None:
        table["difficulty"] = [task_difficulty(q) for q in table["question"]]
    return table


def analyse(
    parts: TrialParts, pool: pd.DataFrame, state: TrialState, new: list[Item], t: int, out: Path
) -> Spend:
    """The loop's analysis stage at iteration t: the new items scored each iteration, every
    item's seed and answer by the first and the final student at the last one; what their
    rating calls cost (nothing without ``analysis.score_items``)."""
    config = parts.plan.config
    if not config.analysis.score_items:
        return Spend()
    spent = score_items(parts, config, new, pool, state.scores[-1], t)
    if t == parts.plan.schedule.iterations - 1:
        first = out / "checkpoints" / "start" / "student"
        scratch = out / "analysis" / "student"
        spent += score_orderings(parts, config, state.items, pool, state.scores, first, scratch)
    return spent


def score_items(
    parts: TrialParts,
    config: TrialConfig,
    items: list[Item],
    pool: pd.DataFrame,
    seed_scores: dict[str, float],
    t: int,
) -> Spend:
    """Adds ``seed_score``, ``score`` and ``student_correct`` (the current student's answer
    against the teacher's) to each accepted item of ``items``, in place; returns what rating
    them cost. ``seed_scores``: the iteration's scores of the seeds (the trial's scorer);
    strategies without one have their picked seeds scored here with ``analysis.scorer``."""
    accepted = [item for item in items if item.accepted]
    if not accepted:
        return Spend()
    strategy = parts.plan.strategy
    scorer = item_strategy(strategy, config)
    rng = np.random.default_rng([config.seed, 2, t])
    cost = Spend()
    if scorer is not strategy:
        seeds = pool[pool["id"].isin({item.seed_id for item in accepted})]
        values, _, cost = _scored(parts, scorer, seeds, rng)
        seed_scores = dict(zip(seeds["id"], values.tolist(), strict=True))
    values, answered, item_cost = _scored(
        parts, scorer, _item_table(accepted, parts.task.difficulty), rng
    )
    for item, value, correct in zip(accepted, values, answered["correct"], strict=True):
        item.seed_score = seed_scores[item.seed_id]
        item.score = float(value)
        item.student_correct = bool(correct)
        item.scorer = scorer.scorer_name
    return cost + item_cost


def score_orderings(
    parts: TrialParts,
    config: TrialConfig,
    items: list[Item],
    pool: pd.DataFrame,
    scores: list[dict[str, float]],
    first_student: Path,
    scratch: Path,
) -> Spend:
    """At the last iteration: every accepted item's seed score and the student's correctness on
    the item, under the final iteration's student (the current one) and the first iteration's
    (``first_student``, the checkpoint iteration 0 started from); in place, as
    ``seed_score_{final,first}`` and ``correct_{final,first}``. The current student is saved
    to ``scratch`` and loaded back, so training goes on from it.

    ``scores``: the trial's seed scores per iteration (its scorer scores the whole pool every
    iteration, so the first and last entries are the two students' seed scores); strategies
    without a scorer have the seeds scored here with ``analysis.scorer``.
    """
    accepted = [item for item in items if item.accepted and item.iteration >= 0]
    if not accepted:
        return Spend()
    strategy = parts.plan.strategy
    scorer = item_strategy(strategy, config)
    table = _item_table(accepted, None)
    seeds = pool[pool["id"].isin({item.seed_id for item in accepted})]
    parts.student.save(scratch)
    total = Spend()
    final = len(scores) - 1
    for which, iteration, student in (("final", final, None), ("first", 0, first_student)):
        if student is not None:
            parts.student.load(student)
        correct = parts.student.answers_here(table, ())["correct"]
        if scorer is strategy:
            seed_scores = scores[iteration]
        else:
            rng = np.random.default_rng([config.seed, 3, iteration])
            values, _, cost = _scored(parts, scorer, seeds, rng)
            seed_scores = dict(zip(seeds["id"], values.tolist(), strict=True))
            total = total + cost
        for item, right in zip(accepted, correct, strict=True):
            setattr(item, f"seed_score_{which}", seed_scores[item.seed_id])
            setattr(item, f"correct_{which}", bool(right))
    parts.student.load(scratch if scratch.exists() else None)
    return total
