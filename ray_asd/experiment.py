"""An experiment: shared trial settings plus a grid over strategy x student x task x seed.

The YAML maps one-to-one onto :class:`ExperimentConfig`: its top level is a trial config (the
settings every trial shares) plus ``name``, ``storage``, ``grid``, ``resources`` and
``tracking``. A grid axis left out keeps the shared value. Student and task entries are either
a string (the model spec, the task name) or a block of that section's keys, merged over the
shared section::

    student: {max_new_tokens: 64}
    grid:
      strategy: [random, static, loss, {scorer: loss, selector: balanced}]
      student: [tiny:, {model: embedded:smollm2-135m, batch_size: 8}]
      seed: [0, 1, 2]

Every cell is validated before any Ray work starts (:func:`load_experiment`). No Ray here.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import Field, field_validator

from ray_asd import metrics
from ray_asd.columns import CORRECT
from ray_asd.config import Free, Section, StrategyConfig, TrialConfig
from ray_asd.config_file import Problems, factory_problem, read_config, validate
from ray_asd.errors import ConfigError
from ray_asd.models import check_model_spec
from ray_asd.plan import plan
from ray_asd.records import Spend
from ray_asd.registry import suggest
from ray_asd.tasks import make_task


class GridConfig(Section):
    strategy: list[str | StrategyConfig] | None = Field(None, min_length=1)
    student: list[str | dict[str, Free]] | None = Field(None, min_length=1)
    task: list[str | dict[str, Free]] | None = Field(None, min_length=1)
    seed: list[int] | None = Field(None, min_length=1)


class TrialResources(Section):
    """What one trial process holds: LoRA training, selection, the loop itself."""

    cpus: float = Field(1.0, ge=0)
    gpus: float = Field(0.0, ge=0)


class ScoringResources(Section):
    """The engines that answer and score seeds and test items: a trial's own actors (they live
    as long as the trial, each with the student loaded, in the trial's placement group), or
    with ``shared`` one pool per distinct base student serving every trial's adapters."""

    actors: int = Field(1, ge=1, description="actors per trial, each with the student loaded")
    cpus: float = Field(1.0, ge=0, description="per actor")
    gpus: float = Field(
        0.0, ge=0, description="per actor; 0.5 with trial.gpus 0.5: trainer and engine on one GPU"
    )
    batch_size: int = Field(64, ge=1, description="most rows per batch sent to an actor")
    shared: bool = Field(
        False,
        description="one pool of `actors` engines per distinct base student, created once per "
        "experiment and serving every trial's adapters, instead of actors per trial",
    )


class TeacherResources(Section):
    """The teacher pool: engines created once per experiment and shared by every trial."""

    replicas: int = Field(1, ge=1)
    cpus: float | None = Field(None, ge=0, description="per engine; default 0 oracle, else 1")
    gpus: float = Field(0.0, ge=0, description="per engine")


class ResourcesConfig(Section):
    trial: TrialResources = Field(default_factory=TrialResources)
    scoring: ScoringResources = Field(default_factory=ScoringResources)
    teacher: TeacherResources = Field(default_factory=TeacherResources)
    judge: TeacherResources = Field(
        default_factory=TeacherResources, description="the judge pool, when judge.llm is set"
    )
    torch_threads: int | None = Field(
        None,
        ge=1,
        description="torch threads of trial and scoring processes (default: their CPUs); "
        "a trial trains and its actors score in turn, so both may use all the cores",
    )
    max_concurrent_trials: int | None = Field(
        None, ge=1, description="default: as many as the cluster's CPUs and GPUs fit"
    )
    max_failures: int = Field(2, ge=0, description="retries of a failed trial, from its checkpoint")


class TrackingConfig(Section):
    uri: str | None = Field(
        None,
        description="MLflow tracking URI; default $MLFLOW_TRACKING_URI, else sqlite in storage",
    )
    experiment: str | None = Field(None, description="MLflow experiment; default: name")
    log_adapter: bool = Field(False, description="log each trial's final LoRA adapter")


# ASHA's time attribute: each report's t. Equal in every trial at a rung, so never its metric.
RUNG = "iteration"


def rung_metrics() -> list[str]:
    """The numbers in every report that can reach a rung, whatever the strategy and task: the
    smallest such row of :func:`ray_asd.metrics.row` (rating spent the budget: accuracy and
    teacher compute), less :data:`RUNG`. ASHA passes over a report without its metric, so one
    that only some trials report (``score_mean``, ``accuracy_difficulty_3``) is refused."""
    accuracy = metrics.accuracy(pd.DataFrame({CORRECT: [True]}))
    row = metrics.row(
        "stopped", 0, 0, accuracy, metrics.Stages(), generation=metrics.Generation([], [], Spend())
    )
    return [key for key, value in row.items() if isinstance(value, int | float) and key != RUNG]


