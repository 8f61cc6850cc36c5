"""Filters every teacher output passes before it joins the synthetic set (DESIGN section 2).

Reasons, in the order they are checked: the output could not be parsed into a question and an
answer; the answer has no final answer the task can extract; the question repeats a seed or an
earlier synthetic question exactly or nearly; the task's verifier rejects the item. Every
rejection is kept with its reason, so nothing a teacher wrote is lost.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from enum import StrEnum

from ray_asd.tasks import Task


class RejectReason(StrEnum):
    TEACHER_ERROR = "teacher_error"  # a teacher request failed for good
    UNPARSABLE = "unparsable"
    NO_FINAL_ANSWER = "no_final_answer"
    DUPLICATE = "duplicate"
    NEAR_DUPLICATE = "near_duplicate"
    VERIFIER_FAILED = "verifier_failed"


_WORD = re.compile(r"\w+")


def normalise(text: str) -> str:
    """Lower case, punctuation dropped, whitespace collapsed: what "the same text" means here."""
    return " ".join(_WORD.findall(text.casefold()))


class NoveltyIndex:
    """Exact and near-duplicate detection over a growing set of questions.

    Near-duplicate means a Jaccard similarity of word n-gram sets at or above ``threshold``
    against any indexed question. An inverted index from n-gram to questions makes a lookup
    cost the postings of the query's n-grams, not a scan of every earlier question.

    Numbers count as words, so a variant with new numbers in the same sentence frame scores
    low (e.g. two changed numbers in a 14-word problem give about 0.3 with n = 3) and passes;
    a copy with a word or two changed scores high and is rejected.
    """

    def __init__(self, n: int = 3, threshold: float = 0.7) -> None:
        if n < 1 or not 0.0 < threshold <= 1.0:
            raise ValueError(
                f"need n >= 1 and 0 < threshold <= 1, got n={n}, threshold={threshold}"
            )
        self.n = n
        self.threshold = threshold
        self._exact: set[str] = set()
        self._sizes: list[int] = []
        self._postings: defaultdict[tuple[str, ...], list[int]] = defaultdict(list)

    def __len__(self) -> int:
        return len(self._sizes)

    def _grams(self, words: list[str]) -> set[tuple[str, ...]]:
        if len(words) < self.n:
            return {tuple(words)} if words else set()
        return {tuple(words[i : i + self.n]) for i in range(len(words) - self.n + 1)}

    def add(self, text: str) -> None:
        """Indexes ``text`` so later look-ups compare against it."""
        words = normalise(text).split()
        self._exact.add(" ".join(words))
        grams = self._grams(words)
        item = len(self._sizes)
        self._sizes.append(len(grams))
        for gram in grams:
            self._postings[gram].append(item)

    def max_similarity(self, text: str) -> float:
        """The highest Jaccard similarity of ``text`` to any indexed question (0 if none)."""
        grams = self._grams(normalise(text).split())
        if not grams:
            return 0.0
        shared = Counter(item for gram in grams for item in self._postings.get(gram, ()))
        return max(
            (count / (len(grams) + self._sizes[item] - count) for item, count in shared.items()),
            default=0.0,
        )

    def check(self, text: str) -> RejectReason | None:
        """DUPLICATE, NEAR_DUPLICATE, or None when ``text`` is new enough."""
        if normalise(text) in self._exact:
            return RejectReason.DUPLICATE
        if self.max_similarity(text) >= self.threshold:
            return RejectReason.NEAR_DUPLICATE
        return None


def reject_reason(
    task: Task, question: str | None, answer: str | None, novelty: NoveltyIndex
) -> RejectReason | None:
    """Why a teacher's (question, answer) must be rejected, or None to accept it.

    Does not add the question to ``novelty``: the caller does that for accepted items, so a
    rejected item never blocks a later, valid one.
    """
    if not question or not question.strip() or not answer or not answer.strip():
        return RejectReason.UNPARSABLE
    if task.extract(answer) is None:
        return RejectReason.NO_FINAL_ANSWER
    repeated = novelty.check(question)
    if repeated is not None:
        return repeated
    if task.verify is not None and not task.verify(question, answer):
        return RejectReason.VERIFIER_FAILED
    return None
