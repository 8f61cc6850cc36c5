"""A trial's state and its checkpoints: what a resumed trial needs, saved after the
warm-up and every iteration.

Layout: ``out/checkpoints/{start, iter_NNN}/{state.json, items.jsonl, evaluations.jsonl,
student/}`` and ``out/checkpoints/latest``, the name of the newest complete one.

Damage a kill or a bad disk can do, and what survives it:

- A checkpoint is written under a hidden staging name (``.iter_003.partial``), fsynced (files
  and folders) and only then renamed into place, so a folder under a checkpoint's name is
  whole; the ``latest`` pointer is swapped (write, fsync, rename, fsync) after that.
- A name rewritten while ``latest`` holds it (a ``stopped`` checkpoint saved again on resume)
  goes to its alternate folder (``stopped.1``, and back again the next time): the pointer moves
  to the new folder once it is whole and the old one is removed after, so no kill leaves
  ``latest`` naming nothing.
- When the checkpoint ``latest`` names is unreadable (missing, truncated or corrupt files),
  :func:`latest_checkpoint` falls back to the newest readable one and logs one warning line
  naming what it skipped.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ray_asd.records import Item, Spend, spend_of
from ray_asd.strategies.bandit import BanditState

log = logging.getLogger(__name__)


@dataclass
class TrialState:
    """Everything a resumed trial needs; saved after every iteration."""

    rng: np.random.Generator
    next_iteration: int = 0
    items: list[Item] = field(default_factory=list)  # accepted and rejected
    metrics: list[dict[str, Any]] = field(default_factory=list)
    picks: list[list[str]] = field(default_factory=list)  # seed ids per iteration
    scores: list[dict[str, float]] = field(default_factory=list)  # seed id -> score, per iteration
    rating: Spend = field(default_factory=Spend)  # rating calls (judge, lion) over the trial
    memo: dict[str, Any] = field(default_factory=dict)  # raters' per-seed values (lion)
    # One per test evaluation (base, warm-up, iterations): phase, iteration, and
    # ``correct``: test item id -> the student's answer was right.
    evaluations: list[dict[str, Any]] = field(default_factory=list)
    bandit: BanditState | None = None  # a bandit's weights and choices (None: no bandit)

    @property
    def accepted(self) -> list[Item]:
        return [item for item in self.items if item.accepted]

    @property
    def spent(self) -> Spend:
        """Teacher compute so far: generation plus rating calls."""
        return spend_of(self.items) + self.rating

    def record(self, row: dict[str, Any], correct: dict[str, bool]) -> None:
        """A phase's metrics row and its test evaluation (each test item's correctness)."""
        self.metrics.append(row)
        phase, iteration = row["phase"], row["iteration"]
        self.evaluations.append({"phase": phase, "iteration": iteration, "correct": correct})


# ---- checkpoints: out/checkpoints/{start, iter_NNN}/{state.json, items.jsonl, student/} ----

POINTER = "latest"
ALTERNATE = ".1"  # the second folder of a name rewritten while current: stopped -> stopped.1
STAGING = ".partial"  # a checkpoint being written: .iter_003.partial (hidden, never read)
# What a damaged checkpoint raises while it is read: a missing file, bytes that are not UTF-8
# or JSON (ValueError), a record without a field (KeyError) or of the wrong shape (TypeError).
_DAMAGE = (OSError, ValueError, KeyError, TypeError)


def latest_checkpoint(out: Path) -> Path | None:
    """The checkpoint a resumed trial continues from: the one ``out/checkpoints/latest`` names,
    or, when that one is unreadable, the newest readable other one (one warning line names
    what was skipped). None before the first checkpoint, or when none is readable."""
    root = out / "checkpoints"
    named = _pointer(root)
    if named is None:
        return None
    problem = _damage(root / named) if named else "an unreadable pointer"
    if problem is None:
        return root / named
    skipped = {named or POINTER: problem}
    readable: list[tuple[tuple[int, int, float], Path]] = []
    for folder in sorted(root.iterdir()):
        if not folder.is_dir() or folder.name.startswith(".") or folder.name == named:
            continue
        state = _try_load(folder)
        if isinstance(state, str):
            skipped[folder.name] = state
        else:  # most progress first; a tie (a stale alternate) goes to the newer file
            progress = (state.next_iteration, len(state.metrics))
            readable.append(((*progress, (folder / "state.json").stat().st_mtime), folder))
    found = max(readable, key=lambda pair: pair[0])[1] if readable else None
    reasons = "; ".join(f"{name} ({why})" for name, why in skipped.items())
    then = f"resuming from {found.name}" if found else "none is readable: starting anew"
    log.warning("checkpoints in %s: skipped %s: %s", root, reasons, then)
    return found


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

    Whole or absent: written under a staging name, fsynced and renamed into place before the
    pointer moves, so a kill at any point leaves ``latest`` naming a complete checkpoint.

    Returns:
        The checkpoint's folder: ``out/checkpoints/NAME``, or ``NAME.1`` when ``NAME`` is the
        current checkpoint being rewritten (and back to ``NAME`` the time after).
    """
    name = name or f"iter_{state.next_iteration - 1:03d}"
    root = out / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    current = _pointer(root)
    folder, other = root / name, root / _alternate(name)
    if current == name and _damage(folder) is None:
        folder, other = other, folder  # latest holds it: the new one goes next to it
    staging = root / f".{folder.name}{STAGING}"
    shutil.rmtree(staging, ignore_errors=True)  # what a killed writer left
    staging.mkdir()
    clock = time.perf_counter()
    save_student(staging / "student")
    _write_jsonl(staging / "items.jsonl", [item.to_json() for item in state.items])
    _write_jsonl(staging / "evaluations.jsonl", state.evaluations)
    # Recorded before state.json is written, so a resumed trial's metrics match exactly.
    state.metrics[-1]["seconds_checkpoint"] = time.perf_counter() - clock
    payload = {
        "next_iteration": state.next_iteration,
        "rng": state.rng.bit_generator.state,
        "metrics": state.metrics,
        "picks": state.picks,
        "scores": state.scores,
        "rating": state.rating.as_dict(),
        "memo": state.memo,
        # Only a bandit's trial has the key: every other state.json is as it was.
        **({"bandit": state.bandit.to_json()} if state.bandit is not None else {}),
    }
    (staging / "state.json").write_text(json.dumps(payload), encoding="utf-8")
    _fsync_tree(staging)  # on disk before any name says it is whole
    if folder.exists():  # a stale copy (latest names another): replaced
        shutil.rmtree(folder)
    staging.rename(folder)
    _fsync(root)
    _point(root, folder.name)
    if other.exists():  # the checkpoint rewritten, or a stale alternate: latest moved on
        shutil.rmtree(other)
    checkpointed(folder, state.metrics[-new_rows:])
    return folder


