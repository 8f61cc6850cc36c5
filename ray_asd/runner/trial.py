"""One grid cell as a Ray Tune function trial: the loop of `ray_asd.loop` with Ray parts.

The student trains in the trial's process; its answering and scoring go to scoring actors
that live as long as the trial (`scoring.py`); the teacher is the experiment's shared pool
(`teacher_pool.py`). After every checkpoint the trial logs the new metrics rows to MLflow and
reports the checkpoint to Tune, which restores the trial from it when the trial fails and is
retried.

Every strategy of a (task, student, seed) cell starts from the same base evaluation and
warm-up (DESIGN section 2); the first trial of the cell computes it under a file lock and
publishes it to storage, the others start from the published checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from filelock import FileLock
from ray import tune

from ray_asd.assemble import assemble, seeds_and_test
from ray_asd.experiment import Cell, ResourcesConfig
from ray_asd.loop import Evaluation, begin, evaluate_base, run_trial
from ray_asd.parts import TrialParts
from ray_asd.plan import TrialPlan, plan
from ray_asd.runner.scoring import (
    ActorSlot,
    Engines,
    PoolAnswers,
    PoolReward,
    ScoringActors,
    StudentScorer,
)
from ray_asd.runner.student_pool import StudentPools
from ray_asd.runner.teacher_pool import PooledBackend
from ray_asd.state import latest_checkpoint, load_checkpoint
from ray_asd.tracking import TrialRun
from ray_asd.trial import write_config

RUN_FILE = "mlflow_run.json"  # written into every checkpoint


@dataclass(frozen=True)
class Setup:
    """What every trial of an experiment shares (sent once through the object store)."""

    name: str
    cells: dict[str, Cell]
    folder: Path  # the experiment's folder in storage: trials/, warmups/
    tracking_uri: str
    mlflow_experiment_id: str
    teacher: PooledBackend | None  # None: the oracle, built in each trial
    judge: PooledBackend | None  # the judge pool (judge.llm); None: the teacher judges
    resources: ResourcesConfig
    cache_dir: Path | None
    log_adapter: bool
    students: StudentPools | None = None  # the shared student engines (scoring.shared)


def run_cell(params: dict[str, Any], setup: Setup) -> None:
    """The Tune trainable: runs (or continues) the trial of cell ``params["cell"]``."""
    import torch

    from ray_asd.student.model import Student

    began = time.perf_counter()
    cell = setup.cells[params["cell"]]
    config, out, resources = cell.config, setup.folder / "trials" / cell.name, setup.resources
    torch.set_num_threads(resources.torch_threads or max(1, int(resources.trial.cpus)))
    trial = plan(config)
    student = Student.from_config(config.student, setup.cache_dir)
    # The runner's own time, outside the loop's phases: logged once the trial ends
    # (bench/overhead.py); MLflow logging and Tune reports are summed over checkpoints.
    overhead = {"student_load": time.perf_counter() - began, "mlflow": 0.0, "tune_report": 0.0}
    slot, threads = ActorSlot(), resources.torch_threads
    engines: Engines
    if setup.students is not None:  # the experiment's engines for this base student
        engines = setup.students.engines(config)
    else:
        engines = ScoringActors(
            StudentScorer, config, resources.scoring, slot, setup.cache_dir, threads
        )
    answers = PoolAnswers(config, student, out / "adapters", engines)
    reward = PoolReward(config.reward, resources.scoring, slot, setup.cache_dir, threads)
    parts = assemble(
        trial,
        student,
        cache_dir=setup.cache_dir,
        served=answers,
        completions=setup.teacher,
        judge=setup.judge,
        reward=reward,
    )
    pool, test = seeds_and_test(trial, parts.task)

    try:  # the actors hold CPUs/GPUs that the next trial needs: released however it ends
        start, from_tune = _restart_point(out)
        run = _trial_run(setup, cell, trial, out, start)
        if start is None:
            start = _shared_start(setup, cell, parts, pool, test, out)
        latest = [start]

        def checkpointed(folder: Path, rows: list[dict[str, Any]]) -> None:
            latest[0] = folder
            _write_json(folder / RUN_FILE, {"run_id": run.run_id})
            clock = time.perf_counter()
            # The work is saved: a tracking store that stays down is a warning line, and its
            # rows go with the next checkpoint's (the files for a report on a running trial
            # are the newest each time).
            run.sync(rows, [folder / "items.jsonl", folder / "evaluations.jsonl"])
            logged = time.perf_counter()
            overhead["mlflow"] += logged - clock
            metrics = {k: v for k, v in rows[-1].items() if isinstance(v, int | float | str)}
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(str(folder)))
            overhead["tune_report"] += time.perf_counter() - logged

        parts.checkpointed = checkpointed
        metrics_so_far = load_checkpoint(start).metrics
        if from_tune:
            run.sync(metrics_so_far)  # what a killed attempt computed but had not logged yet
        else:  # the start (shared, or newer than Tune knew) becomes the trial's first report
            checkpointed(start, metrics_so_far)
        metrics = run_trial(parts, pool, test, out, start=start)
    finally:
        answers.close()
        reward.close()
    overhead["actor_start"] = engines.start_seconds + reward.actors.start_seconds
    clock = time.perf_counter()
    _finish(run, setup, cell, out, latest[0], metrics)  # final artifacts: MLflow's time too
    overhead["mlflow"] += time.perf_counter() - clock
    overhead["total"] = time.perf_counter() - began
    run.log_summary({f"trial_seconds_{name}": seconds for name, seconds in overhead.items()})


def _restart_point(out: Path) -> tuple[Path | None, bool]:
    """Where an earlier attempt of this trial got to: Tune's checkpoint, or the trial folder's
    own latest checkpoint when that is newer (an attempt killed between writing a checkpoint
    and reporting it, or a driver stopped before Tune saved its state). None: a new trial.
    The flag says the checkpoint is the one Tune restored."""
    restored = tune.get_checkpoint()
    own = latest_checkpoint(out)
    if restored is not None:
        folder = out / "checkpoints" / "restored"
        _put_folder(folder, lambda staging: restored.to_directory(str(staging)))
        if (
            own is None
            or load_checkpoint(own).next_iteration <= load_checkpoint(folder).next_iteration
        ):
            return folder, True
    return own, False


def _trial_run(
    setup: Setup, cell: Cell, trial: TrialPlan, out: Path, start: Path | None
) -> TrialRun:
    """The trial's MLflow run: the one an earlier attempt opened (its id is kept in the trial
    folder and in every checkpoint), or a new one."""
    record = out / RUN_FILE
    strategy = trial.strategy
    known = [p for p in (record, start / RUN_FILE if start else None) if p and p.is_file()]
    if known:
        state = {"restores": 0, **json.loads(known[0].read_text(encoding="utf-8"))}
        state["restores"] += 1
        _write_json(record, state)
        run = TrialRun(setup.tracking_uri, state["run_id"])
        run.tag("ray_asd.restores", str(state["restores"]))
        print(f"[trial] {cell.name}: attempt {state['restores'] + 1}, MLflow run {run.run_id}")
        return run
    run = TrialRun.start(
        setup.tracking_uri,
        setup.mlflow_experiment_id,
        cell.name,
        {
            **cell.tags,
            "ray_asd.experiment": setup.name,
            "ray_asd.cell": cell.name,
            "ray_asd.warmup_key": cell.warmup_key,  # runs that share one computed warm-up
            # What the report's A/A row needs: which strategies read nothing (scorer none,
            # selector uniform).
            "ray_asd.scorer": strategy.scorer_name,
            "ray_asd.selector": strategy.selector_name,
        },
        cell.config.model_dump(),
    )
    _write_json(record, {"run_id": run.run_id, "restores": 0})
    return run


def _put_folder(folder: Path, fill: Callable[[Path], None]) -> None:
    """Replaces ``folder`` with what ``fill`` writes into a staging folder next to it: a kill
    leaves the old folder or the new one, never half of one (which a fallback to the newest
    readable checkpoint could pick)."""
    staging = folder.with_name(f".{folder.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    fill(staging)
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)


def _write_json(path: Path, data: Any) -> None:
    """Whole or not at all: a process killed mid-write leaves the previous file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(path.name + ".tmp")
    staging.write_text(json.dumps(data), encoding="utf-8")
    os.replace(staging, path)


