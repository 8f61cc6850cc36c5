"""`ray-asd run`: an experiment grid as a Ray Tune run, one trial per cell.

The driver checks everything it can before Ray starts (config, cells, the cluster address),
connects to Ray, creates the MLflow experiment and the teacher pool once, then hands the
cells to a ``Tuner``. Each trial (``trial.py``) runs the paper's loop, reports every
iteration with a checkpoint and logs to its own MLflow run; a failed trial is retried from
its last checkpoint; ``--resume`` restores the whole Tune run after the driver stopped.

Storage layout, under ``storage/name/``::

    experiment.json   the config the experiment runs with, secrets masked (resume compares it)
    driver.lock       held (flock) by the running driver, naming its pid and host
    tune/             Tune's experiment state and the reported checkpoints
    trials/<cell>/    each trial's working folder: checkpoints, adapters, final artifacts
    base/<key>.json   the base model's evaluation, shared by every seed of a (task, student)
    warmups/<key>/    the base evaluation + warm-up shared by the strategies of a cell

and under ``storage/teacher_cache/`` the teacher cache, shared by the experiments of a storage
(requests are keyed by model, sampling, prompt and seed).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import ray
from ray import tune

from ray_asd.errors import ConfigError
from ray_asd.experiment import Cell, ExperimentConfig, cells
from ray_asd.failure import check_writable, root_cause
from ray_asd.kinds import teacher_kind
from ray_asd.plan import plan
from ray_asd.redact import redact_text
from ray_asd.runner.checks import (
    RECORD,
    Pool,
    check_address,
    check_resources,
    check_state,
    driver_lock,
    pool_cpus,
    settings_record,
)
from ray_asd.runner.placement import fitting_trials, own_actors, placement_factory, trial_bundles
from ray_asd.runner.stopping import mark_stopped, scheduler, stopped_early
from ray_asd.runner.student_pool import pool_totals, start_student_pools
from ray_asd.runner.teacher_pool import TeacherPool, start_pool
from ray_asd.runner.teardown import EndTrials
from ray_asd.runner.trial import Setup, mark_failed, run_cell
from ray_asd.tracking import default_uri, prepare_experiment, record_grid, ui_command

NAMESPACE = "ray-asd"
# Environment the trials and actors need as the driver has it (on a remote cluster too).
PASSED_ENV = ("RAY_ASD_CACHE", "HF_HOME", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
# The columns of the table printed at the end, from each trial's last report ...
RESULT_COLUMNS = {
    "accuracy": "final accuracy",
    "n_synthetic": "n_synthetic",
    "teacher_tokens": "teacher tokens",
}
# ... and the strategy's cost: means over its iterations.
COST_COLUMNS = {
    "selection_seconds": "select s/iter",
    "generation_tokens_phase": "gen tok/iter",
    "rating_tokens_phase": "rating tok/iter",
}


@dataclass(frozen=True)
class Outcome:
    """What `ray-asd run` reports at the end."""

    table: pd.DataFrame  # one row per trial
    errors: dict[str, str]  # trial -> error, for trials that failed for good
    folder: Path
    tracking_uri: str
    mlflow_experiment: str
    teacher: dict[str, int]  # the pool's request counters
    judge: dict[str, int]  # the judge pool's
    seconds: float  # the driver's wall time, Ray start included
    mlflow_experiment_id: str = ""
    # trial -> its last iteration t, for trials that tune.scheduler stopped early
    stopped: dict[str, int | None] = field(default_factory=dict)


def run_experiment(
    config: ExperimentConfig,
    *,
    where: str = "experiment",
    resume: bool = False,
    address: str | None = None,
) -> Outcome:
    """Runs (or with ``resume`` continues) every cell of ``config`` on Ray.

    Nothing is written before every check has passed: storage writable, the experiment new
    (or, with ``resume``, there and unchanged), the cluster reachable and able to hold each
    trial, actor and engine, no other driver on the experiment folder.

    Raises:
        ConfigError: unwritable storage, an existing experiment without ``resume`` (or a
            missing one with it, or a changed one), an unreachable ``address``, a resource
            request no node can hold, or another driver running the experiment.
    """
    clock = time.perf_counter()
    grid = {cell.name: cell for cell in cells(config, where)}
    if problems := config.scheduler_problems(where):
        raise ConfigError("\n".join(problems))
    folder = config.storage_folder(where)
    check_writable(folder, f"{where}: storage")
    check_state(config, folder, where, resume)
    check_address(address)

    # Tune warns when checkpoints come faster than every 5 s, which small trials do by design.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    connect(address)
    pools = _pools(config, grid)
    check_resources(config, pools, where, address)
    with driver_lock(folder, where):
        # Again under the lock: another driver may have started or finished meanwhile.
        check_state(config, folder, where, resume)
        record = folder / RECORD
        if not resume or not record.is_file():
            record.write_text(json.dumps(settings_record(config), indent=2), encoding="utf-8")
        return _fit(config, grid, folder, resume, pools, clock)


def _pools(config: ExperimentConfig, grid: dict[str, Cell]) -> list[Pool]:
    """The engine pools the experiment starts: the teacher's when its kind is served by
    engines (not the oracle, a function each trial runs), the judge's when a cell's strategy
    asks an LLM judge."""
    pools = []
    if teacher_kind(config.teacher.backend).engine:
        pools.append(Pool("teacher", config.teacher, config.resources.teacher))
    judge = config.judge.llm
    if judge is not None and any(plan(cell.config).needs_judge for cell in grid.values()):
        pools.append(Pool("judge", judge, config.resources.judge))
    return pools


def _fit(
    config: ExperimentConfig,
    grid: dict[str, Cell],
    folder: Path,
    resume: bool,
    pools: list[Pool],
    clock: float,
) -> Outcome:
    """Tracking, the engine pools, the Tune run; the outcome of every trial."""
    uri = config.tracking.uri or os.environ.get("MLFLOW_TRACKING_URI") or default_uri(folder.parent)
    mlflow_experiment = config.tracking.experiment or config.name
    experiment_id = prepare_experiment(uri, mlflow_experiment, folder.parent)
    record_grid(uri, experiment_id, [cell.tags for cell in grid.values()])
    cache = os.environ.get("RAY_ASD_CACHE")
    if not teacher_kind(config.teacher.backend).engine:
        print(f"[run] {config.name}: {len(grid)} trials, {config.teacher.backend} teacher")
    started: dict[str, TeacherPool] = {}
    for pool in pools:
        print(
            f"[run] {config.name}: {len(grid)} trials; starting a pool of "
            f"{pool.resources.replicas} {pool.llm.backend} {pool.role} engine(s)"
        )
        started[pool.role] = _start_pool(config, pool, folder, cache)
    teacher, judge = started.get("teacher"), started.get("judge")
    students = None  # held until the Tune run ends: Ray stops engines no handle names
    if config.resources.scoring.shared:
        students = start_student_pools(
            list(grid.values()),
            config.resources.scoring,
            prefix=f"{config.name}-{_digest(config.model_dump_json(include={'resources'}))}",
            namespace=NAMESPACE,
            cache_dir=Path(cache) if cache else None,
            threads=config.resources.torch_threads,
        )
    setup = Setup(
        name=config.name,
        cells=grid,
        folder=folder,
        tracking_uri=uri,
        mlflow_experiment_id=experiment_id,
        teacher=teacher.backend if teacher else None,
        judge=judge.backend if judge else None,
        resources=config.resources,
        cache_dir=Path(cache) if cache else None,
        log_adapter=config.tracking.log_adapter,
        students=students.pools if students else None,
    )
    results = _tuner(config, grid, folder, resume, pools, setup).fit()
    rows, errors, stopped = [], {}, {}
    for result in results:
        cell = result.config["cell"]
        metrics, out = result.metrics or {}, folder / "trials" / cell
        if result.error is not None:
            errors[cell] = root_cause(result.error).one_line
            _label_run(cell, "failed", mark_failed, out, uri)
        elif stopped_early(out):
            stopped[cell] = int(metrics["iteration"]) if "iteration" in metrics else None
            _label_run(cell, "stopped early", mark_stopped, out, uri, stopped[cell])
        rows.append(
            {
                "trial": cell,
                **{label: metrics.get(k) for k, label in RESULT_COLUMNS.items()},
                **iteration_costs(result.metrics_dataframe),
            }
        )
    return Outcome(
        table=pd.DataFrame(rows).sort_values("trial", ignore_index=True),
        errors=errors,
        folder=folder,
        tracking_uri=uri,
        mlflow_experiment=mlflow_experiment,
        teacher=teacher.stats() if teacher else {},
        judge=judge.stats() if judge else {},
        seconds=time.perf_counter() - clock,
        mlflow_experiment_id=experiment_id,
        stopped=stopped,
    )


def _label_run(cell: str, what: str, label: Callable[..., None], *args: Any) -> None:
    """``label(*args)``: the end of a trial's MLflow run; a failure to is one line, since the
    summary matters more than the run's status."""
    try:
        label(*args)
    except Exception as error:
        print(f"[run] could not mark the MLflow run of {cell} {what}: {root_cause(error).one_line}")


