"""`ray-asd run` end to end with the tiny student on a local 2-node Ray cluster (conftest):
MLflow runs on a real server, a killed trial retried, a stopped driver resumed."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import pandas as pd
import psutil
import pytest
from mlflow import MlflowClient

from ray_asd.cli import main
from ray_asd.config import TrialConfig
from ray_asd.errors import ConfigError, DataError
from ray_asd.experiment import Cell, ExperimentConfig, load_experiment
from ray_asd.failure import Cause, root_cause
from ray_asd.runner import Outcome, format_outcome, run_experiment
from ray_asd.runner.checks import Pool
from ray_asd.runner.run import _pools
from ray_asd.tracking import default_uri
from tests.helpers.openai_server import FaultyOpenAIServer, arith_teacher

from .conftest import LocalCluster
from .test_checks import held_by_another_process

SMOKE = Path(__file__).resolve().parents[2] / "configs" / "smoke.yaml"
CELLS = ["loss-tiny-arith-seed0", "random-tiny-arith-seed0"]


def on_ray(test: Callable[..., None]) -> Callable[..., None]:
    """A test on the test cluster (conftest): in the ray and the slow layer."""
    return pytest.mark.slow(pytest.mark.ray(test))


@pytest.fixture(scope="module")
def smoke(
    ray_cluster: LocalCluster, mlflow_server: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Outcome, Path]:
    """The smoke grid run once, uninterrupted, tracked on the MLflow server: the reference."""
    storage = tmp_path_factory.mktemp("smoke")
    config = load_experiment(SMOKE, [f"storage={storage}", f"tracking.uri={mlflow_server}"])
    return run_experiment(config), storage / "smoke"


def items(folder: Path, cell: str) -> list[dict[str, Any]]:
    lines = (folder / "trials" / cell / "final" / "items.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def wait_for(condition: Callable[[], bool], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.1)


def served_keys(storage: Path) -> list[str]:
    """Every request the teacher pool computed (not answered from the cache), from its files
    (``<identity>/<writer>.jsonl``, teacher/cache.py)."""
    return [
        json.loads(line)["key"]
        for path in sorted((storage / "teacher_cache").glob("*/*.jsonl"))
        for line in path.read_text().splitlines()
    ]


def content(items: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(i["id"], i["seed_id"], i["question"], i["answer"], i["accepted"]) for i in items]


def alive_trials(cluster: LocalCluster) -> list[psutil.Process]:
    """The Tune trial processes alive now on ``cluster``'s worker node, by the process title
    Ray gives an actor (``ray::ImplicitFunc.train``) and their parent, the node's raylet (a
    second test process may run a cluster of its own): no state-API call, which can be slow
    or come back empty while the cluster is busy."""
    return [
        process
        for process in psutil.process_iter(["cmdline", "ppid"])
        if (process.info["cmdline"] or [""])[0].startswith("ray::ImplicitFunc")
        and process.info["ppid"] == cluster.worker_raylet_pid
    ]


@on_ray
def test_smoke_grid_writes_one_mlflow_run_per_trial(
    smoke: tuple[Outcome, Path], mlflow_server: str, tmp_path: Path
) -> None:
    outcome, folder = smoke
    assert not outcome.errors
    assert outcome.table["trial"].tolist() == CELLS
    assert outcome.table["n_synthetic"].tolist() == [12, 12]  # warm-up 4 + 2 iterations x 4
    client = MlflowClient(mlflow_server)
    experiment = client.get_experiment_by_name("smoke")
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    assert sorted(runs) == CELLS
    for cell, run in runs.items():
        assert run.info.status == "FINISHED"
        tags = run.data.tags
        assert (tags["strategy"], tags["student"], tags["task"], tags["seed"]) == (
            cell.split("-")[0],
            "tiny",
            "arith",
            "0",
        )
        assert run.data.params["budget.iterations"] == "2"
        assert run.data.params["strategy.name"] == tags["strategy"]
        history = client.get_metric_history(run.info.run_id, "n_synthetic")
        assert [(m.step, m.value) for m in history] == [(-2, 0), (-1, 4), (0, 8), (1, 12)]
        for metric in ("accuracy", "teacher_prompt_tokens", "seconds_train", "n_rejected"):
            assert metric in run.data.metrics, metric
        # The runner's own time, logged when the trial ends (bench/overhead.py reads it).
        spent = {k: v for k, v in run.data.metrics.items() if k.startswith("trial_seconds_")}
        assert set(spent) == {
            f"trial_seconds_{name}"
            for name in ("student_load", "actor_start", "mlflow", "tune_report", "total")
        }
        assert spent["trial_seconds_actor_start"] > 0 and spent["trial_seconds_mlflow"] > 0
        assert spent["trial_seconds_total"] > sum(spent.values()) - spent["trial_seconds_total"]
        assert (tags["ray_asd.scorer"], tags["ray_asd.selector"]) == (
            ("loss", "top_k") if cell.startswith("loss") else ("none", "uniform")
        )
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"config.json", "items.jsonl", "metrics.csv", "evaluations.jsonl"} <= artifacts
        logged = client.download_artifacts(run.info.run_id, "items.jsonl", str(tmp_path / cell))
        assert [json.loads(line) for line in Path(logged).read_text().splitlines()] == items(
            folder, cell
        )
    assert "score_mean" in runs["loss-tiny-arith-seed0"].data.metrics
    # Both strategies start from the one shared warm-up, after the one base evaluation.
    warmups = [[i for i in items(folder, cell) if i["iteration"] < 0] for cell in CELLS]
    assert warmups[0] == warmups[1] and len(warmups[0]) >= 4
    [base] = (folder / "base").glob("*.json")
    row, correct = json.loads(base.read_text())
    assert row["phase"] == "base" and len(correct) == 4  # eval.n test items
    evaluations = (folder / "trials" / CELLS[0] / "final" / "evaluations.jsonl").read_text()
    assert [json.loads(line)["phase"] for line in evaluations.splitlines()] == [
        "base",
        "warmup",
        "iteration",
        "iteration",
    ]


@on_ray
def test_scoring_actors_run_on_the_worker_node(
    smoke: tuple[Outcome, Path], ray_cluster: LocalCluster
) -> None:
    scorers = ray_cluster.actors("StudentScorer")
    assert scorers, "the trials answered on their scoring actors"
    assert {a.node_id for a in scorers} == {ray_cluster.worker_node_id}


@dataclass
class Faults:
    """The faulted grid's run: what `ray-asd run` returned and printed, and what was done to it."""

    code: int
    outcome: Outcome
    printed: str
    storage: Path
    killed: list[int]  # pids of the trial processes killed
    served: int  # teacher requests the server computed


