"""A trial's metrics rows: one function builds the row of every phase (base, warm-up, each
iteration, stopped) that MLflow, Tune, ``metrics.csv`` and ``state.json`` hold alike."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ray_asd.columns import CORRECT, DIFFICULTY
from ray_asd.filters import RejectReason
from ray_asd.records import Item, Spend, spend_of


@dataclass
class Stages:
    """Seconds per stage of a phase (``seconds_<stage>`` in its row): ``with stages("train"):``."""

    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        clock = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - clock


@dataclass
class Generation:
    """The teacher compute a row records: cumulative over the trial and this phase's."""

    new: list[Item]  # the items this phase charges
    charged: list[Item]  # every item the trial is charged so far
    rating: Spend  # rating calls over the trial
    rating_phase: Spend = field(default_factory=Spend)


@dataclass
class Selection:
    """What an iteration picked, and the scores it picked by."""

    picked: pd.DataFrame
    scores: np.ndarray | None  # one float per seed; None: a strategy without a scorer
    scored: pd.DataFrame
    arms: np.ndarray | None = None  # a bandit's: the arm of each picked row (None: no bandit)


def row(
    phase: str,
    iteration: int,
    n_synthetic: int,
    accuracy: dict[str, float],
    stages: Stages,
    *,
    generation: Generation | None = None,
    train: dict[str, float] | None = None,
    selection: Selection | None = None,
    analysis: Spend | None = None,
    model_seconds: float | None = None,
    bandit: dict[str, float] | None = None,
) -> dict[str, Any]:
    """The metrics row of one phase.

    Args:
        phase: ``base``, ``warmup``, ``iteration`` or ``stopped``.
        iteration: t (-1 before iteration 0).
        n_synthetic: the items the student is trained on.
        accuracy: ``accuracy`` and ``accuracy_difficulty_<k>`` on the test set.
        stages: the phase's stage times.
        generation: teacher compute (every phase that can spend it).
        train: the training call's stats.
        selection: an iteration's picks and scores.
        analysis: what scoring items for the report cost (not charged to the budget).
        model_seconds: model compute inside the runner's scoring actors.
        bandit: a bandit's choices and rewards (``bandit_{share,picks,progress,reward}_<arm>``).
    """
    result: dict[str, Any] = {
        "phase": phase,
        "iteration": iteration,
        "n_synthetic": n_synthetic,
        **accuracy,
        **{f"seconds_{name}": seconds for name, seconds in stages.seconds.items()},
    }
    if selection is not None:
        # The strategy's own cost: answering, rating, scoring and selecting (and a bandit's
        # measuring of progress).
        result["selection_seconds"] = sum(
            stages.seconds.get(name, 0.0) for name in ("answer", "rate", "select", "progress")
        )
    if generation is not None:
        result.update(generation_metrics(generation))
    if train:
        result.update({f"train_{k}": v for k, v in train.items()})
    if selection is not None:
        result.update(difficulty_counts("picks", selection.picked))
        if selection.scores is not None:
            result.update(score_stats(selection.scores, selection.scored))
    if bandit:
        result.update(bandit)
    if analysis is not None and analysis.calls:
        result.update(analysis_tokens_phase=analysis.tokens, analysis_calls_phase=analysis.calls)
    if model_seconds is not None:
        result["seconds_scoring_model"] = model_seconds
    return result


def generation_metrics(generation: Generation) -> dict[str, Any]:
    """Items and teacher compute: cumulative over the trial (curves are drawn against teacher
    tokens) and this phase's. Teacher tokens are generation plus rating calls (a judge's or
    lion's referee's, charged as teacher compute: DESIGN section 2)."""
    new, rating, rating_phase = generation.new, generation.rating, generation.rating_phase
    reasons = Counter(item.reject_reason for item in new if not item.accepted)
    made, made_phase = spend_of(generation.charged), spend_of(new)
    total = made + rating
    return {
        "n_new": sum(item.accepted for item in new),
        "n_rejected": sum(reasons.values()),
        **{f"rejected_{reason}": reasons.get(str(reason), 0) for reason in RejectReason},
        "teacher_prompt_tokens": total.prompt_tokens,
        "teacher_completion_tokens": total.completion_tokens,
        "teacher_tokens": total.tokens,
        "teacher_tokens_phase": made_phase.tokens + rating_phase.tokens,
        "generation_tokens": made.tokens,
        "generation_tokens_phase": made_phase.tokens,
        "rating_tokens": rating.tokens,
        "rating_tokens_phase": rating_phase.tokens,
        "rating_calls_phase": rating_phase.calls,
        "rating_unrated_phase": rating_phase.unrated,
        "teacher_calls": total.calls,
        "teacher_cached": total.cached,
        "teacher_retries": total.retries,
        "teacher_failed": total.failed,
    }


def accuracy(answers: pd.DataFrame) -> dict[str, float]:
    """Test accuracy, and per difficulty where the task knows it."""
    result = {"accuracy": float(answers[CORRECT].mean())}
    if DIFFICULTY in answers.columns:
        by_level = answers.groupby(DIFFICULTY)[CORRECT].mean()
        result.update({f"accuracy_difficulty_{int(k)}": float(v) for k, v in by_level.items()})
    return result


def difficulty_counts(prefix: str, table: pd.DataFrame) -> dict[str, int]:
    """``{prefix}_difficulty_{k}``: how many rows of ``table`` have difficulty k (the
    histogram of an iteration's picks), where the task knows difficulties."""
    if DIFFICULTY not in table.columns or table.empty:
        return {}
    counts = table[DIFFICULTY].dropna().astype(int).value_counts().sort_index()
    return {f"{prefix}_difficulty_{k}": int(v) for k, v in counts.items()}


def score_stats(scores: np.ndarray, scored: pd.DataFrame) -> dict[str, float]:
    """The seeds' scores, and the student's accuracy on the seeds where it answered them."""
    stats = {"score_mean": float(scores.mean()), "score_std": float(scores.std())}
    if CORRECT in scored.columns:
        stats["seed_accuracy"] = float(scored[CORRECT].mean())
    return stats


def format_row(row: dict[str, Any]) -> str:
    """One line of the per-iteration table printed during a trial."""
    seconds = sum(v for k, v in row.items() if k.startswith("seconds_"))
    return (
        f"[trial] t={row['iteration']:>2}  items={row['n_synthetic']:>4}  "
        f"new={row.get('n_new', 0):>3}  "
        f"rejected={row.get('n_rejected', 0):>3}  teacher_tokens="
        f"{row.get('teacher_tokens', 0):>7}  "
        f"accuracy={row['accuracy']:.3f}  seconds={seconds:.1f}"
    )
