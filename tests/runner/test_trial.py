"""A Tune trial whose tracking store stays unavailable through a checkpoint finishes without a
retry, and its MLflow run gets every row once the store is back."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from ray_asd.experiment import load_experiment
from ray_asd.runner import run_experiment
from ray_asd.tracking import RETRY_SECONDS, STEP_OF_PHASE, default_uri

from .conftest import LocalCluster

pytestmark = [pytest.mark.ray, pytest.mark.slow]

SMOKE = Path(__file__).resolve().parents[2] / "configs" / "smoke.yaml"
CELL = "loss-tiny-arith-seed0"
# MLflow's SQLite sessions wait 20 s for a lock (PRAGMA busy_timeout = 20000): 3 tries and
# the waits between them give up after ~62.5 s, so a lock held 75 s outlasts them.
BUSY_TIMEOUT = 20.0
HELD = 3 * BUSY_TIMEOUT + sum(RETRY_SECONDS) + 12.5


def wait_for(path: Path, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.05)


def test_a_locked_tracking_database_through_a_checkpoint_costs_no_retry(
    ray_cluster: LocalCluster, tmp_path: Path
) -> None:
    config = load_experiment(SMOKE, [f"storage={tmp_path}", "name=locked", "grid.strategy=[loss]"])
    checkpoints = tmp_path / "locked" / "trials" / CELL / "checkpoints"
    held: list[float] = []

    def lock_the_database_through_iteration_0() -> None:
        wait_for(checkpoints / "latest")  # the warm-up's checkpoint: the run is open
        # Another writer holds the database (as a busy trial's long write would) from before
        # iteration 0's checkpoint until its tracking calls have given up.
        database = sqlite3.connect(tmp_path / "mlflow.db", timeout=120, isolation_level=None)
        database.execute("BEGIN EXCLUSIVE")
        locked = time.monotonic()
        wait_for(checkpoints / "iter_000" / "state.json")
        time.sleep(HELD)
        database.execute("ROLLBACK")
        database.close()
        held.append(time.monotonic() - locked)

    locker = threading.Thread(target=lock_the_database_through_iteration_0, daemon=True)
    locker.start()
    outcome = run_experiment(config)
    locker.join(timeout=HELD + 60)

    assert held and held[0] >= HELD
    assert not outcome.errors
    client = MlflowClient(default_uri(tmp_path))
    (run,) = client.search_runs([client.get_experiment_by_name("locked").experiment_id])
    assert "ray_asd.restores" not in run.data.tags  # one attempt: Tune retried nothing
    assert run.info.status == "FINISHED"
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "accuracy")]
    assert steps == [-2, -1, 0, 1]  # iteration 0's row came with iteration 1's
    # The trial spent the three tries of iteration 0's checkpoint waiting on the lock.
    assert run.data.metrics["trial_seconds_mlflow"] >= 3 * BUSY_TIMEOUT
    # The same rows everywhere: metrics.csv, the checkpoint's state.json and MLflow's steps.
    table = pd.read_csv(checkpoints.parent / "final" / "metrics.csv")
    latest = checkpoints / (checkpoints / "latest").read_text(encoding="utf-8").strip()
    rows = json.loads((latest / "state.json").read_text(encoding="utf-8"))["metrics"]
    assert pd.DataFrame(rows).columns.tolist() == table.columns.tolist()
    assert "seconds_scoring_model" in table  # written before the checkpoint, not after
    logged: dict[int, set[str]] = {}
    for key in run.data.metrics:
        if not key.startswith("trial_seconds_"):  # the trial's summary, logged at the end
            for metric in client.get_metric_history(run.info.run_id, key):
                logged.setdefault(metric.step, set()).add(key)
    assert logged == {
        STEP_OF_PHASE.get(row["phase"], row["iteration"]): {
            key
            for key, value in row.items()
            if key not in ("phase", "iteration") and isinstance(value, int | float)
        }
        for row in rows
    }