@pytest.fixture(scope="module")
def faults(ray_cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Faults:
    """One `ray-asd run` of a grid with two faults, each a trial of its own: the tiny
    student's trial killed inside iteration 1 (Tune restores it from its checkpoint), and a
    student that cannot load (every attempt fails). The teacher is an LLM pool: the openai
    backend against a local OpenAI-wire server that writes and answers as the arith oracle
    does, so the killed trial's items match the oracle smoke run's."""
    storage = tmp_path_factory.mktemp("faults")
    folder = storage / "faults"
    cell = CELLS[0]
    killed: list[int] = []

    def kill_the_trial_inside_iteration_1() -> None:
        first = folder / "trials" / cell / "checkpoints" / "iter_000" / "state.json"
        wait_for(first.is_file)
        # Found now, while iteration 1's answering pass keeps the trial busy: the state API is
        # slow, and the kill must land between the teacher's answers and the trial's end.
        (trial,) = alive_trials(ray_cluster)
        served = len(served_keys(storage))
        wait_for(lambda: len(served_keys(storage)) > served)  # the teacher served iteration 1
        os.kill(trial.pid, signal.SIGKILL)
        killed.append(trial.pid)

    with FaultyOpenAIServer(arith_teacher) as server:
        overrides = {
            "storage": str(storage),
            "name": "faults",
            "grid.strategy": "[loss]",
            "grid.student": '["tiny:", "nobody/no-such-model"]',  # a hub id: valid until loaded
            "resources.max_failures": "1",
            "teacher.backend": "openai",
            "teacher.model": "arith-teacher",
            "teacher.openai.base_url": server.base_url,
            "resources.teacher.cpus": "0",  # the worker's 2 CPUs: a trial and its scoring actor
        }
        args = ["run", str(SMOKE)]
        for key, value in overrides.items():
            args += ["--set", f"{key}={value}"]
        killer = threading.Thread(target=kill_the_trial_inside_iteration_1, daemon=True)
        killer.start()
        # The real run, watched: its Outcome as `ray-asd run` got it, and what it printed.
        outcomes: list[Outcome] = []

        def recorded(*args: Any, **kwargs: Any) -> Outcome:
            outcomes.append(run_experiment(*args, **kwargs))
            return outcomes[-1]

        watched = mock.patch("ray_asd.runner.run_experiment", recorded)
        with watched, contextlib.redirect_stdout(io.StringIO()) as printed:
            code = main(args)
        killer.join(timeout=10)
        return Faults(code, outcomes[0], printed.getvalue(), storage, killed, server.served["ok"])


@on_ray
def test_a_killed_trial_is_retried_and_matches_an_uninterrupted_run(
    faults: Faults, smoke: tuple[Outcome, Path]
) -> None:
    cell, outcome = CELLS[0], faults.outcome
    assert faults.killed, "the trial was killed mid-experiment"
    assert cell not in outcome.errors
    assert content(items(faults.storage / "faults", cell)) == content(items(smoke[1], cell))
    # The retry re-sent iteration 1's requests; the cache answered them, none computed twice.
    keys = served_keys(faults.storage)
    assert max(Counter(keys).values()) == 1
    assert outcome.teacher["cache_misses"] == len(keys) == faults.served
    assert outcome.teacher["cache_hits"] > 0
    client = MlflowClient(default_uri(faults.storage))
    runs = client.search_runs([client.get_experiment_by_name("faults").experiment_id])
    (run,) = [r for r in runs if r.info.run_name == cell]
    assert run.data.tags["ray_asd.restores"] == "1"
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "accuracy")]
    assert steps == [-2, -1, 0, 1]


