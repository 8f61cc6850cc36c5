"""No secret persisted: `ray-asd run` with secrets planted in every place a config, its
environment or a provider's error can carry one, then every file under storage, everything in
MLflow (params, tags, artifacts), the driver's output and Ray's logs grepped for them.

The driver is a process of its own starting its own local Ray, as a user's would: the planted
API key reaches the teacher pool through the environment, not through this test's cluster.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.helpers.openai_server import FaultyOpenAIServer, arith_teacher

SMOKE = Path(__file__).resolve().parents[2] / "configs" / "smoke.yaml"
KEY = "sk-planted-api-key-7f3a9c1e5b"  # the API key, echoed back by the provider's 401
PLANTED = {
    "api key": KEY,
    "engine env": "planted-engine-env-41d2",
    "engine kwargs token": "planted-hf-token-88b0",
    "tracking password": "planted-tracking-pw-29c4",
    "driver environment": "planted-driver-env-token-6e1f",
}

pytestmark = [pytest.mark.ray, pytest.mark.slow]  # `ray-asd run` starting its own Ray


@pytest.fixture
def arith_server() -> Iterator[FaultyOpenAIServer]:
    with FaultyOpenAIServer(arith_teacher) as server:
        yield server


def grep(root: Path) -> dict[str, list[str]]:
    """Planted secret -> the files under ``root`` holding it (bytes, so databases count)."""
    found: dict[str, list[str]] = {}
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            for name, secret in PLANTED.items():
                if secret.encode() in data:
                    found.setdefault(name, []).append(str(path.relative_to(root)))
    return found


def test_a_run_with_planted_secrets_persists_and_logs_none(
    mlflow_server: str, arith_server: FaultyOpenAIServer, model_cache: Path, tmp_path: Path
) -> None:
    arith_server.inject(["401_echo"])  # the first teacher request: a body echoing the key
    storage = tmp_path / "storage"
    tracking = mlflow_server.replace("http://", f"http://ray-asd:{PLANTED['tracking password']}@")
    overrides = [
        f"storage={storage}",
        "name=secrets",
        "grid.strategy=[random]",
        "teacher.backend=openai",
        "teacher.model=arith-teacher",
        f"teacher.openai.base_url={arith_server.base_url}",
        "teacher.openai.api_key_env=RAY_ASD_PLANTED_KEY",
        "teacher.openai.max_attempts=1",
        f"teacher.vllm.env={{HF_TOKEN: {PLANTED['engine env']}}}",
        f"teacher.vllm.engine_kwargs={{hf_token: {PLANTED['engine kwargs token']}}}",
        f"tracking.uri={tracking}",
        "tracking.log_adapter=true",
        "resources.teacher.cpus=0",
    ]
    ray_tmp = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))  # short: Ray's socket paths
    env = {
        **os.environ,
        "RAY_ASD_PLANTED_KEY": KEY,
        "MY_SERVICE_TOKEN": PLANTED["driver environment"],
        "RAY_ASD_CACHE": str(model_cache),
        "RAY_TMPDIR": str(ray_tmp),
    }
    command = [sys.executable, "-m", "ray_asd.cli", "run", str(SMOKE)]
    command += [arg for override in overrides for arg in ("--set", override)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert arith_server.served["401_echo"] == 1 and arith_server.served["ok"] > 0
    assert arith_server.auth_headers == {f"Bearer {KEY}"}  # the key did go to the provider
    assert (
        "invalid credentials"
        in (storage / "secrets")
        .joinpath("trials", "random-tiny-arith-seed0", "final", "items.jsonl")
        .read_text()
    ), "the provider's error is recorded (masked)"

    leaks = {name: ["driver output"] for name, s in PLANTED.items() if s in output}
    for root in (storage, ray_tmp):
        for name, files in grep(root).items():
            leaks.setdefault(name, []).extend(files)

    client = MlflowClient(mlflow_server)
    (run,) = client.search_runs([client.get_experiment_by_name("secrets").experiment_id])
    assert run.data.params["teacher.openai.api_key_env"] == "RAY_ASD_PLANTED_KEY"
    recorded = str(run.data.params) + str(run.data.tags)
    artifacts = Path(client.download_artifacts(run.info.run_id, "", str(tmp_path / "artifacts")))
    assert any(artifacts.rglob("items.jsonl")), "the trial's files reached MLflow"
    for name, secret in PLANTED.items():
        if secret in recorded:
            leaks.setdefault(name, []).append("MLflow params/tags")
    for name, files in grep(artifacts).items():
        leaks.setdefault(name, []).extend(f"MLflow artifact {f}" for f in files)
    assert not leaks, leaks
