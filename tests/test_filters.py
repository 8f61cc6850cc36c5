import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

import pytest

from ray_asd import filters
from ray_asd.filters import NoveltyIndex, RejectReason, normalise, reject_reason
from ray_asd.tasks import make_task

SEED = "Tom has 12 apples and buys 5 more. How many apples does he have now?"


def index_with(*texts: str, **kwargs) -> NoveltyIndex:
    novelty = NoveltyIndex(**kwargs)
    for text in texts:
        novelty.add(text)
    return novelty


def test_normalise() -> None:
    assert normalise("  Tom has 12 Apples!\nHow many?") == "tom has 12 apples how many"


def test_exact_duplicate_up_to_case_punctuation_and_space() -> None:
    novelty = index_with(SEED)
    assert novelty.check(
        "tom has 12 apples, and buys 5 more  how many apples does he have now"
    ) == (RejectReason.DUPLICATE)


def test_near_duplicate_one_word_changed() -> None:
    novelty = index_with(SEED)
    near = "Tom has 12 apples and buys 5 more. How many apples does he own now?"
    # 15 words, 13 trigrams each; "own" sits in the last two, so 11 are shared: 11 / (13 + 13 - 11).
    assert novelty.max_similarity(near) == pytest.approx(11 / 15)
    assert novelty.check(near) == RejectReason.NEAR_DUPLICATE
    assert index_with(SEED, threshold=0.8).check(near) is None


def test_new_numbers_in_the_same_frame_pass() -> None:
    variant = "Tom has 15 apples and buys 7 more. How many apples does he have now?"
    novelty = index_with(SEED)
    assert novelty.max_similarity(variant) == pytest.approx(7 / 19)
    assert novelty.check(variant) is None


def test_similarity_is_against_the_closest_indexed_question() -> None:
    novelty = index_with("A completely different question about trains.", SEED)
    assert novelty.max_similarity(SEED) == 1.0
    assert len(novelty) == 2
    assert NoveltyIndex().max_similarity(SEED) == 0.0


def test_short_texts_shorter_than_n() -> None:
    novelty = index_with("1 2 3 4")
    assert novelty.check("1 2 3 4") == RejectReason.DUPLICATE
    assert novelty.check("1 2 3 5") is None
    assert index_with("hi").max_similarity("hi") == 1.0


def lines_run(call: Callable[[], object]) -> int:
    """Lines of ray_asd/filters.py that ``call()`` executes: its work, whatever the clock."""
    count = 0

    def trace(frame: FrameType, event: str, arg: Any) -> Callable[..., Any] | None:
        nonlocal count
        if frame.f_code.co_filename != filters.__file__:
            return None  # no line events from other files
        count += event == "line"
        return trace

    sys.settrace(trace)
    try:
        call()
    finally:
        sys.settrace(None)
    return count


def test_lookup_scales_with_postings_not_with_index_size() -> None:
    def indexed(n: int) -> NoveltyIndex:
        return index_with(
            *(f"Question {i} about item {i * 7} costs {i * 3} dollars" for i in range(n))
        )

    def lookups(novelty: NoveltyIndex) -> Callable[[], None]:
        # Each query shares two trigrams ("about item 7i", "item 7i costs") with question i.
        return lambda: [novelty.check(f"What about item {i * 7} costs now") for i in range(100)]

    small, large = lines_run(lookups(indexed(200))), lines_run(lookups(indexed(2_000)))
    # The same postings are read in both: 10x the questions cost no more lines. A scan of
    # every indexed question would run at least one line per question and lookup.
    assert large == small
    assert small < 100 * 200


def test_bad_parameters() -> None:
    with pytest.raises(ValueError, match="threshold"):
        NoveltyIndex(threshold=0.0)


@pytest.mark.parametrize(
    ("question", "answer", "reason"),
    [
        (None, "#### 5", RejectReason.UNPARSABLE),
        ("  ", "#### 5", RejectReason.UNPARSABLE),
        ("What is 2 + 3?", None, RejectReason.UNPARSABLE),
        ("What is 2 + 3?", "It is five.", RejectReason.NO_FINAL_ANSWER),
        (SEED, "12 + 5 = 17\n#### 17", RejectReason.DUPLICATE),
        ("What is 2 + 3?", "2 + 3 = 5\n#### 5", None),
    ],
)
def test_reject_reasons_gsm8k(question, answer, reason) -> None:
    assert reject_reason(make_task("gsm8k"), question, answer, index_with(SEED)) == reason


def test_verifier_failure_game24() -> None:
    task = make_task("game24")
    novelty = index_with("1 1 4 6")
    assert (
        reject_reason(task, "2 3 4 5", "Answer: 2 * 3 * 4 * 5 = 24", novelty)
        == RejectReason.VERIFIER_FAILED
    )
    assert reject_reason(task, "2 3 4 5", "Answer: (5 + 3 - 2) * 4 = 24", novelty) is None
    assert (
        reject_reason(task, "1 1 4 6", "Answer: 4 * 6 * 1 * 1 = 24", novelty)
        == RejectReason.DUPLICATE
    )