def _shared_start(
    setup: Setup, cell: Cell, parts: TrialParts, pool: pd.DataFrame, test: pd.DataFrame, out: Path
) -> Path:
    """This trial's copy of its cell's base evaluation + warm-up checkpoint: computed by the
    first trial of the cell to get here and published to storage, copied by the others."""
    shared = setup.folder / "warmups" / cell.warmup_key
    shared.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(shared) + ".lock"):
        if (shared / "state.json").is_file():
            own = out / "checkpoints" / "start"
            _put_folder(own, lambda staging: shutil.copytree(shared, staging))
            print(f"[trial] {cell.name}: starts from the shared warm-up in {shared}")
            return own
        own = begin(parts, pool, test, out, _shared_base(setup, cell, parts, test))
        _put_folder(shared, lambda staging: shutil.copytree(own, staging))
        print(f"[trial] {cell.name}: published the shared warm-up to {shared}")
        return own


def _shared_base(setup: Setup, cell: Cell, parts: TrialParts, test: pd.DataFrame) -> Evaluation:
    """The base model's evaluation, computed once per (task, student, test set) by the first
    trial to need it: greedy and deterministic, so every seed's warm-up reuses it."""
    settings = cell.config.model_dump_json(include={"task", "student", "eval"})
    key = hashlib.sha256(settings.encode()).hexdigest()[:16]
    shared = setup.folder / "base" / f"{key}.json"
    shared.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(shared) + ".lock"):
        if shared.is_file():
            row, correct = json.loads(shared.read_text(encoding="utf-8"))
            print(f"[trial] {cell.name}: reuses the base model's evaluation in {shared}")
            return row, correct
        row, correct = evaluate_base(parts, test)
        _write_json(shared, [row, correct])
        return row, correct


def mark_failed(out: Path, tracking_uri: str) -> None:
    """Ends the MLflow run of a trial that failed for good (Tune gave up retrying it)."""
    record = out / RUN_FILE
    if record.is_file():
        TrialRun(tracking_uri, json.loads(record.read_text())["run_id"]).finish("FAILED")


def _finish(
    run: TrialRun, setup: Setup, cell: Cell, out: Path, latest: Path, metrics: pd.DataFrame
) -> None:
    """Final artifacts: config (redacted), metrics table, every synthetic item, optionally the
    adapter. Rows a tracking outage held back go first; a store still down here fails the
    attempt, and Tune's retry redoes only this (the last checkpoint holds every iteration)."""
    run.log_rows([])
    final = out / "final"
    final.mkdir(parents=True, exist_ok=True)
    write_config(final / "config.json", cell.config)
    metrics.to_csv(final / "metrics.csv", index=False)
    shutil.copyfile(latest / "items.jsonl", final / "items.jsonl")
    shutil.copyfile(latest / "evaluations.jsonl", final / "evaluations.jsonl")
    for name in ("config.json", "metrics.csv", "items.jsonl", "evaluations.jsonl"):
        run.log_artifact(final / name)
    if setup.log_adapter and (latest / "student").is_dir():
        run.log_artifact(latest / "student", "adapter")
    run.finish()
