"""Session-wide fixtures: one model cache per test run, never the user's real cache; one real
`mlflow server` (started only by the tests that ask for it); a migrated MLflow SQLite store
that each test asking for one gets a fresh copy of. Tests that ask for Ray, the model cache or
the server are marked slow here, whatever their module says (the fast layer:
``pytest -m "not slow"``)."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ray_asd.models import resolve_model
from tests.helpers.processes import free_port, http_server

# What a fixture starts makes the test that asks for it slow: the runner's local Ray cluster
# (tests/runner/conftest.py), the tiny model (converted once, ~15 s; loaded by every user) and
# the MLflow server (22-25 s to start on 2 busy cores).
IMPLIED_MARKS = {
    "ray_cluster": ("ray", "slow"),
    "model_cache": ("slow",),
    "mlflow_server": ("slow",),
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The marks each test's fixtures imply, and ``slow`` on every ``ray`` test."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        implied = {mark for name in fixtures & IMPLIED_MARKS.keys() for mark in IMPLIED_MARKS[name]}
        if item.get_closest_marker("ray") is not None:
            implied.add("slow")
        for mark in sorted(implied):
            if item.get_closest_marker(mark) is None:
                item.add_marker(mark)


# The runner's tests on its local Ray cluster (tests/runner/conftest.py) in two units, each run
# whole by one pytest-xdist worker (the cluster is a session fixture: one per worker that asks):
# the experiments end to end, and the engines and scoring passes. In one unit the runner's
# worker ran alone for the suite's second half (15 of 31 min, 2026-12-02). Every other module,
# tests/runner/'s own cluster-free ones included, is a unit of its own.
RUNNER_UNITS = {
    "tests/runner/test_run.py": "runner: experiments",
    "tests/runner/test_scheduler.py": "runner: experiments",
    "tests/runner/test_strategies.py": "runner: experiments",
    "tests/runner/test_trial.py": "runner: experiments",
    "tests/runner/test_scoring.py": "runner: engines",
    "tests/runner/test_shutdown.py": "runner: engines",
    "tests/runner/test_student_pool.py": "runner: engines",
    "tests/runner/test_vllm.py": "runner: engines",
}
FIRST_UNIT, LAST_UNIT = "runner: experiments", "runner: engines"


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """With pytest-xdist (``-n 2``, scripts/test.sh): each runner unit in one worker, every
    other module whole in either (its module fixtures, an engine among them, built once). The
    experiments, the longest unit, are dealt first; the engines last, so that a second cluster
    starts only when the other worker has finished the modules that need no Ray."""
    from xdist.scheduler import LoadScopeScheduling

    class RunnerUnits(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return RUNNER_UNITS.get(module) or super()._split_scope(nodeid)

        ordered = False

        def _assign_work_unit(self, node: Any) -> None:
            # xdist's schedule() sorts the queue by tests per unit, largest first, then deals
            # it: before the first unit is dealt, the experiments go to the front of the queue
            # and the engines to its back (a stable sort keeps the rest as xdist ordered them).
            if not self.ordered:
                rank = {FIRST_UNIT: 0, LAST_UNIT: 2}
                units = sorted(self.workqueue.items(), key=lambda unit: rank.get(unit[0], 1))
                self.workqueue.clear()
                self.workqueue.update(units)
                self.ordered = True
            super()._assign_work_unit(node)

    return RunnerUnits(config, log)


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache root holding the tiny model (building it converts the embedded GGUF once)."""
    root = tmp_path_factory.mktemp("ray-asd-cache")
    resolve_model("tiny:", cache_dir=root)
    return root


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory, migrated_store: Path) -> Iterator[str]:
    """The URI of a real MLflow tracking server on loopback (a process of its own), its store
    migrated already."""
    root = tmp_path_factory.mktemp("mlflow-server")
    shutil.copyfile(migrated_store, root / "mlflow.db")
    port = free_port()
    command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}"]
    command += ["--artifacts-destination", str(root / "artifacts"), "--workers", "1"]
    uri = f"http://127.0.0.1:{port}"
    env = {"MLFLOW_DISABLE_TELEMETRY": "true"}
    with http_server(command, f"{uri}/health", root / "server.log", env=env):
        yield uri


@pytest.fixture(scope="session")
def migrated_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty MLflow SQLite store, created by MLflow with every schema migration run: 1.0 to
    1.5 s on 2 cores, paid once here instead of by every test that opens a store of its own."""
    from mlflow import MlflowClient

    from ray_asd.tracking import default_uri  # MLflow's import: 2.5 s, for these tests only

    root = tmp_path_factory.mktemp("mlflow-store")
    MlflowClient(default_uri(root)).search_experiments()
    return root / "mlflow.db"


@pytest.fixture
def sqlite_uri(migrated_store: Path, tmp_path: Path) -> str:
    """``default_uri(tmp_path)``, its store a fresh copy of the migrated one (25 ms)."""
    from ray_asd.tracking import default_uri

    shutil.copyfile(migrated_store, tmp_path / "mlflow.db")
    return default_uri(tmp_path)
