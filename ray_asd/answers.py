"""The student's answers to a table of questions, and the student columns computed from them.

Each student column of `ray_asd.columns` has its function here; ``answer_table`` computes the
ones asked for. In the trial's process (`ray_asd.parts`) and on the runner's scoring actors;
the student is the trained model itself or a vLLM engine serving its adapter
(:class:`EngineAnswers`, ``student.backend: vllm``).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from ray_asd.columns import ANSWER_NLL, CORRECT, GRAD_EMBEDDING, REFERENCE_NLL
from ray_asd.config import TrialConfig
from ray_asd.strategies.scorers import normalise_nll
from ray_asd.tasks import Task

if TYPE_CHECKING:
    from ray_asd.models.causal_lm import Generation
    from ray_asd.student.protocol import StudentModel
    from ray_asd.student.vllm_engine import AdapterVersion, VllmStudent


class Answerer(Protocol):
    """What an answer pass reads of a student: a `StudentModel`, or a vLLM engine under one
    adapter version (`ray_asd.student.vllm_engine.BoundStudent`)."""

    def answer(
        self, prompts: list[str], *, max_new_tokens: int, batch_size: int
    ) -> list[Generation]: ...

    def nll(
        self,
        prompts: list[str],
        answers: list[str],
        *,
        batch_size: int,
        reduction: str = "mean",
        add_eos: bool = False,
    ) -> np.ndarray: ...

    def count_tokens(self, texts: list[str]) -> list[int]: ...

    def grad_embeddings(
        self, prompts: list[str], answers: list[str], *, batch_size: int
    ) -> np.ndarray: ...


def graded_nll(
    config: TrialConfig, student: Answerer, prompts: list[str], answers: list[str]
) -> list[float]:
    """The NLL of each answer plus the EOS that ends it under the student, teacher-forced,
    normalised by ``loss_normalisation`` (default ``mean``: per token, the paper's)."""
    totals = student.nll(
        prompts, answers, batch_size=config.student.batch_size, reduction="sum", add_eos=True
    )
    lengths = [n + 1 for n in student.count_tokens(answers)]  # + 1: the EOS add_eos scores
    how = config.loss_normalisation
    return [
        normalise_nll(total, n, a, how)
        for total, n, a in zip(totals, lengths, answers, strict=True)
    ]


@dataclass(frozen=True)
class AnswerPass:
    """One answer pass over a table: what its student columns are computed from."""

    config: TrialConfig
    student: Answerer
    prompts: list[str]
    graded: list[str]  # the answers cut after their final answer, as the checker reads them
    table: pd.DataFrame


def _answer_nll(answered: AnswerPass) -> list[float]:
    # The loss of exactly what is graded: the cut answer and its stop token, not the
    # rambling a small model writes after "#### 14" (which the checker never sees).
    return graded_nll(answered.config, answered.student, answered.prompts, answered.graded)


def _reference_nll(answered: AnswerPass) -> list[float]:
    references = [" " + a for a in answered.table["answer"]]
    return graded_nll(answered.config, answered.student, answered.prompts, references)


def _grad_embedding(answered: AnswerPass) -> list[Any]:
    # The answer as graded (cut after its final answer) plus EOS, as the NLLs.
    batch_size = answered.config.student.batch_size
    return list(
        answered.student.grad_embeddings(answered.prompts, answered.graded, batch_size=batch_size)
    )


# A student column's values, one per row of the pass's table.
StudentColumn = Callable[[AnswerPass], list[Any]]
STUDENT_COLUMNS: dict[str, StudentColumn] = {
    ANSWER_NLL: _answer_nll,
    REFERENCE_NLL: _reference_nll,
    GRAD_EMBEDDING: _grad_embedding,
}
# Every answer pass grades the answers, so `correct` (also a student column) has no function.


def answer_table(
    config: TrialConfig,
    task: Task,
    student: Answerer,
    table: pd.DataFrame,
    columns: tuple[str, ...] = (),
) -> pd.DataFrame:
    """The student's answers to a table's questions: the rows plus ``student_answer`` (cut
    after its final answer, as graded), ``answer_tokens`` (generated), ``correct`` and each
    student column named in ``columns`` (others are left to their producers)."""
    prompts = [task.prompt(q) for q in table["question"]]
    generations = student.answer(
        prompts, max_new_tokens=config.student.max_new_tokens, batch_size=config.student.batch_size
    )
    texts = [task.cut_after_final(g.text) for g in generations]
    result = table.assign(
        student_answer=texts,
        answer_tokens=[g.n_tokens for g in generations],
        **{
            CORRECT: [
                task.is_correct(q, a, r)
                for q, a, r in zip(table["question"], texts, table["answer"], strict=True)
            ]
        },
    )
    answered = AnswerPass(config, student, prompts, texts, table)
    for name, compute in STUDENT_COLUMNS.items():
        if name in columns:
            result[name] = compute(answered)
    return result


class EngineAnswers:
    """Seed and test answers from a vLLM student engine in this process (``student.backend:
    vllm`` in ``ray-asd trial``; a `ray_asd.parts.ServedAnswers`). The trial's model trains;
    after each change its adapter is saved to a new folder and served as a new version, so
    the old one is never answered again.

    Args:
        config: the trial's config.
        task: its task.
        engine: the engine (its base model is the trial's student).
        model: the trial's model, whose adapter is served.
        label: names the adapter versions (``trial-v1``, ...).
    """

    def __init__(
        self,
        config: TrialConfig,
        task: Task,
        engine: VllmStudent,
        model: StudentModel,
        label: str = "trial",
    ) -> None:
        self.config, self.task, self.label = config, task, label
        self.engine, self.model = engine, model
        self._folder = tempfile.TemporaryDirectory(prefix="ray-asd-adapters-")
        self._saves = 0
        self._version: AdapterVersion | None = None
        self._stale = True

    def __call__(self, table: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
        if self._stale:
            self._refresh()
        student = self.engine.bind(self._version)
        return answer_table(self.config, self.task, student, table, columns)

    def changed(self) -> None:
        self._stale = True

    def take_model_seconds(self) -> float:
        return self.engine.take_model_seconds()

    def _refresh(self) -> None:
        """Serve the model's current adapter (None: the base model) as a new version."""
        old, self._version = self._version, None
        if self.model.has_adapter:
            self._saves += 1
            path = Path(self._folder.name) / f"v{self._saves}"
            self.model.save_adapter(path)
            self._version = self.engine.register(path, self.label)
        if old is not None:  # served already (read at its first request): never asked again
            shutil.rmtree(old.path, ignore_errors=True)
        self._stale = False
