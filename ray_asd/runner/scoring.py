"""Student answering and scoring on scoring actors that live as long as their trial.

A trial's passes (the seeds before selection, the test set after training) go to a pool of
Ray actors, each holding the student's base model; batches are handed out by
``ray.util.ActorPool``. When the trial's weights change (training, a loaded checkpoint) the
trial saves its LoRA adapter to storage and the actors load it before the next pass (DESIGN
section 4: adapters go through storage at iteration boundaries, weights are never streamed).

Why not one Ray Data ``map_batches`` per pass: Ray Data's actor pool lives for one execution,
so every pass started a worker process, imported torch/transformers/peft and loaded the model
again: ~6 s per pass on a 2-core laptop, 25% of the quickstart's wall time
(bench/scoring.py, bench/README.md). Actors that outlive a pass pay it once per trial.
"""

from __future__ import annotations

import math
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import ray
from ray.actor import ActorHandle
from ray.util import ActorPool

from ray_asd.answers import answer_table
from ray_asd.config import RewardConfig, TrialConfig
from ray_asd.experiment import ScoringResources
from ray_asd.student.model import Student
from ray_asd.tasks import make_task

MODEL_SECONDS = "_model_seconds"


class StudentScorer:
    """A scoring actor's state: the student (base model + the trial's current adapter)."""

    def __init__(self, config: TrialConfig, cache_dir: str | None, threads: int | None) -> None:
        import torch

        if threads:
            torch.set_num_threads(threads)
        self.config = config
        self.task = make_task(config.task.name, **config.task.params)
        self.student = Student.from_config(config.student, Path(cache_dir) if cache_dir else None)

    def set_adapter(self, adapter: str | None) -> None:
        """Serve ``adapter`` (a saved LoRA folder) from now on; None: the base model."""
        if adapter is None:
            self.student.reset_adapter()
        else:
            self.student.load_adapter(Path(adapter))

    def score(self, batch: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
        clock = time.perf_counter()
        answered = answer_table(self.config, self.task, self.student, batch, columns)
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


class ActorSlot:
    """What a trial's scoring actors may hold: ``resources.scoring`` once, which
    `run._fitting_trials` counts per trial. The student's actors keep it for the whole trial;
    a strategy that also needs the reward model swaps the two pools in it, each pass."""

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
    actors it owned). Placed outside the trial's placement group."""

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
                scheduling_strategy="DEFAULT",  # not the trial's placement group
            )
            self.actors = [remote.remote(**self.arguments) for _ in range(self.resources.actors)]
            ray.get([actor.__ray_ready__.remote() for actor in self.actors])
            self.start_seconds += time.perf_counter() - clock
        return self.actors

    def broadcast(self, method: str, *args: Any) -> None:
        """Call ``method(*args)`` on every actor and wait for all of them."""
        ray.get([getattr(actor, method).remote(*args) for actor in self._started()])

    def map(self, table: pd.DataFrame, *args: Any) -> pd.DataFrame:
        """``score(batch, *args)`` over the table's batches; rows come back in its order.

        Batches hold at most ``resources.batch_size`` rows, fewer when that keeps every
        actor busy (64 seeds on 4 actors: 4 batches of 16)."""
        actors = self._started()
        size = max(1, min(self.resources.batch_size, math.ceil(len(table) / len(actors))))
        batches = [table.iloc[start : start + size] for start in range(0, len(table), size)]
        scored = ActorPool(actors).map(
            lambda actor, batch: actor.score.remote(batch, *args), batches or [table]
        )
        return pd.concat(list(scored), ignore_index=True)

    def close(self) -> None:
        for actor in self.actors:
            ray.kill(actor)
        self.actors = []


class PoolAnswers:
    """A runner trial's served answers (`ray_asd.parts.ServedAnswers`): answers and scores a
    table on the trial's :class:`StudentScorer` actors, after giving them the trial's adapter
    when the weights changed since their last pass."""

    def __init__(
        self,
        config: TrialConfig,
        student: Student,
        adapters: Path,
        resources: ScoringResources,
        slot: ActorSlot,
        cache_dir: Path | None,
        threads: int | None,
    ) -> None:
        self.student, self.adapters = student, adapters
        self.actors = ScoringActors(StudentScorer, config, resources, slot, cache_dir, threads)
        self.version = 0  # bumped whenever the student's weights change
        self.served: int | None = None  # the version the actors hold
        self.model_seconds = 0.0  # inside the actors' answer_table since the last take

    def changed(self) -> None:
        """Called by the trial after training or loading an adapter."""
        self.version += 1

    def take_model_seconds(self) -> float:
        seconds, self.model_seconds = self.model_seconds, 0.0
        return seconds

    def _serve_current_weights(self) -> None:
        if not self.actors.actors:  # new actors (or restarted after the reward model's pass)
            self.served = None
        if self.served == self.version:
            return
        adapter = None
        if self.student.has_adapter:
            folder = self.adapters / f"v{self.version}"
            # Earlier versions are loaded already; a folder of this version was left by an
            # earlier attempt of the trial.
            for old in self.adapters.glob("v*"):
                shutil.rmtree(old)
            self.student.save_adapter(folder)
            adapter = str(folder)
        self.actors.broadcast("set_adapter", adapter)
        self.served = self.version

    def __call__(self, table: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
        self._serve_current_weights()
        answered = self.actors.map(table, columns)
        self.model_seconds += float(answered.pop(MODEL_SECONDS).sum())
        return answered

    def close(self) -> None:
        self.actors.close()


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