def _tuner(
    config: ExperimentConfig,
    grid: dict[str, Cell],
    folder: Path,
    resume: bool,
    pools: list[Pool],
    setup: Setup,
) -> tune.Tuner:
    """A new Tuner over the grid's cells, or with ``resume`` the one Tune saved."""
    resources = config.resources
    tune_path = folder / "tune"
    trainable = tune.with_resources(  # each cell's placement group (`placement.py`)
        tune.with_parameters(run_cell, setup=setup),
        lambda spec: placement_factory(
            trial_bundles(resources, own_actors(resources, grid[spec["cell"]]))
        ),
    )
    if resume:
        print(f"[run] resuming {tune_path}")
        return tune.Tuner.restore(str(tune_path), trainable, resume_errored=True)
    shared = pool_totals(list(grid.values()), resources.scoring) if resources.scoring.shared else {}
    concurrent = resources.max_concurrent_trials or fitting_trials(
        resources,
        {
            "CPU": sum(p.resources.replicas * pool_cpus(p.llm, p.resources) for p in pools)
            + shared.get("CPU", 0.0),
            "GPU": sum(p.resources.replicas * p.resources.gpus for p in pools)
            + shared.get("GPU", 0.0),
        },
        ray.cluster_resources(),
    )
    if concurrent < 1:  # e.g. an autoscaling cluster that starts with no workers
        print(
            "[run] no room for a trial on the cluster yet: 1 at a time (on an "
            "autoscaling cluster, set resources.max_concurrent_trials)"
        )
        concurrent = 1
    print(f"[run] up to {concurrent} trials at once; storage {folder}")
    return tune.Tuner(
        trainable,
        param_space={"cell": tune.grid_search(list(grid))},
        tune_config=tune.TuneConfig(
            max_concurrent_trials=concurrent,
            scheduler=scheduler(config),
            trial_name_creator=_cell_of,
            trial_dirname_creator=_cell_of,
        ),
        run_config=tune.RunConfig(
            name=tune_path.name,
            storage_path=str(folder),
            failure_config=tune.FailureConfig(max_failures=resources.max_failures),
            # Every checkpoint is kept (adapter + items: small): a driver killed between Tune's
            # state snapshots restores from the checkpoint its last snapshot names.
            checkpoint_config=tune.CheckpointConfig(num_to_keep=None),
            callbacks=[EndTrials()],  # each trial's process ends before Tune frees its group
            verbose=1,
        ),
    )


