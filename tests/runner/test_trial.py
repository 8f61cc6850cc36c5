"""A Tune trial whose tracking server is down through a checkpoint finishes without a retry,
and its MLflow run gets every row once the server is back."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from ray_asd.experiment import load_experiment
from ray_asd.runner import run_experiment
from ray_asd.tracking import RETRY_SECONDS, STEP_OF_PHASE
from tests.helpers.relay import Relay

from .conftest import LocalCluster

pytestmark = [pytest.mark.ray, pytest.mark.slow]

SMOKE = Path(__file__).resolve().parents[2] / "configs" / "smoke.yaml"
CELL = "loss-tiny-arith-seed0"
# The trial's 3 tries of a call span sum(RETRY_SECONDS) = 2.5 s: down that long and 2 s more
# after the first connection it refuses (the first try may fail on a connection the relay hung
# up), the server outlasts them.
HELD = sum(RETRY_SECONDS) + 2.0


def wait_for(condition: Callable[[], bool], timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


@pytest.fixture
def relay(mlflow_server: str) -> Iterator[Relay]:
    relay = Relay(mlflow_server)
    yield relay
    relay.close()


def test_a_tracking_server_down_through_a_checkpoint_costs_no_retry(
    ray_cluster: LocalCluster,
    relay: Relay,
    mlflow_server: str,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    overrides = [f"storage={tmp_path}", "name=outage", "grid.strategy=[loss]"]
    config = load_experiment(SMOKE, [*overrides, f"tracking.uri={relay.url}"])
    checkpoints = tmp_path / "outage" / "trials" / CELL / "checkpoints"
    downtime: list[float] = []

    def warmup_logged() -> bool:
        """The start's checkpoint (base and warm-up) synced: its rows, then its files, the
        evaluations last."""
        client = MlflowClient(mlflow_server)
        experiment = client.get_experiment_by_name("outage")
        runs = client.search_runs([experiment.experiment_id]) if experiment else []
        return bool(runs) and "evaluations.jsonl" in {
            artifact.path for artifact in client.list_artifacts(runs[0].info.run_id)
        }

    def down_through_iteration_0() -> None:
        wait_for(warmup_logged)  # the run is open, the checkpoints before iteration 0 logged
        relay.set_down(True)
        wait_for((checkpoints / "iter_000" / "state.json").exists)
        down = time.monotonic()
        refused = relay.refused
        wait_for(lambda: relay.refused > refused)  # the checkpoint's tries have begun
        time.sleep(HELD)
        relay.set_down(False)
        downtime.append(time.monotonic() - down)

    outage = threading.Thread(target=down_through_iteration_0, daemon=True)
    outage.start()
    outcome = run_experiment(config)
    outage.join(timeout=60)

    # The 3 tries failed, and the trial went on with one warning line (Ray forwards the
    # trial's log to this driver): iteration 0's rows waited for iteration 1's checkpoint.
    assert downtime and downtime[0] >= HELD
    warnings = [line for line in capfd.readouterr().err.splitlines() if "tracking unavail" in line]
    # (Ray may forward a line twice: every line says the one row of iteration 0 waits.)
    assert warnings and all("1 metrics rows wait" in line for line in warnings), "\n".join(warnings)

    assert not outcome.errors
    client = MlflowClient(mlflow_server)
    (run,) = client.search_runs([client.get_experiment_by_name("outage").experiment_id])
    assert "ray_asd.restores" not in run.data.tags  # one attempt: Tune retried nothing
    assert run.info.status == "FINISHED"
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "accuracy")]
    assert steps == [-2, -1, 0, 1]  # iteration 0's row came with iteration 1's
    # (MLflow's own retries are off in a trial: tests/test_tracking.py, no clock bound here.)
    assert run.data.metrics["trial_seconds_mlflow"] >= sum(RETRY_SECONDS)  # the tries waited
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
