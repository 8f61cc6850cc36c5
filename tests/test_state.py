"""Checkpoints that survive damage: whole or absent under SIGKILL, a rewrite of the current one
never leaves ``latest`` naming nothing, and a damaged latest falls back to the newest readable."""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ray_asd.records import Item
from ray_asd.state import TrialState, latest_checkpoint, load_checkpoint, save_checkpoint
from ray_asd.strategies.bandit import BanditState

# The child process: saves checkpoint "stopped" once, then rewrites it while it is current,
# either once with a student save that signals and blocks (the test kills it there) or in an
# endless loop (the test kills it at a random moment).
CHILD = """
import sys, time
from pathlib import Path
import numpy as np
from ray_asd.records import Item
from ray_asd.state import TrialState, save_checkpoint

out, mode = Path(sys.argv[1]), sys.argv[2]

def state(k):
    item = Item(f"i{k}", "s", 0, 1, "loss", "o", "q", "a", "1", 1, 1, 1, 0, 0, None, True, None)
    return TrialState(np.random.default_rng(k), 1, [item], [{"phase": "stopped", "k": k}])

def student(path):
    path.mkdir()
    (path / "adapter.safetensors").write_bytes(bytes(4096))

def blocking(path):
    student(path)
    (out / "marker").write_text("saving")
    time.sleep(600)

save_checkpoint(out, state(0), student, lambda folder, rows: None, "stopped")
if mode == "block":
    save_checkpoint(out, state(1), blocking, lambda folder, rows: None, "stopped")
(out / "marker").write_text("looping")
for k in range(1, 10**9):
    save_checkpoint(out, state(k), student, lambda folder, rows: None, "stopped")
"""


def item(k: int) -> Item:
    """An accepted item whose id names ``k``."""
    return Item.from_json(
        {
            "id": f"i{k}",
            "seed_id": "s",
            "iteration": 0,
            "attempt": 1,
            "strategy": "loss",
            "teacher": "oracle",
            "question": "q",
            "answer": "a",
            "final_answer": "1",
            "prompt_tokens": 1,
            "completion_tokens": 1,
            "teacher_calls": 1,
            "teacher_retries": 0,
            "teacher_cached": 0,
            "teacher_error": None,
            "accepted": True,
            "reject_reason": None,
        }
    )


def make_state(k: int, next_iteration: int = 1) -> TrialState:
    return TrialState(
        np.random.default_rng(k),
        next_iteration,
        items=[item(k)],
        metrics=[{"phase": "iteration", "k": k}],
    )


def save(out: Path, state: TrialState, name: str | None = None) -> Path:
    def student(path: Path) -> None:
        path.mkdir()
        (path / "adapter.safetensors").write_bytes(b"weights")

    return save_checkpoint(out, state, student, lambda folder, rows: None, name)


def kill_while_saving(out: Path, mode: str, delay: float = 0.0) -> None:
    """Runs CHILD until it signals, waits ``delay`` seconds and SIGKILLs it."""
    out.mkdir(parents=True, exist_ok=True)
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(out), mode])
    try:
        deadline = time.monotonic() + 60
        while not (out / "marker").exists():
            assert child.poll() is None, "the child exited before it got to the rewrite"
            assert time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(delay)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL


def test_a_checkpoint_is_renamed_into_place_and_pointed_at(tmp_path: Path) -> None:
    assert latest_checkpoint(tmp_path) is None
    folder = save(tmp_path, make_state(0))
    assert folder == tmp_path / "checkpoints" / "iter_000"
    assert latest_checkpoint(tmp_path) == folder
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["iter_000", "latest"]
    assert load_checkpoint(folder).items == [item(0)]


def test_rewriting_the_current_checkpoint_alternates_its_folder(tmp_path: Path) -> None:
    first = save(tmp_path, make_state(0), "stopped")
    second = save(tmp_path, make_state(1), "stopped")
    third = save(tmp_path, make_state(2), "stopped")
    assert (first.name, second.name, third.name) == ("stopped", "stopped.1", "stopped")
    assert not second.exists()  # removed once latest moved on
    assert load_checkpoint(latest_checkpoint(tmp_path)).items[0].id == "i2"
    # A name latest does not hold is replaced in place (a resumed trial's re-saved iteration).
    save(tmp_path, make_state(3), "iter_000")
    save(tmp_path, make_state(4), "stopped")
    assert save(tmp_path, make_state(5), "iter_000").name == "iter_000"


