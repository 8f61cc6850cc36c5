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


# Every test of the runner's Ray cluster (tests/runner/conftest.py) lives here.
RUNNER_TESTS = "tests/runner/"


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """With pytest-xdist (``-n 2``, scripts/test.sh): the runner's tests in one worker, so one
    cluster on the 2 cores, and every other module whole in either (its module fixtures, an
    engine among them, built once). The runner's unit is the largest, so it is dealt first."""
    from xdist.scheduler import LoadScopeScheduling

    class RunnerTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            if nodeid.startswith(RUNNER_TESTS):
                return RUNNER_TESTS
            return super()._split_scope(nodeid)

    return RunnerTogether(config, log)


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