class SchedulerConfig(Section):
    """Early stopping of losing trials: Ray Tune's ASHA (asynchronous successive halving) on a
    metric every trial reports at each iteration. For grids that search one strategy's
    settings (selector temperatures, streams), the student or the task; never for a strategy
    comparison, which the report compares at every budget (refused:
    :meth:`ExperimentConfig.scheduler_problems`). A stopped trial keeps its curve up to the
    stop and is labelled stopped in MLflow and in the report."""

    name: Literal["asha"] = "asha"
    metric: str = Field(
        "accuracy", description="a metric every trial reports at each iteration (rung_metrics)"
    )
    mode: Literal["max", "min"] = "max"
    grace_period: int = Field(
        1,
        ge=1,
        description="the first iteration t (from 0) at which trials are compared, so every "
        "trial runs at least grace_period + 1 iterations",
    )
    reduction_factor: float = Field(
        2.0, gt=1, description="at each rung, trials below the best 1/reduction_factor stop"
    )

    @field_validator("metric")
    @classmethod
    def _reported(cls, metric: str) -> str:
        known = rung_metrics()
        if metric not in known:  # Tune's ASHA would pass over every report: nothing stops
            raise ValueError(
                f"{metric!r} is not a metric every trial reports at each iteration"
                + suggest(metric, known)
            )
        return metric


class TuneConfig(Section):
    scheduler: SchedulerConfig | None = Field(
        None, description="off by default: every trial runs to its end"
    )


