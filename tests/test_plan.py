"""A trial's plan: columns, producers and schedule from a config alone, and what it refuses."""

from __future__ import annotations

import pytest

from ray_asd.answers import STUDENT_COLUMNS
from ray_asd.columns import COLUMNS, CORRECT
from ray_asd.config_file import load_config
from ray_asd.errors import ConfigError
from ray_asd.plan import plan
from ray_asd.strategies import STRATEGIES


def test_every_student_column_has_its_function() -> None:
    student = {name for name, column in COLUMNS.items() if column.producer == "student"}
    assert set(STUDENT_COLUMNS) | {CORRECT} == student  # every answer pass grades: correct


def test_every_named_strategy_reads_registered_columns() -> None:
    for name in STRATEGIES:
        config = load_config(
            None,
            [
                f"strategy.name={name}",
                "judge.llm={backend: openai, model: m}",
                "reward.model=tiny:",
            ],
        )
        trial = plan(config)
        assert set(trial.student_columns) | set(trial.rater_columns) <= set(COLUMNS)


@pytest.mark.parametrize(
    ("strategy", "student", "rated", "answers", "judge"),
    [
        ("random", (), (), False, False),
        ("static", (), (), False, False),
        ("difficulty", (), (), False, False),  # a column of the seeds: nothing runs
        ("loss", ("answer_nll",), (), True, False),
        ("llm2llm", ("correct",), (), True, False),
        ("badge", ("grad_embedding",), (), True, False),
        ("judge", (), ("judge_rating",), True, True),
        ("lion", (), ("lion_gap",), True, True),
        ("reward", (), ("reward",), True, False),
    ],
)
def test_the_plan_names_the_columns_and_producers(
    strategy: str, student: tuple, rated: tuple, answers: bool, judge: bool
) -> None:
    config = load_config(
        None,
        [
            f"strategy.name={strategy}",
            "judge.llm={backend: openai, model: m}",
            "reward.model=tiny:",
        ],
    )
    trial = plan(config)
    assert (trial.student_columns, trial.rater_columns) == (student, rated)
    assert (trial.answers_seeds, trial.needs_judge) == (answers, judge)
    assert trial.needs_reward == (strategy == "reward")
    assert trial.schedule.upfront == (strategy == "static")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["strategy.name=judge"], "needs an LLM judge"),  # the oracle cannot judge
        (["strategy.name=reward"], "needs reward.model"),
        (["strategy.name=reward", "reward.model=no such/model/at all"], "reward.model"),
        (["strategy.name=nope"], "nope"),
        (["strategy.name=null"], "give a name or a scorer and a selector"),
    ],
)
def test_what_a_config_cannot_give_fails_before_anything_loads(
    overrides: list[str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        plan(load_config(None, overrides))


def test_the_schedule_owns_the_budget_rules() -> None:
    loss = plan(load_config(None, ["budget.iterations=3", "budget.per_iteration=4"])).schedule
    assert [loss.picks(t) for t in range(3)] == [4, 4, 4]
    static = plan(
        load_config(
            None,
            [
                "strategy.name=static",
                "budget.iterations=3",
                "budget.per_iteration=4",
                "budget.teacher_tokens=100",
            ],
        )
    ).schedule
    assert [static.picks(t) for t in range(3)] == [12, 0, 0]
    assert static.spent(100) and not static.spent(99)
    # Static made every call at t = 0: only that iteration can be stopped by the cap.
    assert static.stops_before(0, 100) and not static.stops_before(1, 10**6)
    assert not loss.spent(10**9) and not loss.stops_before(2, 10**9)  # no cap
    assert "T=3 x m=4 = 12 items" in loss.describe(64, 40)