def _start_pool(
    config: ExperimentConfig, pool: Pool, folder: Path, cache: str | None
) -> TeacherPool:
    """The experiment's pool of ``pool.role`` engines (teacher, judge) running ``pool.llm``."""
    return start_pool(
        pool.llm,
        prefix=f"{config.name}-{_digest(pool.llm.model_dump_json())}",
        namespace=NAMESPACE,
        replicas=pool.resources.replicas,
        cpus=pool_cpus(pool.llm, pool.resources),
        gpus=pool.resources.gpus,
        teacher_cache=folder.parent / "teacher_cache",
        cache_dir=Path(cache) if cache else None,
        role=pool.role,
    )


def iteration_costs(reports: pd.DataFrame | None) -> dict[str, float | None]:
    """Means of COST_COLUMNS over a trial's iterations (its reports of phase "iteration";
    an iteration reported twice, by a retried attempt, counts once)."""
    costs: dict[str, float | None] = dict.fromkeys(COST_COLUMNS.values())
    if reports is None or "phase" not in reports:
        return costs
    iterations = reports[reports["phase"] == "iteration"].drop_duplicates("iteration", keep="last")
    for key, label in COST_COLUMNS.items():
        if key in iterations and len(iterations):
            costs[label] = float(iterations[key].mean())
    return costs