def load_checkpoint(folder: Path) -> TrialState:
    """The trial state saved in a checkpoint folder.

    Raises:
        OSError, ValueError, KeyError, TypeError: a missing or damaged file.
    """
    payload = json.loads((folder / "state.json").read_text(encoding="utf-8"))
    rng = np.random.default_rng()
    rng.bit_generator.state = payload["rng"]
    return TrialState(
        rng,
        payload["next_iteration"],
        [Item.from_json(record) for record in _read_jsonl(folder / "items.jsonl")],
        payload["metrics"],
        payload["picks"],
        payload["scores"],
        Spend(**payload.get("rating", {})),
        payload.get("memo", {}),
        # Absent in checkpoints of older versions.
        _read_jsonl(folder / "evaluations.jsonl", required=False),
        BanditState.from_json(payload["bandit"]) if "bandit" in payload else None,
    )


def _try_load(folder: Path) -> TrialState | str:
    """The checkpoint's state, or what is wrong with it."""
    try:
        state = load_checkpoint(folder)
    except _DAMAGE as error:
        return f"{type(error).__name__}: {error}"
    if not state.metrics:  # every checkpoint holds the base model's row at least
        return "state.json: no metrics rows"
    return state


def _damage(folder: Path) -> str | None:
    """What is wrong with a checkpoint folder; None: it loads."""
    if not folder.is_dir():
        return "missing"
    state = _try_load(folder)
    return state if isinstance(state, str) else None


def _alternate(name: str) -> str:
    return name.removesuffix(ALTERNATE) if name.endswith(ALTERNATE) else name + ALTERNATE


def _pointer(root: Path) -> str | None:
    """The name ``latest`` holds; "" when it cannot be read, None before the first save."""
    pointer = root / POINTER
    if not pointer.is_file():
        return None
    try:
        return pointer.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return ""


def _point(root: Path, name: str) -> None:
    """Swaps ``latest`` to ``name``: the new pointer is on disk before it replaces the old."""
    staging = root / f"{POINTER}.tmp"
    with staging.open("w", encoding="utf-8") as handle:
        handle.write(name)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(staging, root / POINTER)
    _fsync(root)


def _fsync_tree(folder: Path) -> None:
    """fsyncs every file and folder under ``folder``, deepest first, ``folder`` last."""
    for parent, _, files in os.walk(folder, topdown=False):
        for file in files:
            _fsync(Path(parent) / file)
        _fsync(Path(parent))


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as error:  # a folder on a filesystem that cannot fsync one
        if error.errno != errno.EINVAL:
            raise
    finally:
        os.close(fd)


def _read_jsonl(path: Path, required: bool = True) -> list[dict[str, Any]]:
    if not required and not path.is_file():
        return []
    with path.open(encoding="utf-8") as lines:
        rows = [json.loads(line) for line in lines]
    if not all(isinstance(row, dict) for row in rows):
        raise ValueError(f"{path.name}: a line that is not a JSON object")
    return rows


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    # json, not pandas: None stays None and ints stay ints, so a resumed trial sees exactly
    # the items the interrupted one had.
    with path.open("w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(row) + "\n" for row in rows)
