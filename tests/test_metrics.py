"""The one metrics-row function, on hand-built inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ray_asd import metrics
from ray_asd.metrics import Generation, Selection, Stages
from ray_asd.records import Item, Spend
from tests.test_records import RECORD


def item(i: int, accepted: bool = True, reason: str | None = None) -> Item:
    return Item.from_json(
        {**RECORD, "id": f"t0-{i}", "accepted": accepted, "reject_reason": reason}
    )


def test_stages_sum_the_time_of_each_name() -> None:
    stages = Stages()
    for _ in range(3):
        with stages("train"):
            pass
    with stages("eval"):
        pass
    assert list(stages.seconds) == ["train", "eval"] and all(
        s >= 0 for s in stages.seconds.values()
    )


def test_the_base_row_holds_accuracy_and_time_only() -> None:
    stages = Stages({"eval": 2.5})
    row = metrics.row("base", -1, 0, {"accuracy": 0.25}, stages)
    assert row == {
        "phase": "base",
        "iteration": -1,
        "n_synthetic": 0,
        "accuracy": 0.25,
        "seconds_eval": 2.5,
    }


def test_an_iteration_row_counts_teacher_compute_cumulative_and_per_phase() -> None:
    earlier, new = [item(0), item(1)], [item(2), item(3, False, "duplicate")]
    rating, rating_phase = Spend(100, 10, calls=4, unrated=1), Spend(50, 5, calls=2, unrated=1)
    picked = pd.DataFrame({"id": ["a", "b"], "difficulty": [3, 1]})
    scored = pd.DataFrame({"id": ["a", "b", "c"], "correct": [True, False, False]})
    stages = Stages({"answer": 1.0, "rate": 2.0, "select": 0.5, "generate": 4.0, "eval": 1.0})
    row = metrics.row(
        "iteration",
        0,
        3,
        {"accuracy": 0.5},
        stages,
        generation=Generation(new, earlier + new, rating, rating_phase),
        train={"steps": 2},
        selection=Selection(picked, np.array([1.0, 3.0, 2.0]), scored),
        analysis=Spend(7, 3, calls=1),
        model_seconds=0.75,
    )
    each = RECORD["prompt_tokens"] + RECORD["completion_tokens"]  # 42 per item
    assert row["teacher_tokens"] == 4 * each + 110 and row["generation_tokens"] == 4 * each
    assert row["teacher_tokens_phase"] == 2 * each + 55
    assert row["teacher_prompt_tokens"] == 4 * RECORD["prompt_tokens"] + 100
    assert row["teacher_calls"] == 4 * RECORD["teacher_calls"] + 4
    assert (row["n_new"], row["n_rejected"], row["rejected_duplicate"]) == (1, 1, 1)
    assert (row["rating_calls_phase"], row["rating_unrated_phase"]) == (2, 1)
    assert row["selection_seconds"] == 3.5  # answer + rate + select
    assert (row["picks_difficulty_1"], row["picks_difficulty_3"]) == (1, 1)
    assert row["score_mean"] == 2.0 and row["seed_accuracy"] == 1 / 3
    assert (row["analysis_tokens_phase"], row["analysis_calls_phase"]) == (10, 1)
    assert row["train_steps"] == 2 and row["seconds_scoring_model"] == 0.75


def test_a_strategy_without_scores_records_no_score_statistics() -> None:
    picked = pd.DataFrame({"id": ["a"]})
    row = metrics.row(
        "iteration", 0, 1, {"accuracy": 0.0}, Stages(), selection=Selection(picked, None, picked)
    )
    assert "score_mean" not in row and "seed_accuracy" not in row


def test_accuracy_per_difficulty() -> None:
    answers = pd.DataFrame({"correct": [True, False, True, True], "difficulty": [1, 1, 2, 2]})
    assert metrics.accuracy(answers) == {
        "accuracy": 0.75,
        "accuracy_difficulty_1": 0.5,
        "accuracy_difficulty_2": 1.0,
    }


def test_a_bandit_row_holds_its_columns_and_its_measuring_counts_as_selection() -> None:
    picked = pd.DataFrame({"id": ["a", "b"]})
    columns = {"bandit_share_loss": 0.25, "bandit_picks_loss": 2, "bandit_reward_loss": 1.0}
    stages = Stages({"answer": 1.0, "select": 0.5, "progress": 2.0, "train": 9.0})
    row = metrics.row(
        "iteration",
        0,
        2,
        {"accuracy": 0.0},
        stages,
        selection=Selection(picked, None, picked, np.array([0, 0])),
        bandit=columns,
    )
    assert row.items() >= columns.items()
    assert row["selection_seconds"] == 3.5  # answer + select + the NLL before and after
    assert row["seconds_progress"] == 2.0
