"""The student's answers to a table of questions, and the student columns computed from them.

Each student column of `ray_asd.columns` has its function here; ``answer_table`` computes the
ones asked for. In the trial's process (`ray_asd.parts`) and on the runner's scoring actors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from ray_asd.columns import ANSWER_NLL, CORRECT, GRAD_EMBEDDING, REFERENCE_NLL
from ray_asd.config import TrialConfig
from ray_asd.strategies.scorers import normalise_nll
from ray_asd.tasks import Task

if TYPE_CHECKING:
    from ray_asd.student.protocol import StudentModel


def graded_nll(
    config: TrialConfig, student: StudentModel, prompts: list[str], answers: list[str]
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
    student: StudentModel
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
    student: StudentModel,
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
