"""The vocabulary of the scored seed table: every column a scorer can read, registered once with
the producer that computes it.

Scorers read columns, never models (as in baal). A trial's plan (`ray_asd.plan`) asks which
columns its scorer reads and so which producers must run before scoring:

- ``seeds``: the seed table itself (the task's own column, e.g. difficulty): nothing runs;
- ``student``: the student answers every seed (`ray_asd.answers`); every answer pass also
  gives ``correct``;
- ``reward``: a reward model rates the student's answers (`ray_asd.raters`);
- ``judge``: an LLM judge rates them; ``lion``: the judge rates the teacher's answer to each
  seed and the student's (both charged as teacher compute).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Producer = Literal["seeds", "student", "reward", "judge", "lion"]


@dataclass(frozen=True)
class Column:
    """A column of the scored seed table.

    Attributes:
        name: the column's name in the table.
        producer: what computes it (see the module docstring).
        doc: what it holds.
    """

    name: str
    producer: Producer
    doc: str

    @property
    def judged(self) -> bool:
        """Its values are an LLM judge's ratings (the judge must be an LLM, its calls paid)."""
        return self.producer in ("judge", "lion")

    @property
    def rated(self) -> bool:
        """A model other than the student computes it, from the student's answers."""
        return self.producer in ("reward", "judge", "lion")


ANSWER_NLL = "answer_nll"
REFERENCE_NLL = "reference_nll"
CORRECT = "correct"
GRAD_EMBEDDING = "grad_embedding"
DIFFICULTY = "difficulty"
REWARD = "reward"
JUDGE_RATING = "judge_rating"
LION_GAP = "lion_gap"

COLUMNS: dict[str, Column] = {
    column.name: column
    for column in (
        Column(ANSWER_NLL, "student", "NLL of the student's own greedy answer, as graded"),
        Column(REFERENCE_NLL, "student", "NLL of the reference answer under the student"),
        Column(CORRECT, "student", "the task's checker on the student's answer"),
        Column(GRAD_EMBEDDING, "student", "BADGE: last-layer gradient embedding of its answer"),
        Column(DIFFICULTY, "seeds", "the seed's difficulty, where the task knows it"),
        Column(REWARD, "reward", "a reward model's score of (question, student answer)"),
        Column(JUDGE_RATING, "judge", "an LLM judge's 1-10 rating of the student's answer"),
        Column(LION_GAP, "lion", "the judge's rating of the teacher's answer minus the student's"),
    )
}


def column(name: str) -> Column:
    """The registered column ``name``.

    Raises:
        KeyError: an unregistered column (a scorer reading a column nothing produces).
    """
    try:
        return COLUMNS[name]
    except KeyError:
        raise KeyError(f"column {name!r} is not registered in ray_asd.columns") from None
