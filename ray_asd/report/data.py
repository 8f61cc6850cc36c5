"""An experiment's trials, read back from MLflow (any tracking URI) as tidy tables.

What `ray-asd run` writes (``ray_asd.tracking``): one run per trial, tagged with its
cell (``strategy``, ``student``, ``task``, ``seed``), its config as params, its metrics per
step (-2 base model, -1 warm-up, t iteration t) and ``items.jsonl`` (every teacher output)
as an artifact, refreshed at every checkpoint; the experiment is tagged with the grid.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path

import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Run, ViewType
from mlflow.exceptions import MlflowException

from ray_asd.errors import ConfigError
from ray_asd.tracking import (
    GRID_AXES,
    GRID_TAG,
    STATUS_TAG,
    STEP_OF_PHASE,
    STOPPED_AT_TAG,
    STOPPED_EARLY,
    client_of,
)

REPORT_TAG = "ray_asd.report"  # marks the report's own run, which is not a trial
CURVE_METRICS = ("accuracy", "n_synthetic", "teacher_tokens")
# Optional metrics per step, one per difficulty k of the test items: accuracy_difficulty_<k>.
DIFFICULTY_PREFIX = "accuracy_difficulty_"
# What an items.jsonl row holds for the report; a field an older run lacks reads as NaN.
ITEM_COLUMNS = (
    "id",
    "seed_id",
    "iteration",
    "seed_score",
    "score",
    "student_correct",
    "seed_score_first",  # its seed's score under the trial's first-iteration student
    "correct_first",  # and that student's correctness on the item
    "seed_score_final",  # the same under the final-iteration student
    "correct_final",
    "scorer",  # the scorer that produced the scores
    "seed_difficulty",
)
# Trial tags naming the strategy's parts: scorer "none" and selector "uniform" read nothing
# from the student (the A/A noise floor).
PART_TAGS = {"scorer": "ray_asd.scorer", "selector": "ray_asd.selector"}
BASE_STEP = STEP_OF_PHASE["base"]
# The status of a trial run that tune.scheduler stopped (MLflow's own says KILLED).
STOPPED = "STOPPED_EARLY"


@dataclass
class ExperimentData:
    """The trials of one MLflow experiment."""

    name: str
    uri: str
    experiment_id: str
    runs: pd.DataFrame  # one row per trial: run_id, cell, status (MLflow's, or STOPPED),
    # keys, scorer, selector (tags; None for older runs), iterations, stopped_at, last_step
    curves: pd.DataFrame  # one row per (trial, step): see ray_asd.report.analyses
    items: pd.DataFrame  # accepted items of the iterations, with their scores
    order: list[str]  # strategies in grid order
    notes: list[str] = field(default_factory=list)  # what is missing or left out, one per line


def load(uri: str, name: str) -> ExperimentData:
    """Reads the trials of MLflow experiment ``name`` at tracking ``uri``.

    Raises:
        ConfigError: no such experiment (naming those that exist), or no trials in it.
    """
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one per trial
    client = client_of(uri)
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        names = sorted(e.name for e in client.search_experiments(view_type=ViewType.ALL))
        raise ConfigError(
            f"EXPERIMENT: no MLflow experiment {name!r} at {uri}; there: {', '.join(names) or '-'}"
        )
    notes: list[str] = []
    runs = _trial_runs(client, experiment.experiment_id, notes)
    if not runs:
        raise ConfigError(f"EXPERIMENT: {name!r} at {uri} has no ray-asd trial runs yet")
    table = pd.DataFrame([_describe(run) for run in runs])
    curves = pd.concat([_curve(client, run) for run in runs], ignore_index=True)
    table = table.merge(
        curves[curves["step"] >= 0].groupby("run_id")["step"].max().rename("last_step"),
        on="run_id",
        how="left",
    )
    items = _items(client, runs, notes)
    grid = json.loads(experiment.tags.get(GRID_TAG, "{}"))
    order = [s for s in grid.get("strategy", []) if s in set(table["strategy"])]
    order += [s for s in pd.unique(table["strategy"]) if s not in order]
    notes[:0] = _coverage(table, grid)
    return ExperimentData(name, uri, experiment.experiment_id, table, curves, items, order, notes)


def _trial_runs(client: MlflowClient, experiment_id: str, notes: list[str]) -> list[Run]:
    """The experiment's trial runs, one per cell (the newest where a cell has several)."""
    runs, token = [], None
    while True:
        page = client.search_runs(
            [experiment_id], order_by=["attributes.start_time DESC"], page_token=token
        )
        runs += page
        token = page.token
        if not token:
            break
    trials: dict[tuple[str, ...], Run] = {}  # by (strategy, student, task, seed)
    for run in runs:
        tags = run.data.tags
        if tags.get(REPORT_TAG):
            continue
        if not all(axis in tags for axis in GRID_AXES):
            notes.append(
                f"run {run.info.run_id} ({run.info.run_name}): not a ray-asd trial, skipped"
            )
            continue
        cell = tuple(tags[axis] for axis in GRID_AXES)
        if cell in trials:
            notes.append(
                f"{tags.get('ray_asd.cell', run.info.run_name)}: an older run "
                f"{run.info.run_id} of the same cell is left out (the newest is "
                f"{trials[cell].info.run_id})"
            )
            continue
        trials[cell] = run
    return list(reversed(trials.values()))  # oldest first: the order trials were started


