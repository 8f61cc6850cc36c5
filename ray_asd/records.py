"""The records every stage shares: what teacher calls cost (:class:`Spend`) and the synthetic
item with its provenance (:class:`Item`). Metrics, checkpoints and the report read these, so
a count is summed one way everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from typing import Any, Protocol


class Call(Protocol):
    """One teacher or judge call's cost, as backends report it (`Generated`, `Rating`)."""

    prompt_tokens: int
    completion_tokens: int
    calls: int
    cached: int
    retries: int
    error: str | None


@dataclass(frozen=True)
class Spend:
    """What LLM calls cost: tokens, requests and how they went. Added with ``+``.

    Attributes:
        prompt_tokens: tokens sent.
        completion_tokens: tokens generated.
        calls: requests made (a cached one included).
        cached: requests answered from the teacher cache.
        retries: transient failures the backend retried.
        failed: requests that failed for good.
        unrated: answers a judge never rated (they got its neutral rating).
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0
    cached: int = 0
    retries: int = 0
    failed: int = 0
    unrated: int = 0

    @property
    def tokens(self) -> int:
        """Teacher compute: the budget counts prompt and completion tokens alike."""
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Spend) -> Spend:
        return Spend(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    @classmethod
    def of(cls, calls: Iterable[Call], unrated: int = 0) -> Spend:
        """The cost of a batch of calls."""
        total = cls(unrated=unrated)
        for call in calls:
            total += cls(
                call.prompt_tokens,
                call.completion_tokens,
                call.calls,
                call.cached,
                call.retries,
                call.error is not None,
            )
        return total

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class Item:
    """One teacher output written from a picked seed, accepted by the filters or not.

    The JSON of ``items.jsonl`` is :meth:`to_json` (keys as named here); the analysis fields
    are set only on accepted items that `ray_asd.analysis` scored, and absent from the JSON
    otherwise.
    """

    id: str
    seed_id: str
    iteration: int  # -1: the warm-up
    attempt: int
    strategy: str
    teacher: str
    question: str | None
    answer: str | None
    final_answer: str | None
    prompt_tokens: int
    completion_tokens: int
    teacher_calls: int
    teacher_retries: int
    teacher_cached: int
    teacher_error: str | None
    accepted: bool
    reject_reason: str | None
    # Score fidelity (each iteration): the item scored as its seed was, by the same student.
    seed_score: float | None = None
    score: float | None = None
    student_correct: bool | None = None
    scorer: str | None = None
    # Ordering (the last iteration): the seed's score and the item answered by the first
    # and the final iteration's student.
    seed_score_first: float | None = None
    correct_first: bool | None = None
    seed_score_final: float | None = None
    correct_final: bool | None = None

    @property
    def spend(self) -> Spend:
        """What the teacher calls behind this item cost."""
        return Spend(
            self.prompt_tokens,
            self.completion_tokens,
            self.teacher_calls,
            self.teacher_cached,
            self.teacher_retries,
            self.teacher_error is not None,
        )

    def to_json(self) -> dict[str, Any]:
        record = asdict(self)
        return {k: v for k, v in record.items() if v is not None or k not in _ANALYSIS_FIELDS}

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> Item:
        """The item of a JSON record (``TypeError`` on a missing or unknown key: a damaged
        checkpoint)."""
        return cls(**{**_BEFORE_BACKENDS, **record})


# Keys that items of checkpoints older than the completion backends lack (counted as 0 then).
_BEFORE_BACKENDS: dict[str, Any] = {
    "teacher_calls": 0,
    "teacher_retries": 0,
    "teacher_cached": 0,
    "teacher_error": None,
}
_ANALYSIS_FIELDS = frozenset(
    {
        "seed_score",
        "score",
        "student_correct",
        "scorer",
        "seed_score_first",
        "correct_first",
        "seed_score_final",
        "correct_final",
    }
)


def spend_of(items: Iterable[Item]) -> Spend:
    """What the teacher calls behind ``items`` cost: the one sum of generation compute."""
    return sum((item.spend for item in items), Spend())
