"""The shared teacher pool: teacher engines in named Ray actors, one pool per experiment.

The driver creates the engines once (:func:`start_pool`); every trial reaches them by name
through a :class:`PooledTeacher`, so one large teacher serves many students. A trial's batch
is split across the engines and gathered back in request order.

Every engine remembers the answer to each request it served, keyed by (task, kind, text,
seed), in memory and in a JSONL file in the experiment's storage: a trial retried from its
last checkpoint re-sends exactly the requests of the iteration it lost (same rng state, same
seeds) and gets the remembered outputs without a second engine call, also after the driver
was restarted with ``--resume`` (each engine reads the files of every engine of its pool).
``stats()`` counts both.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import ray

from ray_asd.config import TeacherConfig
from ray_asd.tasks import Task, make_task
from ray_asd.teacher import TeacherOutput


@dataclass(frozen=True)
class TaskSpec:
    """What an engine needs to rebuild a trial's task (tasks hold functions; specs are data)."""

    name: str
    params: tuple[tuple[str, Any], ...] = ()

    @property
    def key(self) -> str:
        return json.dumps([self.name, self.params], sort_keys=True, default=str)


class TeacherEngine:
    """One teacher backend in a Ray actor (created through :func:`start_pool`)."""

    def __init__(self, config: TeacherConfig, cache_dir: str | None, served_file: str) -> None:
        from ray_asd.trial import build_teacher

        self._teacher = build_teacher(config, Path(cache_dir) if cache_dir else None)
        self._tasks: dict[str, Task] = {}
        self._served_file = Path(served_file)
        self._served = _read_served(self._served_file.parent)
        _end_line(self._served_file)
        self._counts = {"requests": 0, "engine_requests": 0, "calls": 0}

    def serve(
        self, kind: str, task: TaskSpec, texts: Sequence[str], seeds: Sequence[int]
    ) -> list[TeacherOutput]:
        """``kind`` "write" (texts are seed questions) or "answer" (texts are questions)."""
        if task.key not in self._tasks:
            self._tasks[task.key] = make_task(task.name, **dict(task.params))
        keys = [
            _request_key(kind, task, text, seed) for text, seed in zip(texts, seeds, strict=True)
        ]
        new = [i for i, key in enumerate(keys) if key not in self._served]
        if new:
            method = {
                "write": self._teacher.write_questions,
                "answer": self._teacher.answer_questions,
            }[kind]
            outputs = method(
                self._tasks[task.key], [texts[i] for i in new], [seeds[i] for i in new]
            )
            fresh = {keys[i]: out for i, out in zip(new, outputs, strict=True)}
            self._served.update(fresh)
            with self._served_file.open("a", encoding="utf-8") as file:
                file.writelines(
                    json.dumps({"key": key, **asdict(out)}) + "\n" for key, out in fresh.items()
                )
            self._counts["calls"] += 1
        self._counts["requests"] += len(keys)
        self._counts["engine_requests"] += len(new)
        return [self._served[key] for key in keys]

    def stats(self) -> dict[str, int]:
        """requests received, engine_requests actually computed, calls made to the backend."""
        return dict(self._counts)

    def ready(self) -> str:
        return self._teacher.model


def _read_served(folder: Path) -> dict[str, TeacherOutput]:
    """What the pool's engines served before, from their files in ``folder``."""
    served: dict[str, TeacherOutput] = {}
    for path in sorted(folder.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:  # a line cut short when its engine died: not served
                continue
            key = record.pop("key")
            served[key] = TeacherOutput(**record)
    return served


def _end_line(path: Path) -> None:
    """Ends a line an engine killed mid-write left open, so the next record starts clean."""
    if path.is_file() and path.stat().st_size:
        with path.open("rb+") as file:
            file.seek(-1, 2)
            if file.read(1) != b"\n":
                file.write(b"\n")


def _request_key(kind: str, task: TaskSpec, text: str, seed: int) -> str:
    return hashlib.sha256(json.dumps([kind, task.key, text, seed]).encode()).hexdigest()


@dataclass
class PooledTeacher:
    """The teacher protocol over a running pool; picklable, so trials receive it as data."""

    engines: list[str]
    namespace: str
    model: str
    task: TaskSpec
    _handles: list[Any] = field(default_factory=list, repr=False, compare=False)

    def write_questions(
        self, task: Task, seed_questions: Sequence[str], seeds: Sequence[int]
    ) -> list[TeacherOutput]:
        return self._serve("write", seed_questions, seeds)

    def answer_questions(
        self, task: Task, questions: Sequence[str], seeds: Sequence[int]
    ) -> list[TeacherOutput]:
        return self._serve("answer", questions, seeds)

    def _serve(self, kind: str, texts: Sequence[str], seeds: Sequence[int]) -> list[TeacherOutput]:
        if not texts:
            return []
        if not self._handles:
            self._handles = [ray.get_actor(n, namespace=self.namespace) for n in self.engines]
        # Contiguous, near-equal shares, one per engine, gathered back in request order.
        shares = _split(len(texts), len(self._handles))
        refs = [
            handle.serve.remote(kind, self.task, texts[a:b], seeds[a:b])
            for handle, (a, b) in zip(self._handles, shares, strict=False)
            if b > a
        ]
        return [output for outputs in ray.get(refs) for output in outputs]

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_handles": []}  # handles are looked up again where used


def _split(n: int, parts: int) -> list[tuple[int, int]]:
    bounds = [round(i * n / parts) for i in range(parts + 1)]
    return list(pairwise(bounds))


@dataclass(frozen=True)
class TeacherPool:
    """The driver's hold on the pool: Ray stops a named actor once no handle to it is left,
    so the driver keeps these for as long as the experiment runs."""

    names: list[str]
    handles: list[Any]

    def stats(self) -> dict[str, int]:
        """The pool's request counters summed over its engines."""
        stats = ray.get([handle.stats.remote() for handle in self.handles])
        return {key: sum(s[key] for s in stats) for key in stats[0]}


def start_pool(
    config: TeacherConfig,
    *,
    prefix: str,
    namespace: str,
    replicas: int,
    cpus: float,
    gpus: float,
    served: Path,
    cache_dir: Path | None = None,
) -> TeacherPool:
    """Starts (or finds, if they run already) the pool's engines, named so trials find them.

    ``served`` is the pool's own folder (on storage every node sees) of the engines'
    served-request files: a pool of another teacher config never replays them.
    """
    served.mkdir(parents=True, exist_ok=True)
    names = [f"{prefix}-teacher-{i}" for i in range(replicas)]
    engine = ray.remote(TeacherEngine)
    handles = [
        engine.options(
            name=name,
            namespace=namespace,
            get_if_exists=True,
            num_cpus=cpus,
            num_gpus=gpus,
            # An engine lost with its node comes back and the call is retried, a few times:
            # an engine that dies on every call (out of memory) fails its trials instead.
            max_restarts=3,
            max_task_retries=3,
        ).remote(config, str(cache_dir) if cache_dir else None, str(served / f"{name}.jsonl"))
        for name in names
    ]
    ray.get([handle.ready.remote() for handle in handles])
    return TeacherPool(names, handles)
