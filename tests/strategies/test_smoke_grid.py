"""Every strategy of configs/smoke-strategies.yaml planned and selecting in-process, on a scored
seed table made to its plan: no Ray, no model. What only Ray shows (the judge pool, the reward
model's actors) runs in tests/runner/test_strategies.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ray_asd.columns import CORRECT, GRAD_EMBEDDING
from ray_asd.experiment import cells, load_experiment
from ray_asd.plan import TrialPlan, plan

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "smoke-strategies.yaml"
STRATEGIES = [
    "badge",
    "judge",
    "lion",
    "llm2llm",
    "loss",
    "loss+softmax",
    "loss_gt",
    "random",
    "reward",
    "static",
]
JUDGED = {"judge", "lion"}


def grid_plans() -> dict[str, TrialPlan]:
    config = load_experiment(CONFIG)
    return {cell.name.split("-")[0]: plan(cell.config) for cell in cells(config, str(CONFIG))}


def scored_seeds(columns: tuple[str, ...], n: int, seed: int = 0) -> pd.DataFrame:
    """A scored seed table holding exactly ``columns``, as the scoring stage fills them."""
    rng = np.random.default_rng(seed)
    table = pd.DataFrame({"id": [f"s{i}" for i in range(n)]})
    for name in columns:
        if name == CORRECT:
            table[name] = rng.random(n) < 0.5
        elif name == GRAD_EMBEDDING:
            table[name] = list(rng.normal(size=(n, 4)).astype(np.float32))
        else:
            table[name] = rng.normal(size=n)
    return table


def test_each_strategy_s_plan_asks_its_producers_for_what_its_selection_reads() -> None:
    plans = grid_plans()
    assert sorted(plans) == STRATEGIES
    for name, trial in plans.items():
        columns = trial.student_columns + trial.rater_columns
        schedule = trial.schedule
        m = schedule.picks(0)
        table = scored_seeds(columns, n=trial.config.seeds.n)
        picks = trial.strategy.select(table, m, np.random.default_rng(0))
        whole_budget = schedule.per_iteration * schedule.iterations  # static's, at t = 0
        assert len(picks) == m == (whole_budget if name == "static" else schedule.per_iteration)
        if not trial.strategy.upfront:
            assert len(set(picks.tolist())) == m, name  # distinct seeds within an iteration
        for missing in columns:  # every column the plan produces is one the selection reads
            with pytest.raises(ValueError, match=rf"needs column\(s\) \['{missing}'\]"):
                trial.strategy.select(table.drop(columns=missing), m, np.random.default_rng(0))


def test_only_the_judged_strategies_need_the_judge_and_only_reward_the_reward_model() -> None:
    plans = grid_plans()
    assert {name for name, p in plans.items() if p.needs_judge} == JUDGED
    assert {name for name, p in plans.items() if p.needs_reward} == {"reward"}
    # random and static read nothing from the student: no answering pass before their
    # selection, the cheapest there is (a bound on work, not a comparison of seconds).
    assert {name for name, p in plans.items() if not p.answers_seeds} == {"random", "static"}
    assert plans["static"].strategy.upfront and not plans["random"].strategy.upfront
