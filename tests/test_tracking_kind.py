"""The MLflow experiment as a user's UI meets it: tagged a training (finetuning) experiment,
new or made before the tag, and the link ray-asd prints opens its runs in the Model training
view (MLflow 3.17's UI otherwise opens on its GenAI overview of traces)."""

from __future__ import annotations

from pathlib import Path

from mlflow import MlflowClient

from ray_asd.tracking import prepare_experiment, runs_link, ui_command


def test_the_experiment_is_tagged_a_finetuning_experiment(sqlite_uri: str, tmp_path: Path) -> None:
    client = MlflowClient(sqlite_uri)
    older = client.create_experiment("older")  # as ray-asd made them before the tag
    assert prepare_experiment(sqlite_uri, "older", tmp_path) == older
    new = prepare_experiment(sqlite_uri, "new", tmp_path)
    for experiment_id in (older, new):
        assert client.get_experiment(experiment_id).tags["mlflow.experimentKind"] == "finetuning"


def test_the_printed_link_opens_the_runs_in_the_model_training_view() -> None:
    view = "#/experiments/7/runs?workflowType=machine_learning"
    assert runs_link("http://mlflow.local:5000/", "7") == f"http://mlflow.local:5000/{view}"
    assert runs_link("sqlite:////x/mlflow.db", "7") == f"http://127.0.0.1:5000/{view}"
    assert ui_command("sqlite:////x/mlflow.db", "7") == (
        f"mlflow ui --backend-store-uri sqlite:////x/mlflow.db, then open http://127.0.0.1:5000/{view}"
    )
    assert ui_command("https://mlflow.example", "7") == f"open https://mlflow.example/{view}"