@on_ray
def test_a_trial_that_keeps_failing_is_reported_and_the_others_finish(
    faults: Faults, capsys: pytest.CaptureFixture[str]
) -> None:
    assert faults.code == 1
    lines = faults.printed.splitlines()
    # One line, the root cause's type and message (not Ray's traceback), and the last one.
    assert re.fullmatch(r"FAILED loss-no-such-model-arith-seed0: \w+: \S.*", lines[-1])
    assert sum(line.startswith("FAILED ") for line in lines) == 1
    assert (faults.storage / "faults" / "trials" / CELLS[0] / "final").is_dir()
    # The report covers the finished trial and names the cell that never got a run.
    uri = default_uri(faults.storage)
    out = faults.storage / "report"
    assert main(["report", "faults", "--tracking-uri", uri, "--out", str(out)]) == 0
    assert (
        "no run yet for strategy loss, student no-such-model, task arith, seed 0"
        in capsys.readouterr().out
    )


def metrics(folder: Path, cell: str) -> pd.DataFrame:
    """A finished trial's per-step results (not its timings)."""
    columns = ["phase", "iteration", "accuracy", "n_synthetic", "teacher_tokens"]
    return pd.read_csv(folder / "trials" / cell / "final" / "metrics.csv")[columns]


@on_ray
def test_trials_on_a_shared_engine_resume_after_the_driver_is_stopped(
    smoke: tuple[Outcome, Path],
    ray_cluster: LocalCluster,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The smoke grid's two trials of one student answered by one shared engine
    (``resources.scoring.shared``), the driver killed after the first checkpoint, then
    ``--resume``: each trial's items and per-step results are the smoke run's, whose trials
    answered on scoring actors of their own."""
    args = ["run", str(SMOKE), "--set", f"storage={tmp_path}", "--set", "name=resumed"]
    args += ["--set", "resources.scoring.shared=true"]
    before = {a.actor_id for a in ray_cluster.actors("StudentScorer")}
    folder = tmp_path / "resumed"
    log = (tmp_path / "driver.log").open("wb")
    driver = subprocess.Popen(
        [sys.executable, "-m", "ray_asd.cli", *args, "--address", ray_cluster.address],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    first = folder / "trials" / CELLS[0] / "checkpoints" / "iter_000" / "state.json"
    wait_for(lambda: first.is_file() or driver.poll() is not None)
    assert driver.poll() is None, (tmp_path / "driver.log").read_text()
    driver.kill()  # no goodbye: Tune's experiment state is whatever it last saved
    driver.wait()
    wait_for(
        lambda: not alive_trials(ray_cluster), timeout=60
    )  # the job's trials die with their driver
    assert not (folder / "trials" / CELLS[1] / "final").exists()

    assert main([*args, "--resume"]) == 0

    for cell in CELLS:
        assert items(folder, cell) == items(smoke[1], cell)
        pd.testing.assert_frame_equal(metrics(folder, cell), metrics(smoke[1], cell))
    # Each driver started one engine for the grid's one student, and no trial its own.
    ours = [a for a in ray_cluster.actors("StudentScorer") if a.actor_id not in before]
    assert len(ours) == 2 and len({a.name for a in ours}) == 1  # two drivers, one name
    assert ours[0].name.startswith("resumed-") and "-student-" in ours[0].name
    client = MlflowClient(default_uri(tmp_path))
    runs = client.search_runs([client.get_experiment_by_name("resumed").experiment_id])
    assert sorted(r.info.run_name for r in runs) == CELLS  # the same runs, continued
    for run in runs:
        assert run.info.status == "FINISHED"
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "n_synthetic")]
        assert steps == [-2, -1, 0, 1]  # no iteration logged twice

    # Resuming under other settings would continue the trials with them: refused.
    assert main([*args, "--set", "budget.per_iteration=5", "--resume"]) == 2
    assert "other settings of budget.per_iteration " in capsys.readouterr().err


def test_resume_without_an_experiment_fails_before_ray_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["run", str(SMOKE), "--set", f"storage={tmp_path}", "--resume"])
    assert code == 2
    assert "--resume: no experiment 'smoke'" in capsys.readouterr().err


@on_ray
def test_report_on_the_smoke_run(
    smoke: tuple[Outcome, Path], mlflow_server: str, tmp_path: Path
) -> None:
    """The runner scores each new item for the report (in the trial's process; random with
    the analysis scorer, loss), with the first and final students' records for the ordering,
    logs the items, and `ray-asd report` reads it all back from the server."""
    _, folder = smoke
    for cell in CELLS:
        generated = [i for i in items(folder, cell) if i["iteration"] >= 0 and i["accepted"]]
        assert generated and all(i["scorer"] == "loss" for i in generated)
        for field in ("student_correct", "correct_first", "correct_final"):
            assert all(isinstance(i[field], bool) for i in generated)
    out = tmp_path / "report"
    assert main(["report", "smoke", "--tracking-uri", mlflow_server, "--out", str(out)]) == 0
    fidelity = pd.read_csv(out / "fidelity.csv")
    assert fidelity[["strategy", "items"]].values.tolist() == [["loss", 8], ["random", 8]]
    versus = pd.read_csv(out / "efficiency_n_synthetic_vs_random.csv")
    assert versus[["strategy", "step", "x"]].values.tolist() == [["loss", 0, 8], ["loss", 1, 12]]
    overall = pd.read_csv(out / "win_rates_overall.csv")
    assert overall["strategy"].tolist() == ["loss", "random"]  # the grid's order
    assert overall["cells"].tolist() == [2, 2]  # 2 budgets x 1 seed
    assert "What is missing" not in (out / "report.md").read_text()


@on_ray
def test_a_trial_of_the_smoke_run_exports(smoke: tuple[Outcome, Path], tmp_path: Path) -> None:
    """`ray-asd export` on an experiment the runner wrote (its `experiment.json` record, a
    trial's checkpoints): the accepted items as a dataset, the adapter with its card."""
    import datasets

    _, folder = smoke
    out = tmp_path / "export"
    assert main(["export", str(folder), "--cell", CELLS[0], "--out", str(out)]) == 0
    accepted = [i for i in items(folder, CELLS[0]) if i["accepted"]]
    exported = datasets.load_from_disk(str(out / "dataset")).to_list()
    assert [(r["id"], r["question"], r["answer"]) for r in exported] == [
        (i["id"], i["question"], i["answer"]) for i in accepted
    ]
    assert (out / "adapter" / "adapter_config.json").is_file()
    assert "budget: warm-up 4 items, 2 iterations of 4" in (out / "README.md").read_text()


@on_ray
def test_a_request_no_node_can_hold_is_one_line_and_writes_nothing(
    ray_cluster: LocalCluster,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Tune would keep a GPU trial pending for ever on this CPU-only cluster."""
    args = ["run", str(SMOKE), "--set", f"storage={tmp_path}", "--set", "resources.trial.gpus=1"]
    assert main(args) == 2
    assert capsys.readouterr().err == (
        f"ray-asd: error: {SMOKE}: resources.trial.gpus: 1 CPU + 1 GPU per trial, but the "
        "cluster's 2 node(s) have at most 2 CPU and 0 GPU each\n"
    )
    assert list(tmp_path.iterdir()) == []


@on_ray
def test_a_second_driver_of_an_experiment_is_refused(
    ray_cluster: LocalCluster,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = tmp_path / "locked"
    args = ["run", str(SMOKE), "--set", f"storage={tmp_path}", "--set", "name=locked"]
    with held_by_another_process(folder) as pid:
        assert main(args) == 2
    holder = f"pid {pid} on {socket.gethostname()}"
    assert capsys.readouterr().err == (
        f"ray-asd: error: {SMOKE}: experiment folder {folder} is in use by another driver "
        f"({holder}); wait for it to end, or stop it\n"
    )
    assert [p.name for p in tmp_path.iterdir()] == ["locked"]
    assert [p.name for p in folder.iterdir()] == ["driver.lock"]  # no experiment.json, no tune/


@on_ray
def test_errors_raised_in_actors_and_tasks_unwrap_to_their_cause(
    ray_cluster: LocalCluster,
) -> None:
    import ray

    @ray.remote(num_cpus=0)
    class Refuses:
        def __init__(self) -> None:
            raise ConfigError("teacher.model: 'org/x': no such model\nteacher.revision: unset")

        def ping(self) -> int:
            return 1

    @ray.remote(num_cpus=0)
    def bad_row() -> None:
        raise DataError("train.jsonl: line 3: invalid JSON")

    with pytest.raises(Exception) as died:
        ray.get(Refuses.remote().ping.remote())
    with pytest.raises(Exception) as raised:
        ray.get(bad_row.remote())
    assert root_cause(died.value) == Cause(
        "ConfigError", "teacher.model: 'org/x': no such model\nteacher.revision: unset", True
    )
    assert root_cause(raised.value) == Cause("DataError", "train.jsonl: line 3: invalid JSON", True)


def test_the_summary_shows_the_tracking_uri_without_credentials() -> None:
    outcome = Outcome(
        table=pd.DataFrame({"trial": ["a", "b"]}),
        errors={"b": "ConfigError: budget.warmup: 99 > 40 seeds"},
        folder=Path("/s/e"),
        tracking_uri="https://me:s3cret-pass@mlflow.example:5000",
        mlflow_experiment="e",
        teacher={},
        judge={},
        seconds=1.0,
    )
    text = format_outcome(outcome)
    assert "s3cret-pass" not in text
    assert "MLflow: experiment 'e' at https://***@mlflow.example:5000" in text.splitlines()
    assert text.splitlines()[-1] == "FAILED b: ConfigError: budget.warmup: 99 > 40 seeds"


def pools_of(strategies: list[str], **shared: object) -> list[Pool]:
    """The pools `ray-asd run` would start for a grid of these strategies (no Ray)."""
    config = ExperimentConfig.model_validate(shared)
    grid = {
        name: Cell(name, TrialConfig.model_validate({**config.shared(), "strategy": name}), {})
        for name in strategies
    }
    return _pools(config, grid)


OPENAI = {"backend": "openai", "model": "teacher-7b"}
JUDGE = {"llm": {"backend": "openai", "model": "judge-7b"}}


def test_the_oracle_starts_no_pool_and_an_llm_teacher_one() -> None:
    assert pools_of(["loss", "random"]) == []
    [pool] = pools_of(["loss", "random"], teacher=OPENAI)
    assert (pool.role, pool.llm.model, pool.section) == ("teacher", "teacher-7b", "teacher")


def test_a_judge_pool_starts_only_for_a_grid_with_a_judged_strategy() -> None:
    assert [p.role for p in pools_of(["loss", "random"], teacher=OPENAI, judge=JUDGE)] == [
        "teacher"
    ]
    pools = pools_of(["loss", "judge"], teacher=OPENAI, judge=JUDGE)
    assert [(p.role, p.llm.model, p.section) for p in pools] == [
        ("teacher", "teacher-7b", "teacher"),
        ("judge", "judge-7b", "judge.llm"),
    ]
    # The oracle cannot judge, a judge model of its own can: lion under the oracle.
    [pool] = pools_of(["lion"], judge=JUDGE)
    assert (pool.role, pool.llm.model) == ("judge", "judge-7b")
    # No judge.llm: the teacher's pool judges, none other starts.
    assert [p.role for p in pools_of(["judge"], teacher=OPENAI)] == ["teacher"]
