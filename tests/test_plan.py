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


def bandit_of(arms: str) -> list[str]:
    return [f"strategy={{scorer: bandit, arms: {arms}}}"]


def test_a_bandit_plans_the_union_of_its_arms_columns() -> None:
    config = load_config(None, ["strategy={scorer: bandit, arms: [loss, reward, difficulty]}"])
    assert config.strategy.name == "bandit"  # named so, not after its parts
    trial = plan(
        load_config(None, [*bandit_of("[loss, reward, difficulty]"), "reward.model=tiny:"])
    )
    assert (trial.student_columns, trial.rater_columns) == (("answer_nll",), ("reward",))
    assert trial.needs_reward and not trial.schedule.upfront
    assert [arm.name for arm in trial.strategy.arms] == ["loss", "reward", "difficulty"]
    rule = trial.strategy.bandit
    assert rule is not None and (rule.gamma, rule.eta, rule.alpha, rule.window) == (
        0.2,
        1.0,
        0.05,
        16,
    )
    # A judge arm needs what a judge strategy needs: the oracle teacher cannot judge.
    with pytest.raises(ConfigError, match="strategy 'bandit' needs an LLM judge"):
        plan(load_config(None, bandit_of("[loss, judge]")))
    # A scorer arm pairs with the bandit's selector (default top_k).
    paired = plan(load_config(None, [*bandit_of("[wrong, random]"), "strategy.selector=softmax"]))
    assert [arm.selector_name for arm in paired.strategy.arms] == ["softmax", "uniform"]


@pytest.mark.parametrize(
    ("overrides", "line"),
    [
        (["strategy.arms=[loss, random]"], "config: strategy: arms: only a bandit"),
        (["strategy.bandit_eta=2"], "config: strategy: bandit_eta: only a bandit"),
        (
            ["strategy={scorer: bandit, arms: [loss, random], bandit_gamma: 0}"],
            "config: strategy.bandit_gamma: Input should be greater than 0",
        ),
    ],
)
def test_bandit_settings_without_a_bandit_or_out_of_range_are_one_line(
    overrides: list[str], line: str
) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(None, overrides)
    (only,) = str(error.value).splitlines()
    assert only.startswith(line)


@pytest.mark.parametrize(
    ("arms", "message"),
    [
        ("[loss, lss]", r"^strategy.arms\[1\]: unknown arm 'lss'.*did you mean 'loss'"),
        ("[static, loss]", r"^strategy.arms\[0\]: static picks its whole budget up front"),
        ("[loss]", r"^strategy.arms: a bandit needs two or more distinct arms"),
        ("[]", r"^strategy.arms: a bandit needs two or more distinct arms"),
    ],
)
def test_a_bandit_with_a_bad_arm_fails_before_anything_loads(arms: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as error:
        plan(load_config(None, bandit_of(arms)))
    assert "\n" not in str(error.value)
