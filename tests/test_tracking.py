"""MLflow tracking: params, steps, idempotent logging, artifacts; sqlite and a real server,
also behind a relay that goes down (a tracking outage as the client sees it)."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric

from ray_asd import tracking
from ray_asd.errors import ConfigError
from ray_asd.redact import MASK
from ray_asd.tracking import (
    MAX_PARAM,
    RETRY_SECONDS,
    TrialRun,
    client_of,
    flatten,
    flattened,
    leaves,
    nest,
    prepare_experiment,
    ui_command,
)
from tests.helpers.relay import Relay

ROWS = [
    {"phase": "base", "iteration": -1, "n_synthetic": 0, "accuracy": 0.1},
    {"phase": "warmup", "iteration": -1, "n_synthetic": 4, "accuracy": 0.2, "note": "text"},
    {"phase": "iteration", "iteration": 0, "n_synthetic": 8, "accuracy": 0.3, "n_rejected": 1},
]


def test_flatten_names_nested_keys_with_dots() -> None:
    flat = flatten({"task": {"name": "arith", "params": {"max_ops": 3}}, "seed": 0, "x": {}})
    assert flat == {"task.name": "arith", "task.params.max_ops": "3", "seed": "0", "x": "{}"}
    assert flattened(flat) and not flattened({"task": {"name": "arith"}, "name": "e"})


def test_leaves_keep_their_values_and_nest_undoes_them() -> None:
    config = {"name": "2024", "grid": {"strategy": ["loss" * 2000]}, "env": {}, "seed": None}
    found = leaves(config)
    assert found == {"name": "2024", "grid.strategy": ["loss" * 2000], "env": {}, "seed": None}
    assert nest(found) == config
    # MLflow's params, by contrast, are text cut at its limit:
    assert flatten(config)["grid.strategy"] == json.dumps(["loss" * 2000])[:MAX_PARAM]


# The real server is a process of its own (22-25 s to start on 2 busy cores): a slow variant.
@pytest.fixture(params=["sqlite", pytest.param("server", marks=pytest.mark.slow)])
def uri(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue("mlflow_server" if request.param == "server" else "sqlite_uri")


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


def test_a_deleted_experiment_is_a_config_error(sqlite_uri: str, tmp_path: Path) -> None:
    uri = sqlite_uri
    MlflowClient(uri).delete_experiment(prepare_experiment(uri, "gone", tmp_path))
    with pytest.raises(ConfigError, match="'gone' is deleted"):
        prepare_experiment(uri, "gone", tmp_path)


def test_ui_command_names_the_store() -> None:
    assert (
        ui_command("sqlite:////x/mlflow.db")
        == "mlflow ui --backend-store-uri sqlite:////x/mlflow.db"
    )
    assert ui_command("http://127.0.0.1:5000") == "open http://127.0.0.1:5000"


def test_params_and_tags_are_redacted_at_the_source(sqlite_uri: str, tmp_path: Path) -> None:
    uri = sqlite_uri
    experiment = prepare_experiment(uri, "secrets", tmp_path)
    config = {
        "teacher": {
            "vllm": {"env": {"HF_HUB_CACHE": "/models"}, "engine_kwargs": {"hf_token": "t0ken"}},
            "openai": {"base_url": "https://alice:hunter2secret@llm.example/v1?api_key=k3y"},
        }
    }
    tags = {"student": "https://bob:pw1234567@hub.example/m", "ray_asd.warmup_key": "ab12"}
    run = TrialRun.start(uri, experiment, "secret-run", tags, config)
    stored = MlflowClient(uri).get_run(run.run_id).data
    assert stored.params["teacher.vllm.env.HF_HUB_CACHE"] == MASK
    assert stored.params["teacher.vllm.engine_kwargs.hf_token"] == MASK
    assert (
        stored.params["teacher.openai.base_url"] == f"https://{MASK}@llm.example/v1?api_key={MASK}"
    )
    assert stored.tags["student"] == f"https://{MASK}@hub.example/m"
    assert stored.tags["ray_asd.warmup_key"] == "ab12"  # a label, not a key


@pytest.fixture
def relay(mlflow_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Relay]:
    # MLflow's own HTTP retries (7, over about 4 minutes): a trial's client turns them off.
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    relay = Relay(mlflow_server)
    yield relay
    relay.close()


@pytest.mark.slow  # behind the relay: the real server
def test_an_outage_is_one_warning_and_its_rows_follow_at_the_next_sync(
    relay: Relay,
    mlflow_server: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Credentials in the URI: MLflow's error text carries them, the warning must not.
    uri = f"http://alice:hunter2secret@127.0.0.1:{relay.port}"
    experiment = prepare_experiment(uri, f"outage-{tmp_path.name}", tmp_path)
    run = TrialRun.start(uri, experiment, "outage", {}, {"seed": 0})
    assert run.sync(ROWS[:1])
    (tmp_path / "items.jsonl").write_text('{"question": "q"}\n')
    relay.set_down(True)
    waits: list[float] = []  # the waits between tries, counted (and not slept: 2.5 s saved)
    with monkeypatch.context() as patch, caplog.at_level(logging.WARNING, "ray_asd.tracking"):
        patch.setattr(tracking, "time", SimpleNamespace(time=time.time, sleep=waits.append))
        assert not run.sync(ROWS[:2], [tmp_path / "items.jsonl"])
    assert waits == list(RETRY_SECONDS)  # tried 3 times, then one warning
    assert len(caplog.records) == 1, caplog.text
    line = caplog.records[0].getMessage()
    assert "tracking unavailable" in line and "1 metrics rows wait" in line
    assert "127.0.0.1" in line and "hunter2secret" not in line
    relay.set_down(False)
    assert run.sync(ROWS[2:], [tmp_path / "items.jsonl"])
    client = MlflowClient(mlflow_server)
    history = client.get_metric_history(run.run_id, "accuracy")
    assert [(m.step, m.value) for m in history] == [(-2, 0.1), (-1, 0.2), (0, 0.3)]
    assert [a.path for a in client.list_artifacts(run.run_id)] == ["items.jsonl"]


@pytest.mark.slow  # behind the relay: the real server
def test_a_store_back_within_the_retries_loses_nothing(
    relay: Relay, mlflow_server: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    uri = f"http://127.0.0.1:{relay.port}"
    experiment = prepare_experiment(uri, f"blip-{tmp_path.name}", tmp_path)
    run = TrialRun.start(uri, experiment, "blip", {}, {"seed": 0})
    relay.set_down(True)
    threading.Timer(RETRY_SECONDS[0] / 2, relay.set_down, [False]).start()
    with caplog.at_level(logging.WARNING, logger="ray_asd.tracking"):
        assert run.sync(ROWS)
    assert not caplog.records
    history = MlflowClient(mlflow_server).get_metric_history(run.run_id, "n_synthetic")
    assert [m.step for m in history] == [-2, -1, 0]


def test_mlflow_prints_no_run_link_for_a_uri_with_credentials(
    sqlite_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", raising=False)
    client_of(sqlite_uri)
    assert "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT" not in os.environ
    client_of("http://ray-asd:hunter2@127.0.0.1:5000")
    assert os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] == "true"


@pytest.mark.slow  # MLflow waits out its SQLite busy timeout (20 s) once
def test_a_locked_sqlite_store_is_an_outage_a_trial_outlasts(
    sqlite_uri: str, tmp_path: Path
) -> None:
    """Another writer holding the database (a busy trial's long write): MLflow's error is one
    `transient` lets pass, so a trial's checkpoint defers its rows (as for a server that is
    down, tests/runner/test_trial.py) instead of failing."""
    experiment = prepare_experiment(sqlite_uri, "locked", tmp_path)
    run = TrialRun.start(sqlite_uri, experiment, "locked", {}, {"seed": 0})
    database = sqlite3.connect(tmp_path / "mlflow.db", isolation_level=None)
    database.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(Exception) as raised:
            run.client.log_batch(run.run_id, metrics=[Metric("accuracy", 0.5, 0, 0)])
    finally:
        database.execute("ROLLBACK")
        database.close()
    assert "locked" in str(raised.value) and tracking.transient(raised.value)
    assert run.sync(ROWS)  # the store is free again
    history = MlflowClient(sqlite_uri).get_metric_history(run.run_id, "n_synthetic")
    assert [m.step for m in history] == [-2, -1, 0]


def test_a_trial_s_client_sends_each_request_once(
    sqlite_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    experiment = prepare_experiment(sqlite_uri, "once", tmp_path)
    TrialRun.start(sqlite_uri, experiment, "once", {}, {"seed": 0})
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == tracking.TRIAL_HTTP_RETRIES
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3")  # a user's own number stays
    TrialRun.start(sqlite_uri, experiment, "again", {}, {"seed": 0})
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "3"
