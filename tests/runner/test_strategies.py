"""Through `ray-asd run` (configs/smoke-strategies.yaml), the two trials that show what only Ray
shows: the judge pool's engines rating answers (judge) and the reward model on actors of its
own, taking turns with the student's (reward); each one's teacher compute in MLflow and its
cost per iteration in the end-of-run table. Every strategy of the grid is planned and selects
in-process in tests/strategies/test_smoke_grid.py (milliseconds, no Ray, no model)."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient

from ray_asd.experiment import load_experiment
from ray_asd.runner import Outcome, run_experiment
from ray_asd.runner.run import COST_COLUMNS, format_outcome

from .conftest import LocalCluster

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "smoke-strategies.yaml"
ON_RAY = ["judge", "reward"]  # a judged strategy and one rated by another model

pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture(scope="module")
def on_ray(
    ray_cluster: LocalCluster, mlflow_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Outcome:
    storage = tmp_path_factory.mktemp("strategies")
    overrides = [f"storage={storage}", f"tracking.uri={mlflow_server}"]
    config = load_experiment(CONFIG, [*overrides, f"grid.strategy=[{', '.join(ON_RAY)}]"])
    return run_experiment(config)


def test_the_trials_complete_and_log_their_teacher_compute_to_mlflow(
    on_ray: Outcome, mlflow_server: str
) -> None:
    outcome = on_ray
    assert not outcome.errors
    assert sorted(t.split("-")[0] for t in outcome.table["trial"]) == ON_RAY
    assert (outcome.table["n_synthetic"] == 8).all()  # warm-up 4 + 1 iteration x 4
    client = MlflowClient(mlflow_server)
    experiment = client.get_experiment_by_name("smoke-strategies")
    runs = {r.data.tags["strategy"]: r for r in client.search_runs([experiment.experiment_id])}
    assert sorted(runs) == ON_RAY
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
    # The reward model's ratings cost no teacher tokens; the judge's are teacher compute.
    assert runs["reward"].data.metrics["rating_tokens"] == 0
    judge = runs["judge"].data.metrics
    assert judge["rating_tokens"] > 0
    # The tiny judge never writes a rating: every answer was reminded once, then neutral.
    assert judge["rating_unrated_phase"] == 8 and judge["rating_calls_phase"] == 16
    assert judge["score_std"] == 0.0  # all neutral


def test_the_judge_pool_and_reward_actors_ran(on_ray: Outcome, ray_cluster: LocalCluster) -> None:
    assert on_ray.judge["cache_misses"] > 0
    actors = ray_cluster.actors()
    assert any("RewardScorer" in a.class_name for a in actors)
    judges = [a for a in actors if a.name and "-judge-" in a.name]
    assert judges and all(a.class_name == "CompletionEngine" for a in judges)


def test_the_end_of_run_table_shows_each_strategy_s_cost(on_ray: Outcome) -> None:
    table = on_ray.table.set_index(on_ray.table["trial"].str.split("-").str[0])
    for label in COST_COLUMNS.values():
        assert table[label].notna().all(), label
    assert table.loc["judge", "rating tok/iter"] > 0
    assert table.loc["reward", "rating tok/iter"] == 0
    printed = format_outcome(on_ray)
    assert "select s/iter" in printed and "judge pool:" in printed
