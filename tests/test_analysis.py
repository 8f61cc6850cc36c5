"""The analyses' scorer: the trial's own where it has one."""

from __future__ import annotations

from ray_asd.analysis import item_strategy
from ray_asd.config import TrialConfig
from ray_asd.strategies import compose, compose_bandit, make_strategy
from ray_asd.strategies.bandit import Exp3S


def test_strategies_without_a_scorer_of_their_own_are_analysed_by_analysis_scorer() -> None:
    config = TrialConfig()
    bandit = compose_bandit(
        ["loss", "random"],
        Exp3S(gamma=0.2, eta=1.0, alpha=0.05, window=16),
        name="bandit",
        selector="top_k",
    )
    for strategy in (make_strategy("random"), make_strategy("static"), bandit):
        assert item_strategy(strategy, config).scorer_name == config.analysis.scorer
    loss_gt = compose("loss_gt", "top_k")
    assert item_strategy(loss_gt, config) is loss_gt
