"""The loop's select and train stages, and the learning progress a bandit is paid in.

A strategy scores every seed and picks m; a bandit (`ray_asd.strategies.bandit`) first splits
the m picks among its arms, each arm picking its share among the seeds not yet taken. After
training, each arm's *learning progress* is measured on the items its picks produced:

    progress_i = 1000 * sum over arm i's accepted new items of (NLL before - NLL after)
                 / (teacher tokens arm i's picks spent, rejected attempts included)

with NLL the student's on the teacher's answer, as ``loss_gt`` scores it (per token under the
default ``loss_normalisation``), before and after the iteration's training: the drop in loss
the training bought per 1000 teacher tokens (Graves et al. 2017's prediction gain, per cost).
Strategies other than a bandit train as before and measure nothing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ray_asd.answers import graded_nll
from ray_asd.metrics import Selection, Stages
from ray_asd.parts import TrialParts
from ray_asd.records import Item, spend_of
from ray_asd.state import TrialState
from ray_asd.strategies import Strategy, scalar_scores
from ray_asd.strategies.bandit import BanditState


def select(
    parts: TrialParts, pool: pd.DataFrame, scored: pd.DataFrame, state: TrialState, t: int
) -> Selection:
    """The strategy scores every seed and picks (static: its whole budget at t = 0; a bandit:
    each arm its share); the picks and scores go to ``state``."""
    strategy, n_picks = parts.plan.strategy, parts.plan.schedule.picks(t)
    scores = strategy.score(scored)
    state.scores.append(dict(zip(pool["id"], scalar_scores(scores).tolist(), strict=True)))
    arms = None
    if strategy.bandit is not None:
        positions, arms = _split(strategy, scored, state, n_picks)
    else:
        positions = strategy.pick(scores, n_picks, state.rng) if n_picks else np.empty(0, int)
    picked = pool.iloc[list(positions)]
    state.picks.append(picked["id"].tolist())
    # Strategies without a scorer (random, static) and bandits record no score statistics.
    stats = scalar_scores(scores) if strategy.scorer.columns and arms is None else None
    return Selection(picked, stats, scored, arms)


def _split(
    strategy: Strategy, scored: pd.DataFrame, state: TrialState, m: int
) -> tuple[np.ndarray, np.ndarray]:
    """(row positions of the picks, the arm of each): the bandit splits the m picks, then the
    arms pick in an order drawn each iteration (the first picks its favourite seeds: no arm
    is first every time), each among the seeds not yet taken."""
    assert strategy.bandit is not None, "select splits only a bandit's picks"
    if state.bandit is None:
        state.bandit = BanditState.start(len(strategy.arms))
    counts = strategy.bandit.split(state.bandit.weights, m, state.rng)
    free = np.ones(len(scored), dtype=bool)
    positions, arms = [], []
    for arm in state.rng.permutation(len(strategy.arms)).tolist():
        if not counts[arm]:
            continue
        rows = np.flatnonzero(free)
        scores = strategy.arms[arm].score(scored)[rows]
        chosen = rows[strategy.arms[arm].pick(scores, int(counts[arm]), state.rng)]
        free[chosen] = False
        positions += chosen.tolist()
        arms += [arm] * len(chosen)
    return np.asarray(positions, dtype=int), np.asarray(arms, dtype=int)


def train(parts: TrialParts, accepted: list[Item], t: int) -> dict[str, float]:
    """LoRA on every accepted item so far: the training stats ({}: nothing to train on)."""
    if not accepted:  # a teacher whose every item was rejected: nothing to learn from yet
        parts.log(f"[trial] t={t}: no accepted items yet, the student stays as it is")
        return {}
    parts.log(f"[trial] t={t}: training on {len(accepted)} items, then evaluating")
    return parts.student.train(accepted, t)


def learn(
    parts: TrialParts,
    state: TrialState,
    selection: Selection,
    new: list[Item],
    accepted: list[Item],
    t: int,
    stages: Stages,
) -> tuple[dict[str, float], dict[str, float]]:
    """The train stage: (training stats, a bandit's metrics columns; {} for other strategies).

    A bandit's arms are paid in their learning progress on ``new`` (the module docstring),
    measured around the training (timed ``progress``), and its state moves on in ``state``.
    """
    if selection.arms is None:
        with stages("train"):
            return train(parts, accepted, t), {}
    strategy, bandit = parts.plan.strategy, state.bandit
    assert strategy.bandit is not None and bandit is not None, "a bandit's selection"
    learned = [item for item in new if item.accepted]
    with stages("progress"):
        before = _nll(parts, learned)
    with stages("train"):
        stats = train(parts, accepted, t)
    with stages("progress"):
        drops = dict(zip([i.id for i in learned], before - _nll(parts, learned), strict=True))
    arm_of = dict(zip(selection.picked["id"], selection.arms.tolist(), strict=True))
    progress = np.full(len(strategy.arms), np.nan)  # NaN: no item to learn from, not observed
    for arm in range(len(strategy.arms)):
        items = [item for item in new if arm_of[item.seed_id] == arm]
        if items:
            gained = sum(drops.get(item.id, 0.0) for item in items)
            # max(.., 1): a teacher that reports no tokens is charged per call, not divided by 0
            progress[arm] = 1000 * gained / max(spend_of(items).tokens, 1)
    policy = strategy.bandit.policy(bandit.weights)
    state.bandit, rewards = strategy.bandit.update(bandit, selection.arms, progress)
    counts = np.bincount(selection.arms, minlength=len(strategy.arms))
    columns: dict[str, float] = {}
    for arm, (name, share, picks) in enumerate(zip(_names(strategy), policy, counts, strict=True)):
        columns |= {f"bandit_share_{name}": float(share), f"bandit_picks_{name}": int(picks)}
        if np.isfinite(progress[arm]):
            columns |= {
                f"bandit_progress_{name}": float(progress[arm]),
                f"bandit_reward_{name}": float(rewards[arm]),
            }
    parts.log(f"[trial] t={t}: bandit {_summary(columns, _names(strategy))}")
    return stats, columns


def _names(strategy: Strategy) -> list[str]:
    return [arm.name for arm in strategy.arms]


def _summary(columns: dict[str, float], names: list[str]) -> str:
    """``loss 12 picks, progress 3.1, reward 1.00; random 4 picks, ...``"""
    lines = []
    for name in names:
        text = f"{name} {columns[f'bandit_picks_{name}']} picks"
        if f"bandit_progress_{name}" in columns:
            text += (
                f", progress {columns[f'bandit_progress_{name}']:.3g}, "
                f"reward {columns[f'bandit_reward_{name}']:+.2f}"
            )
        lines.append(text)
    return "; ".join(lines)


def _nll(parts: TrialParts, items: list[Item]) -> np.ndarray:
    """The current student's NLL of each item's answer, as it trains on it and as ``loss_gt``
    scores a seed's reference (`ray_asd.answers`); the model in this process, no generation."""
    if not items:
        return np.zeros(0)
    prompts = [parts.task.prompt(item.question or "") for item in items]
    answers = [" " + (item.answer or "") for item in items]
    return np.asarray(graded_nll(parts.plan.config, parts.student.model, prompts, answers))
