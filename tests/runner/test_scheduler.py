"""`ray-asd run` with ``tune.scheduler`` on the test cluster (conftest): ASHA stops the trial
that is worse at its rung, its MLflow run is labelled stopped early, and `ray-asd report` shows
it stopped with its curve up to the stop; the experiment is tagged as a training experiment
and lists the trials' runs without the report's.

The tiny random-init student's accuracy is 0 in every cell, so this grid ranks its cells by
the teacher tokens they spend (``mode: min``): a task axis of 1-operation and 4-operation
arithmetic, whose oracle items are longer, so dearer, by construction. One trial at a time
(``max_concurrent_trials: 1``), in grid order: the cheap cell sets the rung, the dear one
meets it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from ray_asd.cli import main
from ray_asd.experiment import load_experiment
from ray_asd.runner import format_outcome, run_experiment

from .conftest import LocalCluster

CHEAP, DEAR = "random-tiny-arith-1-seed0", "random-tiny-arith-2-seed0"
CONFIG = """
name: stopping
seed: 0
student: {model: "tiny:", max_new_tokens: 16}
teacher: {backend: oracle}
budget: {warmup: 4, iterations: 3, per_iteration: 4}
seeds: {n: 8}
eval: {n: 4}
train: {epochs: 1}
grid:
  strategy: [random]
  task:
    - {name: arith, params: {min_ops: 1, max_ops: 1}}
    - {name: arith, params: {min_ops: 4, max_ops: 4}}
tune:
  scheduler: {metric: teacher_tokens, mode: min, grace_period: 1}
resources:
  trial: {cpus: 1}
  scoring: {actors: 1, cpus: 1, batch_size: 8}
  torch_threads: 1
  max_concurrent_trials: 1
"""


@pytest.mark.slow
@pytest.mark.ray
def test_the_scheduler_stops_the_worse_trial_and_the_report_shows_it_stopped(
    ray_cluster: LocalCluster, sqlite_uri: str, tmp_path: Path
) -> None:
    path = tmp_path / "stopping.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    config = load_experiment(path, [f"storage={tmp_path}", f"tracking.uri={sqlite_uri}"])
    outcome = run_experiment(config, where=str(path))
    assert not outcome.errors
    # The rung is at t = 1 (grace_period); the last iteration, t = 2, is never one.
    assert outcome.stopped == {DEAR: 1}
    assert f"STOPPED EARLY {DEAR}: by tune.scheduler after t = 1" in format_outcome(outcome)

    client = MlflowClient(sqlite_uri)
    experiment = client.get_experiment_by_name("stopping")
    assert experiment.tags["mlflow.experimentKind"] == "finetuning"
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    assert sorted(runs) == [CHEAP, DEAR]
    stopped, finished = runs[DEAR], runs[CHEAP]
    assert (stopped.info.status, finished.info.status) == ("KILLED", "FINISHED")
    assert stopped.data.tags["ray_asd.status"] == "stopped_early"
    assert stopped.data.tags["ray_asd.stopped_at_iteration"] == "1"
    assert "ray_asd.status" not in finished.data.tags
    steps = {
        name: [m.step for m in client.get_metric_history(run.info.run_id, "n_synthetic")]
        for name, run in runs.items()
    }
    assert steps == {CHEAP: [-2, -1, 0, 1, 2], DEAR: [-2, -1, 0, 1]}  # its metrics to the stop
    tokens = {name: run.data.metrics["teacher_tokens"] for name, run in runs.items()}
    assert tokens[DEAR] > tokens[CHEAP]  # why it lost, though the cheap one ran longer

    out = tmp_path / "report"
    assert main(["report", "stopping", "--tracking-uri", sqlite_uri, "--out", str(out)]) == 0
    markdown = (out / "report.md").read_text()
    assert "2 trials (" in markdown and "1 finished" in markdown and "1 stopped early" in markdown
    assert f"| {DEAR} | STOPPED_EARLY | 3 |" in markdown  # the trials table: 3 planned
    assert f"Stopped early by tune.scheduler: {DEAR} (after t = 1)" in markdown
    curves = pd.read_csv(out / "curves.csv")
    assert curves[curves["task"] == "arith-2"]["step"].tolist() == [-2, -1, 0, 1]

    # The report goes to an experiment of its own: the trials' runs stay the trials alone.
    assert sorted(r.info.run_name for r in client.search_runs([experiment.experiment_id])) == [
        CHEAP,
        DEAR,
    ]
    reports = client.get_experiment_by_name("stopping (report)")
    assert [r.info.run_name for r in client.search_runs([reports.experiment_id])] == ["report"]