def format_outcome(outcome: Outcome) -> str:
    """The summary `ray-asd run` prints: trials x results, then where to look (the tracking
    URI without its credentials), then one line per failed trial."""
    uri = redact_text(outcome.tracking_uri)
    lines = [
        outcome.table.to_string(index=False, float_format=lambda x: f"{x:.3f}", na_rep="-"),
        "",
        _format_pool(outcome.teacher, "teacher"),
        *([_format_pool(outcome.judge, "judge")] if outcome.judge else []),
        f"wall time: {outcome.seconds:.0f} s; trial folders: {outcome.folder / 'trials'}",
        f"MLflow: experiment {outcome.mlflow_experiment!r} at {uri}",
        f"  view: {ui_command(uri, outcome.mlflow_experiment_id or None)}",
    ]
    lines += [
        f"STOPPED EARLY {c}: by tune.scheduler after t = {t}" for c, t in outcome.stopped.items()
    ]
    lines += [f"FAILED {cell}: {error}" for cell, error in outcome.errors.items()]
    return "\n".join(lines)


def _format_pool(stats: dict[str, int], role: str) -> str:
    if not stats:
        return f"{role}: oracle (no pool)"
    return (
        f"{role} pool: {stats.get('cache_hits', 0) + stats.get('cache_misses', 0)} requests, "
        f"{stats.get('cache_hits', 0)} from the teacher cache, "
        f"{stats.get('retries', 0)} retries, {stats.get('failed', 0)} failed"
        + _format_damage(stats)
    )


def _format_damage(stats: dict[str, int]) -> str:
    """The cache records and files the engines skipped as damaged (summed over engines, so a
    file every engine reads counts once per engine)."""
    skipped, unreadable = stats.get("cache_skipped", 0), stats.get("cache_unreadable", 0)
    if not skipped and not unreadable:
        return ""
    return f"; cache damage skipped: {skipped} records, {unreadable} files (see the log)"


# A pass's Ray Data task needs a worker; where actors hold every CPU Ray kills idle ones after
# 1 s, and each pass waited 9 s for a new one (0.45 s of model compute): here they live 60 s.
IDLE_WORKERS_LIVE = ("RAY_idle_worker_killing_time_threshold_ms", "60000")


def connect(address: str | None = None) -> None:
    """Starts a local Ray instance, or joins the cluster at ``address``; a no-op when this
    process is connected already (a caller that times or configures Ray itself)."""
    if ray.is_initialized():
        return
    os.environ.setdefault(*IDLE_WORKERS_LIVE)  # read by the raylets a local start starts
    try:
        ray.init(address=address, namespace=NAMESPACE, runtime_env=_runtime_env())
    except ConnectionError as error:
        raise ConfigError(f"--address {address}: no Ray cluster there ({error})") from None


def _runtime_env() -> dict[str, Any]:
    """Environment for every Ray process of the run, as the driver has it; under `ray job
    submit` the job's own runtime env wins (Ray refuses a key set twice)."""
    env = {key: os.environ[key] for key in PASSED_ENV if key in os.environ}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    job = json.loads(os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR", "{}"))
    taken = (job.get("runtime_env") or {}).get("env_vars") or {}
    return {"env_vars": {key: value for key, value in env.items() if key not in taken}}


def _cell_of(trial: tune.experiment.Trial) -> str:
    return str(trial.config["cell"])


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]