class ExperimentConfig(TrialConfig):
    """A grid of trials sharing everything but the grid axes."""

    name: str = Field("experiment", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    storage: str = Field(
        "runs", description="a folder every node sees: local, or a shared mount on a cluster"
    )
    grid: GridConfig = Field(default_factory=GridConfig)
    resources: ResourcesConfig = Field(default_factory=ResourcesConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    tune: TuneConfig = Field(default_factory=TuneConfig)

    def scheduler_problems(self, where: str) -> list[str]:
        """Why ``tune.scheduler`` cannot run on this grid, one line each: the grid compares
        strategies (a strategy stopped early would be missing from the later budgets that the
        report's curves, efficiency and win rates compare), or no iteration before the last
        is left to compare trials at (a trial stopped at its last iteration would only lose
        its final artifacts)."""
        scheduler = self.tune.scheduler
        if scheduler is None:
            return []
        problems = []
        names = list(dict.fromkeys(_strategy_entry(e)["name"] for e in self.grid.strategy or []))
        if len(names) > 1:
            problems.append(
                f"{where}: tune.scheduler: the grid compares strategies ({', '.join(names)}); "
                "early stopping would drop the losers from the later budgets the report "
                "compares: use it on grids that search one strategy's settings, the student "
                "or the task"
            )
        last = self.budget.iterations - 2  # the last iteration t before the final one
        if scheduler.grace_period > last:
            problems.append(
                f"{where}: tune.scheduler.grace_period: {scheduler.grace_period} leaves no "
                f"iteration before the last to compare trials at (budget.iterations "
                f"{self.budget.iterations}): "
                + (f"at most {last}" if last >= 1 else "needs budget.iterations of 3 or more")
            )
        return problems

    def shared(self) -> dict[str, Any]:
        """The shared trial settings as a plain mapping."""
        return self.model_dump(include=set(TrialConfig.model_fields))

    def storage_folder(self, where: str) -> Path:
        """The experiment's folder in storage: ``storage/name``.

        Raises:
            ConfigError: a URL, not a filesystem path every node sees.
        """
        if "://" in self.storage:
            raise ConfigError(
                f"{where}: storage: {self.storage!r}: use a filesystem path that every node "
                "sees (a local folder, or a shared mount such as NFS/EFS on a cluster)"
            )
        return Path(self.storage).expanduser().resolve() / self.name


@dataclass(frozen=True)
class Cell:
    """One trial of the grid."""

    name: str  # strategy-student-task-seedN, unique in the experiment
    config: TrialConfig
    tags: dict[str, str]  # strategy, student, task, seed
    # The config key of each axis, for errors: "strategy", "grid.task[1]", "student.model".
    keys: Mapping[str, str] = field(default_factory=dict)

    @property
    def warmup_key(self) -> str:
        """Equal for every strategy of a (task, student, seed): they share one warm-up."""
        settings = self.config.model_dump_json(exclude={"strategy"})
        return hashlib.sha256(settings.encode()).hexdigest()[:16]


def load_experiment(path: Path | None, overrides: list[str] | None = None) -> ExperimentConfig:
    """Reads and validates an experiment YAML with ``--set`` overrides, grid cells included.

    Raises:
        ConfigError: one line per problem, each naming the file and the dotted key.
    """
    where = str(path) if path else "experiment"
    config, factory = read_config(ExperimentConfig, path, overrides, "experiment")
    problems = Problems()
    for problem in factory:
        problems.add(problem)
    if config.grid.strategy is not None and "strategy" in config.model_fields_set:
        problems.add(f"{where}: strategy: grid.strategy replaces it in every cell; set it there")
    try:
        cells(config, where)  # validates every cell: unknown strategies, tasks, students
    except ConfigError as error:
        problems.add(error)
    for problem in config.scheduler_problems(where):
        problems.add(problem)
    problems.raise_any()
    return config


def cells(config: ExperimentConfig, where: str = "experiment") -> list[Cell]:
    """Every (strategy, student, task, seed) cell of the grid, validated.

    Raises:
        ConfigError: every cell problem at once, one line each, naming the grid entry or the
            key at fault.
    """
    shared, grid = config.shared(), config.grid
    strategies = _axis(grid.strategy, "strategy", shared, _strategy_entry)
    students = _axis(grid.student, "student", shared, lambda e: _block(e, "model"), "student.model")
    tasks = _axis(grid.task, "task", shared, lambda e: _block(e, "name"))
    strategy_labels = _labels([_strategy_label(s) for _, s in strategies])
    student_labels = _labels([_model_label(s["model"]) for _, s in students])
    task_labels = _labels([t["name"] for _, t in tasks])
    problems, result = Problems(), []
    seeds = grid.seed or [config.seed]
    if len(set(seeds)) < len(seeds):
        problems.add(f"{where}: grid.seed: a seed appears twice in {seeds}")
    for (s_i, (s_key, strategy)), (m_i, (m_key, student)), (t_i, (t_key, task)), seed in product(
        enumerate(strategies), enumerate(students), enumerate(tasks), seeds
    ):
        data = {**shared, "strategy": strategy, "student": student, "task": task, "seed": seed}
        try:
            trial = validate(TrialConfig, data, where)
        except ConfigError as error:
            problems.add(error)
            continue
        keys = {"strategy": s_key, "student": m_key, "task": t_key}
        for problem in check_cell(trial, keys, where):
            problems.add(problem)
        tags = {
            "strategy": strategy_labels[s_i],
            "student": student_labels[m_i],
            "task": task_labels[t_i],
            "seed": str(seed),
        }
        name = "-".join([*(tags[k] for k in ("strategy", "student", "task")), f"seed{seed}"])
        result.append(Cell(re.sub(r"[^A-Za-z0-9._+-]", "_", name), trial, tags, keys))
    problems.raise_any()
    return result


def check_cell(trial: TrialConfig, keys: Mapping[str, str], where: str) -> list[str]:
    """The problems of one trial's strategy, student and task (nothing loaded), one line each.

    Args:
        trial: the cell's validated config.
        keys: the config key of each of ``strategy``, ``student`` and ``task``, for the lines
            (``strategy``, ``grid.task[1]``, ``student.model``).
        where: the config file, for the lines.
    """
    checks: dict[str, Callable[[TrialConfig], None]] = {
        "strategy": _check_strategy,
        "student": _check_student,
        "task": _check_task,
    }
    problems = []
    for axis, check in checks.items():
        try:
            check(trial)
        except ConfigError as error:
            problems.append(factory_problem(where, keys[axis], error))
    return problems


def _axis(
    entries: list[Any] | None,
    axis: str,
    shared: dict[str, Any],
    to_block: Any,
    shared_key: str | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """(key for errors, merged section) per entry; the shared section when the axis is absent,
    named ``shared_key`` in errors (default: the section)."""
    if entries is None:
        return [(shared_key or axis, shared[axis])]
    if axis == "strategy":  # a strategy entry replaces the section: no half-merged pairings
        return [(f"grid.{axis}[{i}]", to_block(e)) for i, e in enumerate(entries)]
    return [(f"grid.{axis}[{i}]", {**shared[axis], **to_block(e)}) for i, e in enumerate(entries)]


def _strategy_entry(entry: str | StrategyConfig) -> dict[str, Any]:
    if isinstance(entry, str):
        return {"name": entry}
    block = entry.model_dump(exclude_unset=True)
    if "scorer" in block and "name" not in block:  # a pairing is named after its parts
        block["name"] = f"{block['scorer']}+{block['selector']}"
    return block


def _strategy_label(block: dict[str, Any]) -> str:
    """``loss``, ``loss+balanced``; ``random_s1`` for random on random stream 1."""
    name = block.get("name") or f"{block.get('scorer')}+{block.get('selector')}"
    return f"{name}_s{block['stream']}" if block.get("stream") else name


def _block(entry: str | dict[str, Any], key: str) -> dict[str, Any]:
    return {key: entry} if isinstance(entry, str) else entry


def _check_strategy(trial: TrialConfig) -> None:
    plan(trial)  # the strategy, and that the config can give what it reads


def _check_student(trial: TrialConfig) -> None:
    check_model_spec(trial.student.model)


def _check_task(trial: TrialConfig) -> None:
    make_task(trial.task.name, **trial.task.params)


def _model_label(spec: str) -> str:
    """A short name for a model spec: ``embedded:smollm2-135m`` -> ``smollm2-135m``,
    ``tiny:`` -> ``tiny``, ``org/Model-7B`` -> ``Model-7B``."""
    tail = spec.rstrip("/:").rsplit("/", 1)[-1]
    return tail.split(":", 1)[-1] or tail


def _labels(names: list[str]) -> list[str]:
    """The names, with ``-1``, ``-2`` ... appended where two entries share a name."""
    counts = {name: names.count(name) for name in names}
    seen: dict[str, int] = {}
    labels = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        labels.append(name if counts[name] == 1 else f"{name}-{seen[name]}")
    return labels
