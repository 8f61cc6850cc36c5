"""Student answering and scoring on long-lived engines: each pass a Ray Dataset.

A trial's passes (the seeds before selection, the test set after training) are Ray Datasets
mapped in batches to engine actors that hold the student's base model (`dataplane.py`): the
trial's own scoring actors (:class:`ScoringActors`, started once per trial in its placement
group), or the experiment's shared engines for its base student (`student_pool.py`,
``resources.scoring.shared``), which serve every trial's adapters. When the trial's weights
change (training, a loaded checkpoint) the trial saves its LoRA adapter to storage, and every
request of the next pass names it (a name never reused, and its folder): an engine loads an
adapter it does not hold from storage (DESIGN section 4: adapters go through storage at
iteration boundaries, weights are never streamed). Requests carry everything an engine needs,
so an engine that died is restarted and its requests re-sent (``max_task_retries``).

Why the engines outlive the Dataset: Ray Data's actor pools live for one execution, so a
``map_batches`` over an actor class started a worker, imported torch/transformers/peft and
loaded the model on every pass, ~6 s a pass on a 2-core laptop, 25% of the quickstart's wall
time (bench/README.md); engines that outlive the pass pay that once per trial, and a Dataset
whose task forwards its batches to them costs ~0.1 s a pass (bench/scoring.py).
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd
import ray
from ray.actor import ActorHandle

from ray_asd.answers import Answerer, answer_table
from ray_asd.config import RewardConfig, TrialConfig
from ray_asd.experiment import ScoringResources
from ray_asd.runner.dataplane import scoring_pass
from ray_asd.runner.placement import scoring_strategy
from ray_asd.tasks import Task, make_task

if TYPE_CHECKING:  # torch: imported by the engines that load a model, not by this module
    from ray_asd.student.model import Student

MODEL_SECONDS = "_model_seconds"
# An engine lost with its node, or killed, comes back and its calls are re-sent; one that
# dies on every call (out of memory) fails its pass after these.
ENGINE_RESTARTS = 3


@dataclass(frozen=True)
class Adapter:
    """A trial's adapter version as its requests name it: ``name`` is never reused (a trial
    attempt's token + the version), ``path`` the peft folder in storage."""

    name: str
    path: str


class Server(Protocol):
    """What an engine serves from: the base model, as the student under any adapter (what
    `answer_table` answers with; the request itself is built once, in
    :meth:`StudentScorer.score`)."""

    def answerer(self, adapter: Adapter | None) -> Answerer: ...


class TransformersServer:
    """The student's transformers model; an adapter other than the one it holds is loaded
    from storage (a shared engine's trials take turns: one load per switch, ~0.1 s for a
    135M model's LoRA)."""

    def __init__(self, config: TrialConfig, cache_dir: Path | None) -> None:
        from ray_asd.student.model import Student

        self.student = Student.from_config(config.student, cache_dir)
        self.serving: str | None = None

    def answerer(self, adapter: Adapter | None) -> Answerer:
        name = adapter.name if adapter else None
        if name != self.serving:
            if adapter is None:
                self.student.reset_adapter()
            else:
                self.student.load_adapter(Path(adapter.path))
            self.serving = name
        return self.student


class VllmServer:
    """The student's base model on a vLLM engine serving the adapters it is asked for (up to
    ``student.vllm.max_loras`` in one step: a shared engine's concurrent requests join the
    batch it is running, `ray_asd.student.coalesce`); each name is registered once, so a
    version saved over an old folder is a new adapter to vLLM."""

    def __init__(self, config: TrialConfig, cache_dir: Path | None) -> None:
        from ray_asd.student.vllm_engine import AdapterVersion, VllmStudent

        self.engine = VllmStudent(config.student, config.train.lora_target_modules, cache_dir)
        self.versions: dict[str, AdapterVersion] = {}

    def answerer(self, adapter: Adapter | None) -> Answerer:
        if adapter is None:
            return self.engine.bind(None)
        if adapter.name not in self.versions:
            self.versions[adapter.name] = self.engine.register(adapter.path, adapter.name)
        return self.engine.bind(self.versions[adapter.name])


