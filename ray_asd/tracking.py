"""MLflow: one experiment per config, one run per trial, metrics per iteration.

Steps: iteration t is logged at step t, the warm-up at step -1 and the base model at step -2,
so every curve starts from the untrained student. The run id travels in the trial's
checkpoint, so a trial restored by Tune continues its run instead of opening a new one, and
logging is idempotent per step: a restored trial re-sends its rows, MLflow gets each once.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

from ray_asd.errors import ConfigError

# MLflow limits: params and metrics per log_batch call, characters per param value.
BATCH = 100
MAX_PARAM = 6000
STEP_OF_PHASE = {"base": -2, "warmup": -1}
STEP_MARKER = "n_synthetic"
GRID_TAG = "ray_asd.grid"  # experiment tag: the grid's axes, for `ray-asd report`
GRID_AXES = ("strategy", "student", "task", "seed")
MAX_EXPERIMENT_TAG = 5000


def default_uri(storage: Path) -> str:
    """The embedded default: a SQLite file next to the experiment folders."""
    return f"sqlite:///{(storage / 'mlflow.db').resolve()}"


def ui_command(uri: str) -> str:
    """The command that shows the runs of ``uri`` in the browser."""
    if uri.startswith(("http://", "https://")):
        return f"open {uri}"
    return f"mlflow ui --backend-store-uri {uri}"


def prepare_experiment(uri: str, name: str, storage: Path) -> str:
    """The id of MLflow experiment ``name`` (created if needed) at tracking ``uri``.

    Created by the driver before any trial starts, so trials never race to create it. With
    a database URI the artifacts go to ``storage/mlartifacts``; a tracking server chooses its
    own artifact store.
    """
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(name)
    if experiment is not None and experiment.lifecycle_stage == "deleted":
        raise ConfigError(
            f"tracking.experiment: MLflow experiment {name!r} is deleted at {uri}; restore it "
            f"(mlflow experiments restore --experiment-id {experiment.experiment_id}) or "
            "choose another name"
        )
    if experiment is not None:
        return experiment.experiment_id
    location = None
    if not uri.startswith(("http://", "https://", "databricks")):
        location = (storage / "mlartifacts").resolve().as_uri()
    return client.create_experiment(name, artifact_location=location)


def record_grid(uri: str, experiment_id: str, cells: list[dict[str, str]]) -> None:
    """Tags the MLflow experiment with the grid's axes (the labels of every cell's tags), so
    that `ray-asd report` can name the cells that have no run yet. Skipped for a grid whose
    labels do not fit in a tag."""
    axes = {axis: list(dict.fromkeys(tags[axis] for tags in cells)) for axis in GRID_AXES}
    text = json.dumps(axes)
    if len(text) <= MAX_EXPERIMENT_TAG:
        MlflowClient(uri).set_experiment_tag(experiment_id, GRID_TAG, text)


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"task": {"params": {"max_ops": 3}}}`` -> ``{"task.params.max_ops": "3"}``."""
    flat: dict[str, str] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            text = value if isinstance(value, str) else json.dumps(value, default=str)
            flat[name] = text[:MAX_PARAM]
    return flat


class TrialRun:
    """The MLflow run of one trial."""

    def __init__(self, uri: str, run_id: str) -> None:
        self.client = MlflowClient(uri)
        self.run_id = run_id
        # Every row carries n_synthetic: its history lists the steps logged so far.
        history = self.client.get_metric_history(run_id, STEP_MARKER)
        self.logged_steps = {metric.step for metric in history}

    @classmethod
    def start(
        cls,
        uri: str,
        experiment_id: str,
        name: str,
        tags: dict[str, str],
        params: dict[str, Any],
    ) -> TrialRun:
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        client = MlflowClient(uri)
        run = client.create_run(experiment_id, run_name=name, tags=tags)
        items = [Param(k, v) for k, v in flatten(params).items()]
        for i in range(0, len(items), BATCH):
            client.log_batch(run.info.run_id, params=items[i : i + BATCH])
        return cls(uri, run.info.run_id)

    def log_rows(self, rows: list[dict[str, Any]]) -> None:
        """Every numeric value of each metrics row at the row's step; steps logged before
        are skipped. The step marker goes last, so a step counts as logged only once all of
        its values are."""
        now = int(time.time() * 1000)
        for row in rows:
            step = STEP_OF_PHASE.get(row["phase"], row["iteration"])
            if step in self.logged_steps:
                continue
            metrics = [
                Metric(key, float(value), now, step)
                for key, value in row.items()
                if key not in ("iteration", "phase", STEP_MARKER) and isinstance(value, int | float)
            ]
            metrics.append(Metric(STEP_MARKER, float(row[STEP_MARKER]), now, step))
            for i in range(0, len(metrics), BATCH):
                self.client.log_batch(self.run_id, metrics=metrics[i : i + BATCH])
            self.logged_steps.add(step)

    def log_summary(self, values: dict[str, float]) -> None:
        """Metrics of the whole trial (no step of their own: logged at step 0)."""
        now = int(time.time() * 1000)
        metrics = [Metric(key, float(value), now, 0) for key, value in values.items()]
        self.client.log_batch(self.run_id, metrics=metrics)

    def tag(self, key: str, value: str) -> None:
        self.client.log_batch(self.run_id, tags=[RunTag(key, value)])

    def log_artifact(self, path: Path, folder: str | None = None) -> None:
        if path.is_dir():
            self.client.log_artifacts(self.run_id, str(path), folder)
        else:
            self.client.log_artifact(self.run_id, str(path), folder)

    def finish(self, status: str = "FINISHED") -> None:
        self.client.set_terminated(self.run_id, status)
