"""A trial's state and its checkpoints: what a resumed trial needs, saved after the
warm-up and every iteration.

Layout: ``out/checkpoints/{start, iter_NNN}/{state.json, items.jsonl, evaluations.jsonl,
student/}`` and ``out/checkpoints/latest``, the name of the newest complete one.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class TrialState:
    """Everything a resumed trial needs; saved after every iteration."""

    rng: np.random.Generator
    next_iteration: int = 0
    items: list[dict[str, Any]] = field(default_factory=list)  # accepted and rejected
    metrics: list[dict[str, Any]] = field(default_factory=list)
    picks: list[list[str]] = field(default_factory=list)  # seed ids per iteration
    scores: list[dict[str, float]] = field(default_factory=list)  # seed id -> score, per iteration
    # What rating calls (judge, lion) cost over the trial: RatingCost's fields, cumulative.
    rating: dict[str, int] = field(default_factory=dict)
    memo: dict[str, Any] = field(default_factory=dict)  # raters' per-seed values (lion)
    # One per test evaluation (base, warm-up, iterations): phase, iteration, and
    # ``correct``: test item id -> the student's answer was right.
    evaluations: list[dict[str, Any]] = field(default_factory=list)

    @property
    def accepted(self) -> list[dict[str, Any]]:
        return [item for item in self.items if item["accepted"]]

    @property
    def teacher_tokens(self) -> int:
        """Teacher compute so far: generation plus rating calls."""
        return (
            teacher_tokens(self.items)
            + self.rating.get("prompt_tokens", 0)
            + self.rating.get("completion_tokens", 0)
        )


def teacher_tokens(items: list[dict[str, Any]]) -> int:
    """What the teacher calls behind ``items`` cost, in tokens."""
    return sum(item["prompt_tokens"] + item["completion_tokens"] for item in items)


# ---- checkpoints: out/checkpoints/{start, iter_NNN}/{state.json, items.jsonl, student/} ----


def latest_checkpoint(out: Path) -> Path | None:
    """The folder ``out/checkpoints/latest`` points at, or None before the first checkpoint."""
    pointer = out / "checkpoints" / "latest"
    if not pointer.is_file():
        return None
    return out / "checkpoints" / pointer.read_text(encoding="utf-8").strip()


def save_checkpoint(
    out: Path,
    state: TrialState,
    save_student: Callable[[Path], None],
    checkpointed: Callable[[Path, list[dict[str, Any]]], None],
    name: str | None = None,
    new_rows: int = 1,
) -> Path:
    """Writes a checkpoint (by default of iteration ``state.next_iteration - 1``), points
    ``latest`` at it and hands it to ``checkpointed`` with the last ``new_rows`` rows.

    The pointer is replaced atomically last, so a crash mid-write leaves the previous
    checkpoint in force.
    """
    name = name or f"iter_{state.next_iteration - 1:03d}"
    folder = out / "checkpoints" / name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    clock = time.perf_counter()
    save_student(folder / "student")
    _write_jsonl(folder / "items.jsonl", state.items)
    _write_jsonl(folder / "evaluations.jsonl", state.evaluations)
    # Recorded before state.json is written, so a resumed trial's metrics match exactly.
    state.metrics[-1]["seconds_checkpoint"] = time.perf_counter() - clock
    payload = {
        "next_iteration": state.next_iteration,
        "rng": state.rng.bit_generator.state,
        "metrics": state.metrics,
        "picks": state.picks,
        "scores": state.scores,
        "rating": state.rating,
        "memo": state.memo,
    }
    (folder / "state.json").write_text(json.dumps(payload), encoding="utf-8")
    pointer = out / "checkpoints" / "latest.tmp"
    pointer.write_text(name, encoding="utf-8")
    os.replace(pointer, out / "checkpoints" / "latest")
    checkpointed(folder, state.metrics[-new_rows:])
    return folder


def load_checkpoint(folder: Path) -> TrialState:
    """The trial state saved in a checkpoint folder."""
    payload = json.loads((folder / "state.json").read_text(encoding="utf-8"))
    rng = np.random.default_rng()
    rng.bit_generator.state = payload["rng"]
    items, evaluations = (_read_jsonl(folder / f) for f in ("items.jsonl", "evaluations.jsonl"))
    return TrialState(
        rng,
        payload["next_iteration"],
        items,
        payload["metrics"],
        payload["picks"],
        payload["scores"],
        payload.get("rating", {}),
        payload.get("memo", {}),
        evaluations,
    )


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():  # evaluations.jsonl: absent in checkpoints of older versions
        return []
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    # json, not pandas: None stays None and ints stay ints, so a resumed trial sees exactly
    # the items the interrupted one had.
    with path.open("w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(row) + "\n" for row in rows)