def _describe(run: Run) -> dict[str, object]:
    tags, params = run.data.tags, run.data.params
    stopped = tags.get(STATUS_TAG) == STOPPED_EARLY
    return {
        "run_id": run.info.run_id,
        "cell": tags.get("ray_asd.cell", run.info.run_name),
        "status": STOPPED if stopped else run.info.status,
        **{axis: tags[axis] for axis in GRID_AXES},
        **{part: tags.get(tag) for part, tag in PART_TAGS.items()},  # None: an older run
        "iterations": int(params.get("budget.iterations", "0")),
        "stopped_at": float(tags.get(STOPPED_AT_TAG, "nan")) if stopped else float("nan"),
    }


def _curve(client: MlflowClient, run: Run) -> pd.DataFrame:
    """The run's (step, metric) values as one row per step."""
    values: dict[int, dict[str, float]] = {}
    extra = sorted(k for k in run.data.metrics if k.startswith(DIFFICULTY_PREFIX))
    for key in (*CURVE_METRICS, *extra):
        for metric in client.get_metric_history(run.info.run_id, key):
            values.setdefault(metric.step, {})[key] = metric.value
    tags = run.data.tags
    rows = [
        {
            "run_id": run.info.run_id,
            **{axis: tags[axis] for axis in GRID_AXES},
            "step": step,
            **{key: metrics.get(key, float("nan")) for key in (*CURVE_METRICS, *extra)},
        }
        for step, metrics in sorted(values.items())
    ]
    curve = pd.DataFrame(rows, columns=["run_id", *GRID_AXES, "step", *CURVE_METRICS, *extra])
    # The base model has spent nothing.
    curve.loc[curve["step"] == BASE_STEP, "teacher_tokens"] = 0.0
    return curve


def _items(client: MlflowClient, runs: list[Run], notes: list[str]) -> pd.DataFrame:
    """The accepted items of every iteration (not the warm-up's) with their scores."""
    frames = []
    with tempfile.TemporaryDirectory() as folder:
        for run in runs:
            try:
                path = client.download_artifacts(run.info.run_id, "items.jsonl", folder)
            except (MlflowException, OSError):
                notes.append(f"{run.info.run_name}: no items.jsonl artifact yet")
                continue
            with Path(path).open(encoding="utf-8") as lines:
                rows = [json.loads(line) for line in lines]
            accepted = [r for r in rows if r.get("accepted") and r.get("iteration", -1) >= 0]
            frame = pd.DataFrame(accepted, columns=list(ITEM_COLUMNS))
            tags = run.data.tags
            frames.append(frame.assign(run_id=run.info.run_id, **{a: tags[a] for a in GRID_AXES}))
            os.remove(path)
    if not frames:
        return pd.DataFrame(columns=["run_id", *GRID_AXES, *ITEM_COLUMNS])
    return pd.concat(frames, ignore_index=True)


def _coverage(runs: pd.DataFrame, grid: dict[str, list[str]]) -> list[str]:
    """What the report lacks: cells of the grid with no run, trials not finished."""
    notes = []
    if grid:
        present = set(map(tuple, runs[list(GRID_AXES)].astype(str).to_numpy()))
        missing = [
            cell
            for cell in product(*(grid.get(axis, []) for axis in GRID_AXES))
            if tuple(map(str, cell)) not in present
        ]
        for cell in missing:
            notes.append(
                "no run yet for "
                + ", ".join(f"{a} {v}" for a, v in zip(GRID_AXES, cell, strict=True))
            )
    for row in runs.itertuples(index=False):
        if row.status == "FINISHED":
            continue
        done = 0 if pd.isna(row.last_step) else int(row.last_step) + 1
        state = {
            "RUNNING": "running (or its driver stopped)",
            "FAILED": "failed",
            STOPPED: "stopped early by tune.scheduler (its curve ends at the stop)",
        }.get(row.status, row.status.lower())
        notes.append(f"{row.cell}: {state}, {done} of {row.iterations} iterations logged")
    return notes
