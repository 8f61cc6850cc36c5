"""The shared teacher pool: completion engines in named Ray actors, one pool per experiment.

The driver creates the engines once (:func:`start_pool`); every trial reaches them by name
through a :class:`PooledBackend`, so one large teacher serves many students. Trials render
prompts and parse completions themselves; the pool only completes prompts. A trial's batch is
split across the engines and gathered back in request order.

Every engine keeps the teacher cache (``ray_asd.teacher.cache``) in the experiment's storage:
a trial retried from its last checkpoint, or an experiment resumed or run again, re-sends
requests already answered and gets the stored completions without a model call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import ray
from ray.util.placement_group import placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from ray_asd.config import TeacherConfig
from ray_asd.kinds import teacher_kind
from ray_asd.teacher import CachedBackend, Completion
from ray_asd.teacher.backends import engine_shards, make_backend

API_CALLS_AT_ONCE = 16


class CompletionEngine:
    """One LLM backend with the teacher cache, in a Ray actor (see :func:`start_pool`)."""

    def __init__(
        self, config: TeacherConfig, cache_dir: str | None, teacher_cache: str, writer: str
    ) -> None:
        backend = make_backend(config, Path(cache_dir) if cache_dir else None)
        self._backend = CachedBackend(backend, Path(teacher_cache), writer)

    def complete(self, prompts: Sequence[str], seeds: Sequence[int]) -> list[Completion]:
        return self._backend.complete(prompts, seeds)

    def identity(self) -> dict[str, Any]:
        return self._backend.identity

    def stats(self) -> dict[str, int]:
        return self._backend.stats()


@dataclass
class PooledBackend:
    """The completion backend protocol over a running pool; picklable, so trials receive it
    as data and look the engines up by name where they run."""

    engines: list[str]
    namespace: str
    identity: dict[str, Any]
    _handles: list[Any] = field(default_factory=list, repr=False, compare=False)

    def complete(self, prompts: Sequence[str], seeds: Sequence[int]) -> list[Completion]:
        if not prompts:
            return []
        handles = self._engines()
        # Contiguous, near-equal shares, one per engine, gathered back in request order.
        shares = _split(len(prompts), len(handles))
        refs = [
            handle.complete.remote(prompts[a:b], seeds[a:b])
            for handle, (a, b) in zip(handles, shares, strict=False)
            if b > a
        ]
        return [completion for completions in ray.get(refs) for completion in completions]

    def stats(self) -> dict[str, int]:
        return pool_stats(self._engines())

    def _engines(self) -> list[Any]:
        if not self._handles:  # looked up by name where the backend is used
            self._handles = [ray.get_actor(n, namespace=self.namespace) for n in self.engines]
        return self._handles

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_handles": []}  # handles are looked up again where used


def _split(n: int, parts: int) -> list[tuple[int, int]]:
    bounds = [round(i * n / parts) for i in range(parts + 1)]
    return list(pairwise(bounds))


def pool_stats(handles: list[Any]) -> dict[str, int]:
    """The engines' counters summed (each counter over the engines that have it)."""
    totals: dict[str, int] = {}
    for stats in ray.get([handle.stats.remote() for handle in handles]):
        for key, value in stats.items():
            totals[key] = totals.get(key, 0) + value
    return totals


@dataclass(frozen=True)
class TeacherPool:
    """The driver's hold on the pool: Ray stops a named actor once no handle to it is left,
    so the driver keeps these for as long as the experiment runs."""

    backend: PooledBackend
    handles: list[Any]

    def stats(self) -> dict[str, int]:
        return pool_stats(self.handles)


def start_pool(
    config: TeacherConfig,
    *,
    prefix: str,
    namespace: str,
    replicas: int,
    cpus: float,
    gpus: float,
    teacher_cache: Path,
    cache_dir: Path | None = None,
    role: str = "teacher",
) -> TeacherPool:
    """Starts (or finds, if they run already) the pool's engines, named so trials find them
    (``<prefix>-<role>-<i>``; a judge pool has the role ``judge``).

    A vLLM engine with ``tensor_parallel_size`` > 1 gets a placement group of that many GPU
    bundles; vLLM's Ray executor starts its workers inside it.
    """
    teacher_cache.mkdir(parents=True, exist_ok=True)
    names = [f"{prefix}-{role}-{i}" for i in range(replicas)]
    handles = [
        _running(name, namespace)
        or ray.remote(CompletionEngine)
        .options(
            name=name,
            namespace=namespace,
            # An engine lost with its node comes back and the call is retried, a few times:
            # an engine that dies on every call (out of memory) fails its trials instead.
            max_restarts=3,
            max_task_retries=3,
            # An engine that loads its model computes: one batch at a time. One that loads
            # none (an API client) waits on the network: it serves several trials at once.
            max_concurrency=1 if teacher_kind(config.backend).loads_model else API_CALLS_AT_ONCE,
            **_placement(config, cpus, gpus),
        )
        .remote(config, str(cache_dir) if cache_dir else None, str(teacher_cache), name)
        for name in names
    ]
    identities = ray.get([handle.identity.remote() for handle in handles])
    return TeacherPool(PooledBackend(names, namespace, identities[0]), handles)


def _running(name: str, namespace: str) -> Any | None:
    """The engine of that name if it runs already (a resumed driver on a live cluster)."""
    try:
        return ray.get_actor(name, namespace=namespace)
    except ValueError:
        return None


def _placement(config: TeacherConfig, cpus: float, gpus: float) -> dict[str, Any]:
    parallel = engine_shards(config)
    if parallel == 1:
        return {"num_cpus": cpus, "num_gpus": gpus}
    group = placement_group([{"GPU": 1, "CPU": 1}] * parallel)
    return {
        "num_cpus": 0,
        "num_gpus": 0,
        "scheduling_strategy": PlacementGroupSchedulingStrategy(
            group, placement_group_capture_child_tasks=True
        ),
    }
