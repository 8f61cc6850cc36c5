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

import pandas as pd
import ray

from ray_asd.config import TrialConfig
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
        scoring = self.resources
        answered = (
            ray.data.from_pandas(table)
            .map_batches(
                StudentScorer,
                fn_constructor_kwargs={
                    "config": self.config,
                    "adapter": self._adapter(),
                    "columns": columns,
                    "cache_dir": str(self.cache_dir) if self.cache_dir else None,
                    "threads": self.threads,
                },
                compute=ray.data.ActorPoolStrategy(size=scoring.actors),
                num_cpus=scoring.cpus,
                num_gpus=scoring.gpus,
                batch_size=scoring.batch_size,
                batch_format="pandas",
            )
            .to_pandas()
        )
        self.model_seconds += float(answered.pop(MODEL_SECONDS).sum())
        # Ray Data may finish batches out of order: put the rows back in the table's order.
        ordered = answered.set_index("id").loc[table["id"]].reset_index()
        return ordered[list(answered.columns)]
