"""Student answering and scoring on Ray Data: ``map_batches`` over a pool of scoring actors.

Each pass (the seeds before selection, the test set after training) is one Ray Data
execution. Its actors load the base model plus the trial's current LoRA adapter from storage
when they start, i.e. at iteration boundaries; weights are never streamed into live actors.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import ray

from ray_asd.config import RewardConfig, TrialConfig
from ray_asd.experiment import ScoringResources
from ray_asd.student import Student
from ray_asd.tasks import make_task
from ray_asd.trial import answer_table

MODEL_SECONDS = "_model_seconds"


class StudentScorer:
    """A Ray Data callable class: answers and scores one batch of rows per call."""

    def __init__(
        self,
        config: TrialConfig,
        adapter: str | None,
        columns: tuple[str, ...],
        cache_dir: str | None,
        threads: int | None,
    ) -> None:
        import torch

        if threads:
            torch.set_num_threads(threads)
        self.config, self.columns = config, columns
        self.task = make_task(config.task.name, **config.task.params)
        self.student = Student.load(
            config.student.model,
            cache_dir=Path(cache_dir) if cache_dir else None,
            autocast=config.student.autocast,
            trust_remote_code=config.student.trust_remote_code,
        )
        if adapter is not None:
            self.student.load_adapter(Path(adapter))

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        clock = time.perf_counter()
        answered = answer_table(self.config, self.task, self.student, batch, self.columns)
        # The batch's model time, spread over its rows: the trial sums it to tell model
        # compute from Ray Data overhead (actor start, model load, transfers).
        return answered.assign(**{MODEL_SECONDS: (time.perf_counter() - clock) / len(batch)})


class RayDataAnswers:
    """The ``student_answers`` part of a runner trial: publishes the trial's adapter to
    storage when it changed, then maps :class:`StudentScorer` over the table."""

    def __init__(
        self,
        config: TrialConfig,
        student: Student,
        adapters: Path,
        resources: ScoringResources,
        cache_dir: Path | None,
        threads: int | None,
    ) -> None:
        self.config, self.student, self.adapters = config, student, adapters
        self.resources, self.cache_dir, self.threads = resources, cache_dir, threads
        # A pass is a few seconds; the trial prints its own progress, one line per phase.
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        self.version = 0  # bumped whenever the student's weights change
        self.published: int | None = None
        self.model_seconds = 0.0  # spent inside the actors' answer_table, summed over passes

    def changed(self) -> None:
        """Called by the trial after training or loading an adapter."""
        self.version += 1

    def _adapter(self) -> str | None:
        if not self.student.has_adapter:
            return None
        folder = self.adapters / f"v{self.version}"
        if self.published != self.version:
            # Earlier versions served passes that are over; a folder of this version was
            # left by an earlier attempt of the trial.
            for old in self.adapters.glob("v*"):
                shutil.rmtree(old)
            self.student.save_adapter(folder)
            self.published = self.version
        return str(folder)

    def __call__(self, table: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
        answered = map_on_actors(
            table,
            StudentScorer,
            {
                "config": self.config,
                "adapter": self._adapter(),
                "columns": columns,
                "cache_dir": str(self.cache_dir) if self.cache_dir else None,
                "threads": self.threads,
            },
            self.resources,
        )
        self.model_seconds += float(answered.pop(MODEL_SECONDS).sum())
        return answered


class RewardScorer:
    """A Ray Data callable class: the reward model on one batch of answered rows."""

    def __init__(self, config: RewardConfig, cache_dir: str | None, threads: int | None) -> None:
        import torch

        from ray_asd.raters.reward import load_reward_model

        if threads:
            torch.set_num_threads(threads)
        self.model = load_reward_model(config, Path(cache_dir) if cache_dir else None)

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        rewards = self.model.score(list(batch["question"]), list(batch["student_answer"]))
        return pd.DataFrame({"id": batch["id"], "reward": rewards})


class RayDataReward:
    """The reward model of a runner trial: maps :class:`RewardScorer` over the answers on an
    actor pool sized like the student's scoring pool (GPUs per actor included)."""

    def __init__(
        self,
        config: RewardConfig,
        resources: ScoringResources,
        cache_dir: Path | None,
        threads: int | None,
    ) -> None:
        self.config, self.resources = config, resources
        self.cache_dir, self.threads = cache_dir, threads

    def __call__(self, questions: list[str], answers: list[str]) -> np.ndarray:
        table = pd.DataFrame(
            {"id": [str(i) for i in range(len(questions))], "question": questions}
        ).assign(student_answer=answers)
        rewarded = map_on_actors(
            table,
            RewardScorer,
            {
                "config": self.config,
                "cache_dir": str(self.cache_dir) if self.cache_dir else None,
                "threads": self.threads,
            },
            self.resources,
        )
        return rewarded["reward"].to_numpy(dtype=float)


def map_on_actors(
    table: pd.DataFrame,
    scorer: type,
    arguments: dict[str, Any],
    resources: ScoringResources,
) -> pd.DataFrame:
    """``scorer`` (a callable class) mapped over ``table`` on a Ray Data actor pool; the
    result's rows in the table's order (by ``id``)."""
    result = (
        ray.data.from_pandas(table)
        .map_batches(
            scorer,
            fn_constructor_kwargs=arguments,
            compute=ray.data.ActorPoolStrategy(size=resources.actors),
            num_cpus=resources.cpus,
            num_gpus=resources.gpus,
            batch_size=resources.batch_size,
            batch_format="pandas",
        )
        .to_pandas()
    )
    # Ray Data may finish batches out of order: put the rows back in the table's order.
    ordered = result.set_index("id").loc[table["id"]].reset_index()
    return ordered[list(result.columns)]
