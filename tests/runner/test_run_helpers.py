"""The driver's pure helpers, without Ray started: the end-of-run table's costs and summary,
how many trials fit at once, the storage folder, the environment the trials get, the checks of
an experiment's state and of the cluster address, the CPUs of an engine."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from ray.tune.impl.tuner_internal import _TUNER_PKL

from ray_asd.config import TeacherConfig
from ray_asd.errors import ConfigError
from ray_asd.experiment import ExperimentConfig, ResourcesConfig, TeacherResources
from ray_asd.runner.checks import RECORD, Pool, check_address, check_state, pool_cpus
from ray_asd.runner.checks import settings_record as record_of
from ray_asd.runner.placement import fitting_trials
from ray_asd.runner.run import (
    COST_COLUMNS,
    PASSED_ENV,
    Outcome,
    _runtime_env,
    format_outcome,
    iteration_costs,
)

ORACLE = TeacherConfig.model_validate({"backend": "oracle"})
LLM = TeacherConfig.model_validate({"backend": "openai", "model": "gpt"})


def test_iteration_costs_are_means_over_iterations_with_a_retried_one_counted_once() -> None:
    reports = pd.DataFrame(
        {
            "phase": ["base", "warmup", "iteration", "iteration", "iteration"],
            "iteration": [-1, -1, 0, 1, 1],  # iteration 1 reported twice: a retried attempt
            "selection_seconds": [9.0, 9.0, 1.0, 5.0, 3.0],
            "generation_tokens_phase": [0, 900, 100, 500, 300],
            "rating_tokens_phase": [0, 0, 10, 50, 30],
        }
    )
    # The base and warm-up rows do not count; the retry's last report (3, 300, 30) wins.
    assert iteration_costs(reports) == {
        "select s/iter": 2.0,
        "gen tok/iter": 200.0,
        "rating tok/iter": 20.0,
    }


def test_iteration_costs_of_a_trial_without_iterations_are_unknown() -> None:
    unknown = dict.fromkeys(COST_COLUMNS.values())
    assert iteration_costs(None) == unknown  # a trial that failed before its first report
    assert iteration_costs(pd.DataFrame({"accuracy": [0.5]})) == unknown
    warm_only = pd.DataFrame({"phase": ["base", "warmup"], "iteration": [-1, -1]})
    assert iteration_costs(warm_only.assign(selection_seconds=[1.0, 2.0])) == unknown
    # A cost the reports lack stays unknown; the others are still computed.
    partial = pd.DataFrame({"phase": ["iteration"], "iteration": [0], "selection_seconds": [4.0]})
    assert iteration_costs(partial) == {**unknown, "select s/iter": 4.0}


def outcome(**changes: object) -> Outcome:
    fields: dict[str, object] = {
        "table": pd.DataFrame(
            {"trial": ["loss-tiny", "random-tiny"], "final accuracy": [0.5, 0.25]}
        ),
        "errors": {},
        "folder": Path("/s/e"),
        "tracking_uri": "sqlite:////s/mlflow.db",
        "mlflow_experiment": "e",
        "teacher": {},
        "judge": {},
        "seconds": 61.4,
    }
    return Outcome(**{**fields, **changes})  # type: ignore[arg-type]


def test_the_summary_of_an_oracle_run_has_no_judge_line() -> None:
    lines = format_outcome(outcome()).splitlines()
    assert lines[:3] == [
        "      trial  final accuracy",
        "  loss-tiny           0.500",
        "random-tiny           0.250",
    ]
    assert lines[3:] == [
        "",
        "teacher: oracle (no pool)",
        "wall time: 61 s; trial folders: /s/e/trials",
        "MLflow: experiment 'e' at sqlite:////s/mlflow.db",
        "  view: mlflow ui --backend-store-uri sqlite:////s/mlflow.db",
    ]


def test_the_summary_counts_each_pool_s_requests_and_ends_with_the_failures() -> None:
    pools = {
        "teacher": {"cache_hits": 4, "cache_misses": 6, "retries": 2, "failed": 1},
        "judge": {"cache_hits": 0, "cache_misses": 16, "retries": 0, "failed": 0},
    }
    errors = {"a": "DataError: x.jsonl: line 2: invalid JSON", "b": "ConfigError: budget"}
    lines = format_outcome(outcome(errors=errors, **pools)).splitlines()
    assert "teacher pool: 10 requests, 4 from the teacher cache, 2 retries, 1 failed" in lines
    assert "judge pool: 16 requests, 0 from the teacher cache, 0 retries, 0 failed" in lines
    assert lines[-2:] == [
        "FAILED a: DataError: x.jsonl: line 2: invalid JSON",
        "FAILED b: ConfigError: budget",
    ]


def resources(**sections: object) -> ResourcesConfig:
    return ResourcesConfig.model_validate(sections)


def test_trials_that_fit_count_their_scoring_actors_and_leave_the_pools_room() -> None:
    # The test cluster: a worker of 2 CPUs. A trial of 1 CPU with one 1-CPU scoring actor
    # holds both, so one trial at a time (not two, counting the trial alone).
    config = resources(trial={"cpus": 1}, scoring={"actors": 1, "cpus": 1})
    assert fitting_trials(config, {}, {"CPU": 2.0}) == 1
    assert fitting_trials(config, {}, {"CPU": 9.0}) == 4  # floor(9 / 2)
    # The pools' engines (here 3 CPUs in all) come first.
    assert fitting_trials(config, {"CPU": 3.0}, {"CPU": 9.0}) == 3
    assert fitting_trials(config, {"CPU": 9.0}, {"CPU": 9.0}) == 0  # the caller runs 1


def test_gpu_trials_fit_by_the_scarcer_resource() -> None:
    config = resources(trial={"cpus": 1, "gpus": 1}, scoring={"actors": 2, "cpus": 1, "gpus": 0.5})
    # Per trial: 3 CPUs and 2 GPUs. 16 CPUs fit 5, 4 GPUs fit 2 (1 GPU is the teacher's).
    assert fitting_trials(config, {"GPU": 1.0}, {"CPU": 16.0, "GPU": 5.0}) == 2
    assert fitting_trials(config, {}, {"CPU": 16.0}) == 0  # a CPU-only cluster: none
    # A trial that asks for nothing (0 CPUs, its actors 0 too) is not limited by the cluster.
    nothing = resources(trial={"cpus": 0}, scoring={"cpus": 0})
    assert fitting_trials(nothing, {}, {"CPU": 1.0}) == 1


def test_storage_is_a_filesystem_path_under_which_the_experiment_has_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    config = ExperimentConfig.model_validate({"name": "exp", "storage": "~/runs/../runs"})
    assert config.storage_folder("x.yaml") == tmp_path / "runs" / "exp"
    remote = ExperimentConfig.model_validate({"name": "exp", "storage": "s3://bucket/runs"})
    with pytest.raises(
        ConfigError, match=r"^x.yaml: storage: 's3://bucket/runs': use a filesystem"
    ):
        remote.storage_folder("x.yaml")


def test_the_trials_get_the_driver_s_cache_and_offline_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key in PASSED_ENV:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.delenv("RAY_JOB_CONFIG_JSON_ENV_VAR", raising=False)
    monkeypatch.setenv("RAY_ASD_CACHE", "/cache")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("UNRELATED", "x")
    assert _runtime_env() == {
        "env_vars": {
            "RAY_ASD_CACHE": "/cache",
            "HF_HUB_OFFLINE": "1",
            "MLFLOW_DISABLE_TELEMETRY": "true",
        }
    }
    # Under `ray job submit`, a key the job's runtime env sets is left to it (Ray refuses a
    # key set twice).
    job = {"runtime_env": {"env_vars": {"RAY_ASD_CACHE": "/job-cache"}}}
    monkeypatch.setenv("RAY_JOB_CONFIG_JSON_ENV_VAR", json.dumps(job))
    assert _runtime_env() == {
        "env_vars": {"HF_HUB_OFFLINE": "1", "MLFLOW_DISABLE_TELEMETRY": "true"}
    }


def test_a_new_experiment_must_not_exist_and_a_resumed_one_must(tmp_path: Path) -> None:
    config = ExperimentConfig.model_validate({"name": "exp"})
    folder = tmp_path / "exp"
    check_state(config, folder, "x.yaml", resume=False)  # nothing there: a new experiment
    with pytest.raises(ConfigError, match=r"^x.yaml: --resume: no experiment 'exp' to continue"):
        check_state(config, folder, "x.yaml", resume=True)
    (folder / "tune").mkdir(parents=True)  # the driver stopped before Tune saved its state
    with pytest.raises(ConfigError, match=r"run it without --resume\)$"):
        check_state(config, folder, "x.yaml", resume=True)
    (folder / "tune" / _TUNER_PKL).write_bytes(b"")  # the file Tune restores from
    with pytest.raises(ConfigError, match=r"^x.yaml: name: experiment 'exp' exists in "):
        check_state(config, folder, "x.yaml", resume=False)
    check_state(config, folder, "x.yaml", resume=True)  # no record: nothing to compare


def test_a_resumed_experiment_must_run_with_the_settings_it_ran_with(tmp_path: Path) -> None:
    config = ExperimentConfig.model_validate({"name": "exp"})
    folder = tmp_path / "exp"
    (folder / "tune").mkdir(parents=True)
    (folder / "tune" / _TUNER_PKL).write_bytes(b"")
    (folder / RECORD).write_text(json.dumps(record_of(config)))
    check_state(config, folder, "x.yaml", resume=True)
    changed = config.model_copy(update={"seed": 7})
    with pytest.raises(ConfigError, match=r"^x.yaml: --resume: .* other settings of seed \("):
        check_state(changed, folder, "x.yaml", resume=True)


def test_an_address_must_be_host_and_port_and_accept_a_connection() -> None:
    for local in (None, "", "auto", "local"):
        check_address(local)  # Ray starts or finds a local instance: nothing to check
    with pytest.raises(ConfigError, match=r"^--address nohost: expected ray://HOST:PORT"):
        check_address("nohost")
    with pytest.raises(ConfigError, match=r"^--address ray://h:port: "):
        check_address("ray://h:port")
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        check_address(f"127.0.0.1:{port}")  # listening: passes
        check_address(f"ray://127.0.0.1:{port}")
    with pytest.raises(ConfigError, match=rf"^--address 127.0.0.1:{port}: cannot connect"):
        check_address(f"127.0.0.1:{port}")  # closed now: refused at once


def test_an_engine_holds_the_cpus_it_is_given_else_none_for_the_oracle_and_one_for_an_llm() -> None:
    assert pool_cpus(ORACLE, TeacherResources()) == 0.0
    assert pool_cpus(LLM, TeacherResources()) == 1.0
    assert pool_cpus(LLM, TeacherResources(cpus=0.5)) == 0.5
    assert pool_cpus(ORACLE, TeacherResources(cpus=2)) == 2.0
    assert Pool("teacher", LLM, TeacherResources()).section == "teacher"
    assert Pool("judge", LLM, TeacherResources()).section == "judge.llm"


def test_costs_reach_the_printed_table_with_unknowns_as_dashes() -> None:
    rows = [
        {"trial": "a", **iteration_costs(None)},
        {"trial": "b", **dict.fromkeys(COST_COLUMNS.values(), 1.5)},
    ]
    table = outcome(table=pd.DataFrame(rows).replace({None: np.nan}))
    lines = format_outcome(table).splitlines()
    assert lines[0].split() == [
        "trial",
        "select",
        "s/iter",
        "gen",
        "tok/iter",
        "rating",
        "tok/iter",
    ]
    assert lines[1].split() == ["a", "-", "-", "-"]
    assert lines[2].split() == ["b", "1.500", "1.500", "1.500"]
