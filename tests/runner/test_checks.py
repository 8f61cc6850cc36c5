"""The driver's checks before it writes or starts Tune: pure functions and the driver lock (no
Ray cluster needed)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from ray.tune.impl.tuner_internal import _TUNER_PKL

from ray_asd.config import TeacherConfig
from ray_asd.errors import ConfigError
from ray_asd.experiment import ExperimentConfig, ResourcesConfig, cells
from ray_asd.runner.checks import (
    LOCK,
    RECORD,
    Pool,
    Request,
    changed_settings,
    check_state,
    driver_lock,
    resource_requests,
    settings_record,
    unmet_requests,
)
from ray_asd.runner.run import _format_pool
from ray_asd.tracking import flatten
from tests.test_export import LOST, flat_record, lost_config, record_of, round_trip

CPU_ONLY = [{"CPU": 0.0}, {"CPU": 2.0, "memory": 1e9}]  # conftest's cluster: head + worker


def test_a_gpu_trial_on_a_cpu_only_cluster_is_named() -> None:
    requests = [Request("resources.trial", "per trial", 1.0, 1.0)]
    assert unmet_requests(requests, CPU_ONLY) == [
        "resources.trial.gpus: 1 CPU + 1 GPU per trial, but the cluster's 2 node(s) have at "
        "most 2 CPU and 0 GPU each"
    ]


def test_requests_that_fit_a_node_pass() -> None:
    nodes = [{"CPU": 8.0, "GPU": 1.0}, {"CPU": 2.0}]
    requests = [Request("resources.trial", "per trial", 8.0, 1.0), Request("x", "y", 0.0, 0.0)]
    assert unmet_requests(requests, nodes) == []


def test_cpus_and_gpus_that_fit_only_on_different_nodes_name_both() -> None:
    nodes = [{"CPU": 8.0}, {"CPU": 1.0, "GPU": 1.0}]
    [problem] = unmet_requests([Request("resources.scoring", "per actor", 4.0, 1.0)], nodes)
    assert problem.startswith("resources.scoring.cpus and resources.scoring.gpus: 4 CPU + 1 GPU")


def test_a_tensor_parallel_engine_needs_its_gpus_in_all() -> None:
    nodes = [{"CPU": 4.0, "GPU": 1.0}, {"CPU": 4.0, "GPU": 1.0}]
    fits = Request("teacher.vllm.tensor_parallel_size", "per teacher engine", 1.0, 1.0, 2)
    too_big = Request("teacher.vllm.tensor_parallel_size", "per teacher engine", 1.0, 1.0, 4)
    assert unmet_requests([fits], nodes) == []
    assert unmet_requests([too_big], nodes) == [
        "teacher.vllm.tensor_parallel_size: 4 GPUs per teacher engine, but the cluster has 2 "
        "GPU in all"
    ]


def test_requests_name_the_keys_that_set_them() -> None:
    resources = ResourcesConfig.model_validate(
        {"trial": {"gpus": 1}, "scoring": {"cpus": 2}, "judge": {"gpus": 0.5}}
    )
    teacher = TeacherConfig.model_validate(
        {"backend": "vllm", "model": "org/teacher", "vllm": {"tensor_parallel_size": 2}}
    )
    judge = TeacherConfig.model_validate({"backend": "openai", "model": "gpt"})
    pools = [
        Pool("teacher", teacher, resources.teacher),
        Pool("judge", judge, resources.judge),
    ]
    assert resource_requests(resources, pools) == [
        Request("resources.trial", "per trial", 1.0, 1.0),
        Request("resources.scoring", "per scoring actor", 2.0, 0.0),
        Request("teacher.vllm.tensor_parallel_size", "per teacher engine", 1.0, 1.0, 2),
        Request("resources.judge", "per judge engine", 1.0, 0.5),
    ]


def test_only_a_vllm_engine_spans_its_tensor_parallel_gpus() -> None:
    resources = ResourcesConfig.model_validate({"teacher": {"gpus": 1}})
    settings = {"model": "org/teacher", "vllm": {"tensor_parallel_size": 2}}
    local = TeacherConfig.model_validate({"backend": "transformers", **settings})
    # transformers ignores the vllm section: one engine on one node, as resources.teacher says
    assert resource_requests(resources, [Pool("teacher", local, resources.teacher)])[2:] == [
        Request("resources.teacher", "per teacher engine", 1.0, 1.0)
    ]


def secret_config(token: str) -> ExperimentConfig:
    return ExperimentConfig.model_validate(
        {
            "teacher": {"backend": "vllm", "model": "org/t", "vllm": {"env": {"HF_TOKEN": token}}},
            "tracking": {"uri": f"https://user:{token}@mlflow.example:5000"},
            "task": {"params": {"note": f"made with {token}"}},
            "grid": {"strategy": [{"name": "p", "selector_params": {"api_key": token}}]},
        }
    )


def test_the_record_holds_no_secret() -> None:
    token = "hf_" + "a" * 30
    record = settings_record(secret_config(token))
    assert token not in json.dumps(record)
    assert record["teacher"]["vllm"]["env"] == {"HF_TOKEN": "***"}
    assert record["tracking"]["uri"] == "https://***@mlflow.example:5000"
    assert record["task"]["params"]["note"] == "made with ***"
    assert record["grid"]["strategy"] == [{"name": "p", "selector_params": {"api_key": "***"}}]
    assert record["budget"]["iterations"] == ExperimentConfig().budget.iterations


def test_a_live_secret_in_a_setting_is_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "live-value-1234"  # no provider's key shape: masked as the environment's value
    monkeypatch.setenv("RAY_ASD_TEST_TOKEN", secret)
    config = ExperimentConfig.model_validate({"task": {"params": {"note": f"x{secret}y"}}})
    assert settings_record(config)["task"]["params"]["note"] == "x***y"


@pytest.mark.parametrize("case", [*LOST, "secret"])
def test_export_reads_the_record_the_runner_writes(tmp_path: Path, case: str) -> None:
    config = secret_config("hf_" + "c" * 30) if case == "secret" else lost_config(case)
    record = settings_record(config)
    assert record == record_of(config)  # tests/test_export.py's stand-in for this writer
    if case != "secret":  # its strategy block names no selector: no cells to build
        read = round_trip(tmp_path / "e", record)
        assert [(c.name, c.config, c.tags) for c in read.cells] == [
            (c.name, c.config, c.tags) for c in cells(config)
        ]


# experiment.json's forms: the nested record, and the flat one of earlier versions.
FORMS = {"nested": settings_record, "flat": flat_record}


def recorded(form: str, config: ExperimentConfig) -> dict[str, Any]:
    """The record of ``config`` in ``form``, as read back from its JSON file."""
    return json.loads(json.dumps(FORMS[form](config), indent=2))


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("case", LOST)
def test_a_resume_refuses_only_a_changed_setting(form: str, case: str) -> None:
    config = lost_config(case)
    record = recorded(form, config)
    assert changed_settings(record, config) == []
    more = config.model_copy(update={"budget": config.budget.model_copy(update={"iterations": 9})})
    assert changed_settings(record, more) == ["budget.iterations"]


def test_a_resume_sees_a_change_past_mlflows_limit() -> None:
    config = lost_config("long")
    blocks = [*LOST["long"]["grid"]["strategy"][:-1], {"name": "random", "stream": 29}]
    changed = ExperimentConfig.model_validate({**config.model_dump(), "grid": {"strategy": blocks}})
    assert changed_settings(recorded("nested", config), changed) == ["grid.strategy"]
    # The flat record cut both at 6000 characters: a change in the 30th block went unseen.
    assert changed_settings(recorded("flat", config), changed) == []


@pytest.mark.parametrize("text", ["{cut sh", "[]"])
def test_an_unreadable_record_is_one_line(tmp_path: Path, text: str) -> None:
    (tmp_path / "tune").mkdir()
    (tmp_path / "tune" / _TUNER_PKL).write_bytes(b"")  # the file Tune restores from
    (tmp_path / RECORD).write_text(text)
    line = f"x.yaml: --resume: {tmp_path / RECORD}: unreadable ("
    with pytest.raises(ConfigError, match="^" + re.escape(line) + r"[^\n]*unchecked$"):
        check_state(ExperimentConfig(), tmp_path, "x.yaml", resume=True)


def test_a_record_written_before_redaction_compares_redacted() -> None:
    token = "hf_" + "b" * 30
    config = secret_config(token)
    old = flatten(config.model_dump(mode="json"))  # as experiment.json held it before
    assert old["teacher.vllm.env.HF_TOKEN"] == token
    assert changed_settings(old, config) == []


@pytest.mark.parametrize("form", FORMS)
def test_a_setting_a_newer_version_added_at_its_default_is_no_change(form: str) -> None:
    older = recorded(form, ExperimentConfig())
    for section in ("student", "teacher"):  # as a version before `revision` wrote it
        older.pop(f"{section}.revision", None)
        older.get(section, {}).pop("revision", None)
    assert changed_settings(older, ExperimentConfig()) == []
    pinned = ExperimentConfig.model_validate({"student": {"model": "org/s", "revision": "v2"}})
    assert changed_settings(older, pinned) == ["student.model", "student.revision"]


def test_a_second_driver_is_refused_with_the_first_named(tmp_path: Path) -> None:
    folder, where = tmp_path / "exp", "x.yaml"
    with driver_lock(folder, where):
        holder = f"pid {os.getpid()} on {socket.gethostname()}"
        message = f"{where}: experiment folder {folder} is in use by another driver ({holder})"
        with pytest.raises(ConfigError, match="^" + re.escape(message)), driver_lock(folder, where):
            pass
    with driver_lock(folder, where):  # released when the first one ended
        pass
    assert [p.name for p in folder.iterdir()] == [LOCK]


@contextmanager
def held_by_another_process(folder: Path) -> Iterator[int]:
    """The driver lock of ``folder`` held by a subprocess (its pid), SIGKILLed at the end."""
    code = (
        "import sys, time; from pathlib import Path; from ray_asd.runner.checks import "
        "driver_lock\nwith driver_lock(Path(sys.argv[1]), 'x'):\n    print('held', flush=True)"
        "\n    time.sleep(600)"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        yield holder.pid
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()


@pytest.mark.slow  # the holder is a Python process importing the runner: ~10 s on 2 cores
def test_a_killed_drivers_lock_does_not_block(tmp_path: Path) -> None:
    folder = tmp_path / "exp"
    refused = pytest.raises(ConfigError)
    with held_by_another_process(folder) as pid, refused as error, driver_lock(folder, "x"):
        pass
    assert f"in use by another driver (pid {pid} on " in str(error.value)
    with driver_lock(folder, "x"):
        assert (folder / LOCK).read_text() == f"pid {os.getpid()} on {socket.gethostname()}\n"


def test_the_pool_line_names_cache_damage_only_when_there_is_some() -> None:
    stats = {"cache_hits": 3, "cache_misses": 2, "retries": 1, "failed": 0}
    assert _format_pool(stats, "teacher") == (
        "teacher pool: 5 requests, 3 from the teacher cache, 1 retries, 0 failed"
    )
    damaged = _format_pool({**stats, "cache_skipped": 4, "cache_unreadable": 1}, "teacher")
    assert damaged.endswith("; cache damage skipped: 4 records, 1 files (see the log)")
