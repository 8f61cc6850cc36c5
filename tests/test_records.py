"""The shared records: what calls cost and the synthetic item."""

from __future__ import annotations

import pytest

from ray_asd.records import Item, Spend, spend_of
from ray_asd.teacher import Generated

RECORD = {
    "id": "t0-0",
    "seed_id": "s1",
    "iteration": 0,
    "attempt": 1,
    "strategy": "loss",
    "teacher": "oracle",
    "question": "Start with 2. Add 3. What is the result?",
    "answer": "2 + 3 = 5.\n#### 5",
    "final_answer": "5",
    "prompt_tokens": 30,
    "completion_tokens": 12,
    "teacher_calls": 2,
    "teacher_retries": 1,
    "teacher_cached": 1,
    "teacher_error": None,
    "accepted": True,
    "reject_reason": None,
}


def test_spends_add_field_by_field() -> None:
    total = Spend(1, 2, 3, 4, 5, 6, 7) + Spend(10, 20, 30, 40, 50, 60, 70)
    assert total == Spend(11, 22, 33, 44, 55, 66, 77)
    assert total.tokens == 33
    calls = [Generated("q", "a", 5, 1, calls=1), Generated(None, None, 0, 0, 1, 2, error="timeout")]
    assert Spend.of(calls, unrated=1) == Spend(
        prompt_tokens=5, completion_tokens=1, calls=2, retries=2, failed=1, unrated=1
    )


def test_an_item_round_trips_its_json_without_the_analysis_fields_it_lacks() -> None:
    item = Item.from_json(RECORD)
    assert item.to_json() == RECORD  # items.jsonl lines are unchanged by the record
    item.score, item.seed_score = 1.5, 2.0
    assert item.to_json() == {**RECORD, "score": 1.5, "seed_score": 2.0}
    assert Item.from_json(item.to_json()) == item


def test_an_item_is_charged_its_teacher_calls() -> None:
    item = Item.from_json(RECORD)
    assert item.spend == Spend(30, 12, calls=2, cached=1, retries=1)
    failed = Item.from_json({**RECORD, "teacher_error": "HTTP 500", "accepted": False})
    assert spend_of([item, failed]) == Spend(60, 24, calls=4, cached=2, retries=2, failed=1)


def test_a_record_with_an_unknown_key_is_damage() -> None:
    with pytest.raises(TypeError):
        Item.from_json({**RECORD, "surprise": 1})


def test_an_item_of_a_checkpoint_older_than_the_teacher_counters_loads() -> None:
    older = {k: v for k, v in RECORD.items() if not k.startswith("teacher_") or k == "teacher"}
    item = Item.from_json(older)
    assert item.spend == Spend(30, 12)  # no calls, retries or failures recorded then
    with pytest.raises(TypeError):
        Item.from_json({k: v for k, v in RECORD.items() if k != "seed_id"})
