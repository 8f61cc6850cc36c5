"""What the loop calls (:class:`TrialParts`), behind small typed protocols. Ray-free: built by
`ray_asd.assemble` alike for `ray-asd trial` (everything in-process) and for a Tune trial
(seed and test answers served by scoring actors, the teacher by a shared pool).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from ray_asd.answers import answer_table
from ray_asd.plan import TrialPlan
from ray_asd.records import Item, Spend
from ray_asd.tasks import Task
from ray_asd.teacher import Teacher

if TYPE_CHECKING:
    from ray_asd.student.protocol import StudentModel


class Answers(Protocol):
    """A table of questions -> the same rows with ``student_answer``, ``answer_tokens``,
    ``correct`` and the student columns named (`ray_asd.answers.answer_table`)."""

    def __call__(self, table: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame: ...


class ServedAnswers(Answers, Protocol):
    """Answers served from copies of the student's weights elsewhere (the runner's scoring
    actors)."""

    def changed(self) -> None:
        """The weights changed: the next pass serves the trial's current adapter."""

    def take_model_seconds(self) -> float:
        """Model compute inside the copies since the last call (the rest of an answering
        stage's time is serving overhead)."""


class Rate(Protocol):
    """(answered seeds, rater columns, the trial's memo, its generator) -> the table with the
    columns added, and what their LLM calls cost (`ray_asd.raters.Raters`)."""

    def __call__(
        self,
        table: pd.DataFrame,
        columns: tuple[str, ...],
        memo: dict[str, Any],
        rng: np.random.Generator,
    ) -> tuple[pd.DataFrame, Spend]: ...


@dataclass
class TrialStudent:
    """The student a trial trains, and where its answers come from.

    Attributes:
        plan: the trial's plan (answering and training settings).
        task: the trial's task (prompts, checker).
        model: the student model in this process; it trains.
        served: answers to seeds and test items from elsewhere; None: ``model`` answers.
    """

    plan: TrialPlan
    task: Task
    model: StudentModel
    served: ServedAnswers | None = None

    def answers(self, table: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
        """Answers to a pass over the seeds or the test set."""
        if self.served is not None:
            return self.served(table, columns)
        return self.answers_here(table, columns)

    def answers_here(self, table: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
        """Answers from the model in this process (the few items scored for the report:
        cheaper than a round trip through actors)."""
        return answer_table(self.plan.config, self.task, self.model, table, columns)

    def train(self, items: list[Item], t: int) -> dict[str, float]:
        """LoRA on ``items`` at iteration ``t`` (-1: the warm-up): the training stats."""
        config = self.plan.config
        if config.train.mode == "retrain":
            self.model.reset_adapter()
        stats = self.model.train(
            [self.task.prompt(item.question or "") for item in items],
            [" " + (item.answer or "") for item in items],
            config.train,
            seed=config.seed * 1000 + t + 1,  # t = -1 is the warm-up; seeds are non-negative
        )
        self._changed()
        return {
            "steps": stats.steps,
            "first_epoch_loss": stats.first_epoch_loss,
            "last_epoch_loss": stats.last_epoch_loss,
        }

    def save(self, path: Path) -> None:
        if self.model.has_adapter:
            self.model.save_adapter(path)

    def load(self, path: Path | None) -> None:
        """The weights of a checkpoint's ``student`` folder; None (or a checkpoint taken
        before any training): the base model."""
        if path is not None and path.exists():
            self.model.load_adapter(path)
        else:
            self.model.reset_adapter()
        self._changed()

    def model_seconds(self) -> float | None:
        """Seconds of model compute in the served copies since the last call; None when
        nothing is served elsewhere."""
        return self.served.take_model_seconds() if self.served is not None else None

    def _changed(self) -> None:
        if self.served is not None:
            self.served.changed()


@dataclass
class TrialParts:
    """Everything the loop calls; built only by `ray_asd.assemble.assemble`.

    Attributes:
        plan: the trial resolved (strategy, columns, schedule).
        task: the trial's task.
        teacher: writes and answers new questions.
        student: answers, trains, saves and loads the student.
        rate: fills in the rater columns the plan names (None: it names none).
        log: one line of progress.
        checkpointed: called after every checkpoint with its folder and the metrics rows it
            adds (the runner reports them to Tune and MLflow).
    """

    plan: TrialPlan
    task: Task
    teacher: Teacher
    student: TrialStudent
    rate: Rate | None = None
    log: Callable[[str], None] = print
    checkpointed: Callable[[Path, list[dict[str, Any]]], None] = lambda folder, rows: None
