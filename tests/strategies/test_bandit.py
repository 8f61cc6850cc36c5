"""The bandit's pure rule (Exp3.S with Graves et al.'s reward rescaling) on tiny arrays, and
its composition from arm names."""

from __future__ import annotations

import numpy as np
import pytest

from ray_asd.errors import ConfigError
from ray_asd.strategies import compose_bandit
from ray_asd.strategies.bandit import BanditState, Exp3S

RULE = Exp3S(gamma=0.2, eta=1.0, alpha=0.05, window=16)


def test_the_policy_mixes_the_softmax_with_uniform_exploration() -> None:
    assert RULE.policy((0.0, 0.0, 0.0, 0.0)).tolist() == pytest.approx([0.25] * 4)
    policy = RULE.policy((0.0, -50.0))  # a hopeless arm keeps gamma / N of the picks
    assert policy.tolist() == pytest.approx([0.9, 0.1])
    assert RULE.policy((1e6, 0.0)).sum() == pytest.approx(1.0)  # no overflow


def test_the_split_hands_out_m_picks_in_the_policy_shares() -> None:
    rng = np.random.default_rng(0)
    counts = np.array([RULE.split((0.0, -50.0), 10, rng) for _ in range(2000)])
    assert (counts.sum(axis=1) == 10).all()
    assert counts.mean(axis=0).tolist() == pytest.approx([9.0, 1.0], abs=0.1)


def test_rewards_are_rescaled_by_the_20th_and_80th_percentiles() -> None:
    # Relative values 0.5, 1.5 (the mean magnitude is 2): q_lo 0.7 and q_hi 1.3 of the window.
    rewards, history = RULE.rescale(np.array([1.0, 3.0, np.nan]), ())
    assert rewards[:2].tolist() == [-1.0, 1.0] and np.isnan(rewards[2])
    assert history == (0.5, 1.5)  # the unobserved arm adds nothing
    # Between the percentiles the map is linear: 1.0 is midway between 0.7 and 1.3.
    rewards, _ = RULE.rescale(np.array([1.0, 1.0]), (0.4, 1.6))  # window 0.4 1.6 1 1
    lo, hi = np.quantile([0.4, 1.6, 1.0, 1.0], [0.2, 0.8])
    assert rewards.tolist() == pytest.approx([2 * (1.0 - lo) / (hi - lo) - 1] * 2)


def test_the_rescaling_is_blind_to_the_units_and_the_shrinking_scale_of_progress() -> None:
    first, history = RULE.rescale(np.array([4.0, 2.0]), ())
    later, _ = RULE.rescale(np.array([0.04, 0.02]), history)  # the student learnt: 100x less
    assert first.tolist() == later.tolist() == [1.0, -1.0]


def test_equal_progress_pays_nothing_and_the_window_is_bounded() -> None:
    rewards, history = RULE.rescale(np.array([2.0, 2.0]), ())
    assert rewards.tolist() == [0.0, 0.0]
    for _ in range(20):
        _, history = RULE.rescale(np.array([1.0, 2.0, 3.0]), history)
    assert len(history) == RULE.window
    rewards, history = RULE.rescale(np.array([0.0, 0.0]), history)  # nothing learnt at all
    assert rewards.tolist() == [-1.0, -1.0]  # below every recent value
    assert RULE.rescale(np.array([np.nan, np.nan]), (1.0,))[1] == (1.0,)


def test_an_update_moves_weight_to_the_arm_that_taught_most() -> None:
    state = BanditState.start(3)
    choices = np.array([0, 0, 1, 1, 2, 2])
    new, rewards = RULE.update(state, choices, np.array([3.0, 1.0, 1.0]))
    assert rewards[0] == 1.0 and rewards[1] == rewards[2] < 0
    policy = RULE.policy(new.weights)
    assert policy[0] > 1 / 3 > policy[1] == pytest.approx(policy[2])
    assert max(new.weights) == 0.0  # normalised: the policy is shift-invariant
    assert new.choices == ((0, 0, 1, 1, 2, 2),) and len(new.history) == 3


