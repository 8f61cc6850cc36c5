"""Shared student engines (``resources.scoring.shared: true``): one pool of engines per
distinct base student, created once per experiment by the driver and serving every trial's
adapters, so a grid of many trials of one student needs GPUs for training plus a few engines,
not an engine per trial.

The engines are the scoring actors' class (`scoring.StudentScorer`) as named Ray actors, like
the teacher pool (`teacher_pool.py`): trials look them up by name, and every request names
the trial's config and adapter (a name never reused, its folder in storage), so an engine
serves whichever trial asks (transformers: loading the adapter when it switches; vLLM: up to
``student.vllm.max_loras`` adapters kept loaded). A transformers engine answers one request
at a time: trials take turns on it. A vLLM engine takes up to ``max_loras`` requests at once
(:data:`AT_ONCE`), and each joins the batch it is running (`ray_asd.student.coalesce`): trials'
batches share its steps, up to ``max_loras`` adapters a step. An engine that dies is
restarted and its requests re-sent (``max_task_retries``). A trial's batches are cut as on its
own actors (``scoring.actors`` engines, ``scoring.batch_size``), so it gets the same answers
either way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import ray

from ray_asd.config import TrialConfig
from ray_asd.experiment import Cell, ScoringResources
from ray_asd.runner.dataplane import scoring_pass
from ray_asd.runner.scoring import ENGINE_RESTARTS, StudentScorer

# Student settings each request carries (answer_table reads them): trials that differ only
# in these share an engine.
PER_REQUEST = {"max_new_tokens", "batch_size"}

# Requests an engine takes at once, by student backend: a transformers engine serves one
# adapter at a time; a vLLM engine merges concurrent requests into its steps, whose batches
# hold up to max_loras adapters (more at once would wait inside the engine for a slot).
AT_ONCE: dict[str, Callable[[TrialConfig], int]] = {
    "transformers": lambda config: 1,
    "vllm": lambda config: config.student.vllm.max_loras,
}


def student_key(config: TrialConfig) -> str:
    """Equal for trials that can share an engine: same base model and engine settings (and,
    for a vLLM engine's LoRA layers, the same target modules)."""
    settings = config.student.model_dump_json(exclude=PER_REQUEST)
    modules = ",".join(config.train.lora_target_modules)
    return hashlib.sha256(f"{settings}|{modules}".encode()).hexdigest()[:12]


@dataclass
class SharedEngines:
    """One base student's shared engines, as a trial uses them (`scoring.Engines`);
    picklable: handles are looked up by name where it is used."""

    names: list[str]
    namespace: str
    batch_size: int
    start_seconds: float = 0.0  # started by the driver, not the trial
    _handles: list[Any] = field(default_factory=list, repr=False, compare=False)

    def map(self, table: pd.DataFrame, *args: Any) -> pd.DataFrame:
        if not self._handles:
            self._handles = [ray.get_actor(n, namespace=self.namespace) for n in self.names]
        return scoring_pass(table, self._handles, "score", args, self.batch_size)

    def close(self) -> None:
        """Nothing: the engines outlive the trial (the driver holds them)."""

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_handles": []}


@dataclass(frozen=True)
class StudentPools:
    """The experiment's shared engines, by :func:`student_key` (sent to every trial)."""

    names: dict[str, list[str]]
    namespace: str
    resources: ScoringResources

    def engines(self, config: TrialConfig) -> SharedEngines:
        """The engines serving ``config``'s base student."""
        names = self.names[student_key(config)]
        return SharedEngines(names, self.namespace, self.resources.batch_size)


@dataclass(frozen=True)
class StudentPoolsHold:
    """The driver's hold on the engines: Ray stops a named actor once no handle is left."""

    pools: StudentPools
    handles: list[Any]


def start_student_pools(
    grid: list[Cell],
    resources: ScoringResources,
    *,
    prefix: str,
    namespace: str,
    cache_dir: Path | None,
    threads: int | None,
) -> StudentPoolsHold:
    """Starts ``resources.actors`` engines per distinct base student of the grid (or finds
    them running: a resumed driver on a live cluster), named ``<prefix>-student-<key>-<i>``.
    Each holds ``resources.cpus`` and ``resources.gpus``, outside every trial."""
    first: dict[str, TrialConfig] = {}
    for cell in grid:
        first.setdefault(student_key(cell.config), cell.config)
    names: dict[str, list[str]] = {}
    handles = []
    for key, config in first.items():
        names[key] = [f"{prefix}-student-{key}-{i}" for i in range(resources.actors)]
        for name in names[key]:
            handles.append(
                _running(name, namespace)
                or _start(name, namespace, config, resources, cache_dir, threads)
            )
    ray.get([handle.__ray_ready__.remote() for handle in handles])
    return StudentPoolsHold(StudentPools(names, namespace, resources), handles)


def _start(
    name: str,
    namespace: str,
    config: TrialConfig,
    resources: ScoringResources,
    cache_dir: Path | None,
    threads: int | None,
) -> Any:
    return (
        ray.remote(StudentScorer)
        .options(
            name=name,
            namespace=namespace,
            num_cpus=resources.cpus,
            num_gpus=resources.gpus,
            max_restarts=ENGINE_RESTARTS,
            max_task_retries=ENGINE_RESTARTS,
            max_concurrency=AT_ONCE[config.student.backend](config),
            scheduling_strategy="DEFAULT",  # not the driver's placement group, if any
        )
        .remote(config, str(cache_dir) if cache_dir else None, threads)
    )


def _running(name: str, namespace: str) -> Any | None:
    try:
        return ray.get_actor(name, namespace=namespace)
    except ValueError:
        return None


def pool_totals(grid: list[Cell], resources: ScoringResources) -> dict[str, float]:
    """What the shared engines hold in all (the driver counts them with the teacher pool's
    before it sizes ``max_concurrent_trials``)."""
    students = len({student_key(cell.config) for cell in grid})
    count = students * resources.actors
    return {"CPU": count * resources.cpus, "GPU": count * resources.gpus}