def test_a_trial_killed_while_its_current_checkpoint_is_rewritten_resumes(
    tmp_path: Path,
) -> None:
    kill_while_saving(tmp_path, "block")
    folder = latest_checkpoint(tmp_path)
    assert folder is not None and load_checkpoint(folder).items[0].id == "i0"
    # The half-written rewrite is left under its staging name, never read, and cleaned by the
    # next save, which succeeds.
    assert (tmp_path / "checkpoints" / ".stopped.1.partial" / "student").is_dir()
    resumed = save(tmp_path, make_state(7, next_iteration=2), "stopped")
    assert load_checkpoint(latest_checkpoint(tmp_path)).items[0].id == "i7"
    assert sorted(p.name for p in resumed.parent.iterdir()) == ["latest", resumed.name]


@pytest.mark.slow  # 8 children, each killed at a random moment: ~2.5 s
def test_a_kill_at_any_moment_of_a_rewrite_leaves_a_readable_latest(tmp_path: Path) -> None:
    rounds = random.Random(17)
    for i in range(8):
        out = tmp_path / str(i)
        kill_while_saving(out, "loop", delay=rounds.uniform(0.0, 0.2))
        folder = latest_checkpoint(out)
        assert folder is not None, sorted(p.name for p in (out / "checkpoints").iterdir())
        assert load_checkpoint(folder).metrics[0]["phase"] == "stopped"


def test_a_corrupt_latest_falls_back_to_the_newest_readable_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for t in range(3):
        save(tmp_path, make_state(t, next_iteration=t + 1))
    root = tmp_path / "checkpoints"
    (root / "iter_002" / "state.json").write_text('{"next_iteration": 3, "rng"')  # truncated
    (root / "iter_001" / "items.jsonl").write_bytes(b'{"accepted": true, "k": \xff}\n')
    with caplog.at_level(logging.WARNING, logger="ray_asd.state"):
        folder = latest_checkpoint(tmp_path)
    assert folder == root / "iter_000"
    assert len(caplog.records) == 1
    line = caplog.records[0].getMessage()
    assert "iter_002 (JSONDecodeError" in line and "iter_001 (UnicodeDecodeError" in line
    assert line.endswith("resuming from iter_000")
    # The next save of the damaged name replaces it in place.
    assert save(tmp_path, make_state(9, next_iteration=3), "iter_002").name == "iter_002"
    assert latest_checkpoint(tmp_path) == root / "iter_002"


@pytest.mark.parametrize(
    "damage",
    [
        lambda folder: (folder / "state.json").unlink(),
        lambda folder: (folder / "items.jsonl").write_text("[1, 2]\n"),  # not an object
        lambda folder: (folder / "state.json").write_text(json.dumps({"next_iteration": 1})),
        lambda folder: [p.unlink() for p in folder.rglob("*") if p.is_file()],
    ],
    ids=["no state.json", "non-object row", "missing fields", "emptied"],
)
def test_every_kind_of_damage_is_skipped(tmp_path: Path, damage) -> None:
    save(tmp_path, make_state(0))
    damage(save(tmp_path, make_state(1, next_iteration=2)))
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoints" / "iter_000"


def test_no_readable_checkpoint_starts_anew(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    save(tmp_path, make_state(0))
    (tmp_path / "checkpoints" / "latest").write_bytes(b"\xff\xfe")
    (tmp_path / "checkpoints" / "iter_000" / "state.json").write_text("")
    with caplog.at_level(logging.WARNING, logger="ray_asd.state"):
        assert latest_checkpoint(tmp_path) is None
    assert "latest (an unreadable pointer); iter_000 (JSONDecodeError" in caplog.text
    assert "none is readable: starting anew" in caplog.text


def test_a_bandits_state_round_trips_and_other_trials_have_no_key(tmp_path: Path) -> None:
    plain = save(tmp_path / "plain", make_state(0))
    assert "bandit" not in json.loads((plain / "state.json").read_text())
    assert load_checkpoint(plain).bandit is None
    state = make_state(1)
    state.bandit = BanditState((0.0, -1.5), (0.5, 1.5), ((0, 1, 1),))
    folder = save(tmp_path / "bandit", state)
    assert load_checkpoint(folder).bandit == state.bandit
