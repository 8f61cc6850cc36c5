"""A trial's metrics rows: what each phase of the loop records (MLflow, Tune, the table
`ray-asd trial` prints)."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict
from typing import Any

import numpy as np
import pandas as pd

from ray_asd.filters import RejectReason
from ray_asd.raters import RatingCost
from ray_asd.state import teacher_tokens
from ray_asd.tasks import DIFFICULTY


def accumulate(totals: dict[str, int], cost: RatingCost) -> None:
    for key, value in asdict(cost).items():
        totals[key] = totals.get(key, 0) + value


def generation_metrics(
    new: list[dict[str, Any]],
    items: list[dict[str, Any]],
    rating: dict[str, int],
    rating_phase: RatingCost,
) -> dict[str, Any]:
    """Items and teacher compute: cumulative over the trial (curves are drawn against teacher
    tokens) and this phase's. Teacher tokens are generation plus rating calls (a judge's or
    lion's referee's, charged as teacher compute: DESIGN section 2)."""
    reasons = Counter(item["reject_reason"] for item in new if not item["accepted"])
    rating_tokens = rating.get("prompt_tokens", 0) + rating.get("completion_tokens", 0)
    return {
        "n_new": sum(item["accepted"] for item in new),
        "n_rejected": sum(reasons.values()),
        **{f"rejected_{reason}": reasons.get(str(reason), 0) for reason in RejectReason},
        "teacher_prompt_tokens": sum(item["prompt_tokens"] for item in items)
        + rating.get("prompt_tokens", 0),
        "teacher_completion_tokens": sum(item["completion_tokens"] for item in items)
        + rating.get("completion_tokens", 0),
        "teacher_tokens": teacher_tokens(items) + rating_tokens,
        "teacher_tokens_phase": teacher_tokens(new) + rating_phase.tokens,
        "generation_tokens": teacher_tokens(items),
        "generation_tokens_phase": teacher_tokens(new),
        "rating_tokens": rating_tokens,
        "rating_tokens_phase": rating_phase.tokens,
        "rating_calls_phase": rating_phase.calls,
        "rating_unrated_phase": rating_phase.unrated,
        **{
            f"teacher_{counter}": sum(item.get(f"teacher_{counter}", 0) for item in items)
            + rating.get(counter, 0)
            for counter in ("calls", "cached", "retries")
        },
        "teacher_failed": sum(item.get("teacher_error") is not None for item in items)
        + rating.get("failed", 0),
    }


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
    if "correct" in scored.columns:
        stats["seed_accuracy"] = float(scored["correct"].mean())
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
