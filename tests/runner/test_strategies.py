"""Every strategy in one grid through `ray-asd run` (configs/smoke-strategies.yaml): reward
model actors on Ray Data, a judge pool, BADGE embeddings, a stochastic pairing; each trial's
cost per iteration in MLflow and in the end-of-run table."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient
from ray.util.state import list_actors

from ray_asd.experiment import load_experiment
from ray_asd.runner import Outcome, run_experiment
from ray_asd.runner.run import COST_COLUMNS, format_outcome

from .conftest import LocalCluster

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


@pytest.fixture(scope="module")
def every_strategy(
    ray_cluster: LocalCluster, mlflow_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Outcome:
    storage = tmp_path_factory.mktemp("strategies")
    config = load_experiment(CONFIG, [f"storage={storage}", f"tracking.uri={mlflow_server}"])
    return run_experiment(config)


def test_every_strategy_completes_and_logs_to_mlflow(
    every_strategy: Outcome, mlflow_server: str
) -> None:
    outcome = every_strategy
    assert not outcome.errors
    assert sorted(t.split("-")[0] for t in outcome.table["trial"]) == STRATEGIES
    assert (outcome.table["n_synthetic"] == 8).all()  # warm-up 4 + 1 iteration x 4
    client = MlflowClient(mlflow_server)
    experiment = client.get_experiment_by_name("smoke-strategies")
    runs = {r.data.tags["strategy"]: r for r in client.search_runs([experiment.experiment_id])}
    assert sorted(runs) == STRATEGIES
    for strategy, run in runs.items():
        assert run.info.status == "FINISHED", strategy
        metrics = run.data.metrics
        for name in ("selection_seconds", "seconds_rate", "rating_tokens_phase", "accuracy"):
            assert name in metrics, (strategy, name)
        # Teacher compute = generation + rating calls, at every step.
        history = {
            name: [m.value for m in client.get_metric_history(run.info.run_id, name)]
            for name in ("teacher_tokens", "generation_tokens", "rating_tokens")
        }
        assert history["teacher_tokens"] == [
            g + r
            for g, r in zip(history["generation_tokens"], history["rating_tokens"], strict=True)
        ]
        if strategy in JUDGED:
            assert metrics["rating_tokens"] > 0 and metrics["rating_calls_phase"] > 0
        else:
            assert metrics["rating_tokens"] == 0
    # The tiny judge never writes a rating: every answer was reminded once, then neutral.
    judge = runs["judge"].data.metrics
    assert judge["rating_unrated_phase"] == 8 and judge["rating_calls_phase"] == 16
    assert judge["score_std"] == 0.0  # all neutral


def test_the_judge_pool_and_reward_actors_ran(
    every_strategy: Outcome, ray_cluster: LocalCluster
) -> None:
    assert every_strategy.judge["cache_misses"] > 0
    actors = list_actors(detail=True, limit=10_000)
    assert any("RewardScorer" in a.class_name for a in actors)
    judges = [a for a in actors if a.name and "-judge-" in a.name]
    assert judges and all(a.class_name == "CompletionEngine" for a in judges)


def test_the_end_of_run_table_shows_each_strategy_s_cost(every_strategy: Outcome) -> None:
    table = every_strategy.table.set_index(every_strategy.table["trial"].str.split("-").str[0])
    for label in COST_COLUMNS.values():
        assert table[label].notna().all(), label
    judged = table.loc[sorted(JUDGED), "rating tok/iter"]
    assert (judged > 0).all()
    assert (table.drop(index=sorted(JUDGED))["rating tok/iter"] == 0).all()
    # random and static read no student output: their selection is the cheapest.
    assert table.loc["random", "select s/iter"] < table.loc["loss", "select s/iter"]
    printed = format_outcome(every_strategy)
    assert "select s/iter" in printed and "judge pool:" in printed
