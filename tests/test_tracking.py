"""MLflow tracking: params, steps, idempotent logging, artifacts; sqlite and a real server."""

from pathlib import Path

import pytest
from mlflow import MlflowClient

from ray_asd.errors import ConfigError
from ray_asd.tracking import TrialRun, default_uri, flatten, prepare_experiment, ui_command

ROWS = [
    {"phase": "base", "iteration": -1, "n_synthetic": 0, "accuracy": 0.1},
    {"phase": "warmup", "iteration": -1, "n_synthetic": 4, "accuracy": 0.2, "note": "text"},
    {"phase": "iteration", "iteration": 0, "n_synthetic": 8, "accuracy": 0.3, "n_rejected": 1},
]


def test_flatten_names_nested_keys_with_dots() -> None:
    flat = flatten({"task": {"name": "arith", "params": {"max_ops": 3}}, "seed": 0, "x": {}})
    assert flat == {"task.name": "arith", "task.params.max_ops": "3", "seed": "0", "x": "{}"}


@pytest.fixture(params=["sqlite", "server"])
def uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "server":
        return request.getfixturevalue("mlflow_server")
    return default_uri(tmp_path)


def test_a_trial_run_logs_each_step_once(uri: str, tmp_path: Path) -> None:
    experiment = prepare_experiment(uri, f"tracking-{tmp_path.name}", tmp_path)
    assert prepare_experiment(uri, f"tracking-{tmp_path.name}", tmp_path) == experiment
    run = TrialRun.start(
        uri, experiment, "loss-tiny", {"strategy": "loss"}, {"task": {"name": "arith"}}
    )
    run.log_rows(ROWS[:2])
    # A restored trial: a new client for the same run re-sends everything it has.
    again = TrialRun(uri, run.run_id)
    again.log_rows(ROWS)
    (tmp_path / "items.jsonl").write_text('{"question": "q"}\n')
    again.log_artifact(tmp_path / "items.jsonl")
    again.finish()

    client = MlflowClient(uri)
    history = client.get_metric_history(run.run_id, "accuracy")
    assert [(m.step, m.value) for m in history] == [(-2, 0.1), (-1, 0.2), (0, 0.3)]
    assert [m.step for m in client.get_metric_history(run.run_id, "n_rejected")] == [0]
    stored = client.get_run(run.run_id)
    assert stored.info.status == "FINISHED"
    assert stored.data.params["task.name"] == "arith"
    assert stored.data.tags["strategy"] == "loss"
    assert "note" not in stored.data.metrics  # only numbers are metrics
    downloaded = client.download_artifacts(run.run_id, "items.jsonl", str(tmp_path / "back"))
    assert Path(downloaded).read_text() == '{"question": "q"}\n'


def test_a_deleted_experiment_is_a_config_error(tmp_path: Path) -> None:
    uri = default_uri(tmp_path)
    MlflowClient(uri).delete_experiment(prepare_experiment(uri, "gone", tmp_path))
    with pytest.raises(ConfigError, match="'gone' is deleted"):
        prepare_experiment(uri, "gone", tmp_path)


def test_ui_command_names_the_store() -> None:
    assert (
        ui_command("sqlite:////x/mlflow.db")
        == "mlflow ui --backend-store-uri sqlite:////x/mlflow.db"
    )
    assert ui_command("http://127.0.0.1:5000") == "open http://127.0.0.1:5000"