def test_the_update_is_importance_weighted_and_shares_weight() -> None:
    # 4 picks at probability 1/3 each: arm 0 drew 3 (paid -1), arm 1 drew 1 (paid +1), arm 2
    # none. Exp3's estimate is (n_i / m) r_i / pi_i: -2.25, 0.75 and 0.
    rule = Exp3S(gamma=0.2, eta=1.0, alpha=0.0, window=16)
    new, rewards = rule.update(
        BanditState.start(3), np.array([0, 0, 0, 1]), np.array([1.0, 3.0, np.nan])
    )
    assert rewards[:2].tolist() == [-1.0, 1.0]
    assert new.weights == pytest.approx((-3.0, 0.0, -0.75))  # shifted so the top is 0

    # alpha passes weight back, so a losing arm's log-weight gap stays under
    # log((1 - alpha) / alpha) (Exp3.S); without it the gap grows every iteration.
    def gap_after_30(alpha: float) -> float:
        rule, state = Exp3S(0.2, 1.0, alpha, 16), BanditState.start(2)
        for _ in range(30):
            state, _ = rule.update(state, np.array([0, 1]), np.array([2.0, 1.0]))
        return state.weights[0] - state.weights[1]

    assert 0 < gap_after_30(0.3) < np.log(0.7 / 0.3) < 10 < gap_after_30(0.0)


def test_an_arm_without_picks_is_not_paid() -> None:
    state = BanditState.start(3)
    new, rewards = RULE.update(state, np.array([0, 0, 1]), np.array([2.0, 1.0, np.nan]))
    assert np.isnan(rewards[2])
    # Arm 2 only receives the weight alpha shares; it moves as much as the others' mean.
    assert RULE.policy(new.weights)[2] < RULE.policy(new.weights)[0]


def test_the_state_round_trips_through_json() -> None:
    state, _ = RULE.update(BanditState.start(2), np.array([0, 1, 1]), np.array([0.5, 0.25]))
    assert BanditState.from_json(state.to_json()) == state


@pytest.mark.parametrize(
    ("gamma", "eta", "alpha", "window"),
    [
        (0.0, 1.0, 0.0, 2),
        (1.5, 1.0, 0.0, 2),
        (0.1, 0.0, 0.0, 2),
        (0.1, 1.0, 1.0, 2),
        (0.1, 1, 0, 1),
    ],
)
def test_parameters_out_of_range_are_refused(
    gamma: float, eta: float, alpha: float, window: int
) -> None:
    with pytest.raises(ValueError, match="must be"):
        Exp3S(gamma, eta, alpha, window)


def test_arms_compose_from_strategy_and_scorer_names() -> None:
    bandit = compose_bandit(
        ["loss", "loss_gt", "llm2llm", "random", "reward"], RULE, name="b", selector="softmax"
    )
    assert [arm.name for arm in bandit.arms] == ["loss", "loss_gt", "llm2llm", "random", "reward"]
    # The presets keep their selectors; a name that is only a scorer pairs with `selector`.
    assert [arm.selector_name for arm in bandit.arms] == ["top_k"] * 3 + ["uniform", "top_k"]
    wrong = compose_bandit(["wrong", "none"], RULE, name="b", selector="softmax")
    assert [arm.selector_name for arm in wrong.arms] == ["softmax", "softmax"]
    # Its scorer reads the union of the arms' columns, once each, so the plan computes them.
    assert bandit.scorer.columns == ("answer_nll", "reference_nll", "correct", "reward")
    assert (bandit.scorer_name, bandit.selector_name, bandit.bandit) == ("bandit", "exp3s", RULE)
    assert not bandit.blind and not bandit.upfront


@pytest.mark.parametrize(
    ("arms", "message"),
    [
        (["loss", "lss"], r"strategy.arms\[1\]: unknown arm 'lss'.*did you mean 'loss'"),
        (["static", "loss"], r"strategy.arms\[0\]: static picks its whole budget up front"),
        (["loss", "loss"], "two or more distinct arms"),
        (["loss"], "two or more distinct arms"),
        (["bandit", "loss"], r"strategy.arms\[0\]: unknown arm 'bandit'"),
    ],
)
def test_a_bad_arm_is_one_config_error_line(arms: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as error:
        compose_bandit(arms, RULE, name="b", selector="top_k")
    assert "\n" not in str(error.value)