SERVERS: dict[str, Callable[[TrialConfig, Path | None], Server]] = {
    "transformers": TransformersServer,
    "vllm": VllmServer,
}


class StudentScorer:
    """An engine actor's state: a :data:`SERVERS` server for ``config.student.backend``,
    answering any trial's batches (its config travels with them) under any adapter."""

    def __init__(self, config: TrialConfig, cache_dir: str | None, threads: int | None) -> None:
        import torch

        if threads:
            torch.set_num_threads(threads)
        self.server = SERVERS[config.student.backend](
            config, Path(cache_dir) if cache_dir else None
        )
        self.tasks: dict[str, Task] = {}

    def score(
        self,
        batch: pd.DataFrame,
        columns: tuple[str, ...],
        adapter: Adapter | None,
        config: TrialConfig,
    ) -> pd.DataFrame:
        clock = time.perf_counter()
        key = config.task.model_dump_json()
        if key not in self.tasks:
            self.tasks[key] = make_task(config.task.name, **config.task.params)
        student = self.server.answerer(adapter)
        answered = answer_table(config, self.tasks[key], student, batch, columns)
        # The batch's model time, spread over its rows: the trial sums it to tell model
        # compute from the pool's overhead (actor start, model load, transfers).
        seconds = (time.perf_counter() - clock) / max(len(batch), 1)
        return answered.assign(**{MODEL_SECONDS: seconds})


class RewardScorer:
    """A scoring actor's state: the reward model."""

    def __init__(self, config: RewardConfig, cache_dir: str | None, threads: int | None) -> None:
        import torch

        from ray_asd.raters.reward import load_reward_model

        if threads:
            torch.set_num_threads(threads)
        self.model = load_reward_model(config, Path(cache_dir) if cache_dir else None)

    def score(self, batch: pd.DataFrame) -> pd.DataFrame:
        rewards = self.model.score(list(batch["question"]), list(batch["student_answer"]))
        return pd.DataFrame({"id": batch["id"], "reward": rewards})


class Engines(Protocol):
    """Engines a pass maps its batches to: a trial's own actors or a shared pool."""

    start_seconds: float  # starting them and loading their models, in this trial

    def map(self, table: pd.DataFrame, *args: Any) -> pd.DataFrame: ...

    def close(self) -> None: ...


class ActorSlot:
    """What a trial's scoring actors may hold: ``resources.scoring`` once (the trial's
    placement group has one bundle for it, `placement.py`). The student's actors keep it for
    the whole trial; a strategy that also needs the reward model swaps the two pools in it,
    each pass."""

    def __init__(self) -> None:
        self.holder: ScoringActors | None = None

    def take(self, pool: ScoringActors) -> None:
        if self.holder is not None and self.holder is not pool:
            self.holder.close()
        self.holder = pool


class ScoringActors:
    """``resources.actors`` Ray actors of ``actor_class`` (built from ``config``, the model
    cache and the torch threads), started on first use and kept until :meth:`close`, until
    another pool takes their ``slot``, or until the trial's process dies (Ray then kills the
    actors it owned). Placed in the trial's scoring bundle (`placement.scoring_strategy`)."""

    def __init__(
        self,
        actor_class: type,
        config: Any,
        resources: ScoringResources,
        slot: ActorSlot,
        cache_dir: Path | None,
        threads: int | None,
    ) -> None:
        self.actor_class, self.resources, self.slot = actor_class, resources, slot
        self.arguments = {
            "config": config,
            "cache_dir": str(cache_dir) if cache_dir else None,
            "threads": threads,
        }
        self.actors: list[ActorHandle] = []
        self.start_seconds = 0.0  # starting the actors and loading their models

    def _started(self) -> list[ActorHandle]:
        if not self.actors:
            self.slot.take(self)
            clock = time.perf_counter()
            remote = ray.remote(self.actor_class).options(
                num_cpus=self.resources.cpus,
                num_gpus=self.resources.gpus,
                max_restarts=ENGINE_RESTARTS,
                max_task_retries=ENGINE_RESTARTS,
                scheduling_strategy=scoring_strategy(),
            )
            self.actors = [remote.remote(**self.arguments) for _ in range(self.resources.actors)]
            ray.get([actor.__ray_ready__.remote() for actor in self.actors])
            self.start_seconds += time.perf_counter() - clock
        return self.actors

    def map(self, table: pd.DataFrame, *args: Any) -> pd.DataFrame:
        """``score(batch, *args)`` over the table's batches, one Ray Dataset; rows come back
        in its order (`dataplane.scoring_pass`)."""
        return scoring_pass(table, self._started(), "score", args, self.resources.batch_size)

    def close(self) -> None:
        for actor in self.actors:
            ray.kill(actor, no_restart=True)
        self.actors = []


class PoolAnswers:
    """A runner trial's served answers (`ray_asd.parts.ServedAnswers`): answers and scores a
    table on its engines (:class:`StudentScorer` actors, the trial's own or shared), each
    request naming the trial's current adapter, saved to storage when the weights changed."""

    def __init__(
        self, config: TrialConfig, student: Student, adapters: Path, engines: Engines
    ) -> None:
        self.config, self.student, self.adapters, self.engines = config, student, adapters, engines
        # Adapter names are never reused, across trials and their attempts: an engine that
        # knows a name serves what it loaded under it (vLLM caches adapters by name and id).
        self.token = f"{adapters.parent.name}-{uuid.uuid4().hex[:8]}"
        self.version = 0  # bumped whenever the student's weights change
        self.saved: int | None = None  # the version saved to storage
        self.model_seconds = 0.0  # inside the engines' answer_table since the last take

    def changed(self) -> None:
        """Called by the trial after training or loading an adapter."""
        self.version += 1

    def take_model_seconds(self) -> float:
        seconds, self.model_seconds = self.model_seconds, 0.0
        return seconds

    def _adapter(self) -> Adapter | None:
        """The adapter the student has now, saved to storage once per version."""
        if not self.student.has_adapter:
            return None
        folder = self.adapters / f"v{self.version}"
        if self.saved != self.version:
            # Earlier versions are served already; a folder of this version was left by an
            # earlier attempt of the trial.
            for old in self.adapters.glob("v*"):
                shutil.rmtree(old)
            self.student.save_adapter(folder)
            self.saved = self.version
        return Adapter(f"{self.token}-v{self.version}", str(folder))

    def __call__(self, table: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
        answered = self.engines.map(table, columns, self._adapter(), self.config)
        self.model_seconds += float(answered.pop(MODEL_SECONDS).sum())
        return answered

    def close(self) -> None:
        self.engines.close()


class PoolReward:
    """The reward model of a runner trial, on :class:`RewardScorer` actors sized like the
    student's scoring actors (GPUs per actor included), in their slot: the reward model and
    the student take turns, each loaded again for its pass."""

    def __init__(
        self,
        config: RewardConfig,
        resources: ScoringResources,
        slot: ActorSlot,
        cache_dir: Path | None,
        threads: int | None,
    ) -> None:
        self.actors = ScoringActors(RewardScorer, config, resources, slot, cache_dir, threads)

    def __call__(self, questions: list[str], answers: list[str]) -> np.ndarray:
        table = pd.DataFrame(
            {"id": [str(i) for i in range(len(questions))], "question": questions}
        ).assign(student_answer=answers)
        return self.actors.map(table)["reward"].to_numpy(dtype=float)

    def close(self) -> None:
        self.actors.close()
