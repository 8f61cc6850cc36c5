"""The openai backend against a local server speaking the OpenAI wire format, with faults
injected (429s, 5xx, hangs, malformed JSON): every fault is retried or recorded, and the
counters match what was injected exactly. (The real `vllm serve`: tests/runner/test_vllm.py.)"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from ray_asd.cli import main
from ray_asd.config import TeacherConfig
from ray_asd.errors import ConfigError
from ray_asd.tasks import make_task
from ray_asd.teacher import LLMTeacher, Prompts
from ray_asd.teacher.openai_api import OpenAIBackend
from tests.helpers.openai_server import ALWAYS_FAIL, FaultyOpenAIServer, arith_teacher

SECRET = "sk-test-do-not-log-0123456789"


@pytest.fixture
def server() -> Iterator[FaultyOpenAIServer]:
    with FaultyOpenAIServer(arith_teacher, hang_s=2.0) as running:
        yield running


def config(server: FaultyOpenAIServer, **openai: object) -> TeacherConfig:
    settings = {
        "base_url": server.base_url,
        "api_key_env": "RAY_ASD_TEST_KEY",
        "timeout_s": 0.5,
        "backoff_initial_s": 0.01,
        "backoff_max_s": 0.05,
        **openai,
    }
    return TeacherConfig(backend="openai", model="teacher-7b", openai=settings)


def test_faults_are_retried_and_counted_exactly(
    server: FaultyOpenAIServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("RAY_ASD_TEST_KEY", SECRET)
    backend = OpenAIBackend(config(server, max_attempts=4, max_concurrency=2))
    faults = ["429", "500", "hang", "malformed", "502", "503", "429"]
    server.inject(faults)
    prompts = [
        f"Problem: Start with {n}. Add 1. What is the result?\n\nSolution:" for n in range(5)
    ]
    with caplog.at_level(logging.DEBUG):
        results = backend.complete([*prompts, ALWAYS_FAIL], list(range(6)))
    assert [r.text for r in results[:5]] == [arith_teacher(p, 0) for p in prompts]
    assert all(r.error is None and r.prompt_tokens > 0 for r in results[:5])
    failed = results[5]
    assert failed.text == "" and failed.retries == 3 and "injected 500" in (failed.error or "")
    assert sum(r.retries for r in results) == len(faults) + 3
    assert backend.stats() == {
        "requests": 6,
        "calls": 1,
        "retries": len(faults) + 3,  # each injected fault once, the failing request 3 times
        "retries_rate_limited": 2,
        "retries_server_error": 3 + 3,
        "retries_timeout": 1,
        "retries_malformed": 1,
        "failed": 1,
        "failed_server_error": 1,
    }
    assert server.served == {
        **{"ok": 5, "always_500": 4, "429": 2, "500": 1, "502": 1, "503": 1},
        **{"hang": 1, "malformed": 1},
    }
    # The key went to the server, and nowhere else.
    assert server.auth_headers == {f"Bearer {SECRET}"}
    assert SECRET not in caplog.text + repr(backend) + json.dumps(backend.identity)


def test_errors_retrying_cannot_fix_fail_at_once(
    server: FaultyOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RAY_ASD_TEST_KEY", raising=False)  # a local server needs no key
    backend = OpenAIBackend(config(server, max_attempts=5))
    server.inject(["400"])  # e.g. a prompt over the context length
    results = backend.complete(["Problem: 1\n\nSolution:", "Problem: 2\n\nSolution:"], [0, 1])
    failed = [r for r in results if r.error is not None]  # whichever arrived first
    assert len(failed) == 1 and "BadRequestError" in (failed[0].error or "")
    assert failed[0].retries == 0
    assert backend.stats()["failed_error"] == 1 and backend.stats()["retries"] == 0


def test_an_error_body_echoing_the_key_is_masked(
    server: FaultyOpenAIServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A variable whose name says nothing of a key: the backend masks its live value anyway.
    monkeypatch.setenv("PROVIDER_CONFIG", SECRET)
    backend = OpenAIBackend(config(server, api_key_env="PROVIDER_CONFIG"))
    server.inject(["401_echo"])
    with caplog.at_level(logging.WARNING):
        [failed] = backend.complete(["Problem: 1\n\nSolution:"], [0])
    assert server.served["401_echo"] == 1 and server.auth_headers == {f"Bearer {SECRET}"}
    error = failed.error or ""
    assert error.startswith("AuthenticationError") and "'Authorization': '***'" in error
    assert SECRET not in error + caplog.text


def test_credentials_in_the_url_stay_out_of_identity_and_repr(
    server: FaultyOpenAIServer,
) -> None:
    url = server.base_url.replace("http://", "http://alice:pw-in-url-42@") + "?api_key=abc123"
    backend = OpenAIBackend(config(server, base_url=url))
    assert backend.identity["base_url"] == server.base_url.replace("http://", "http://***@") + (
        "?api_key=***"
    )
    assert "pw-in-url-42" not in repr(backend) and "abc123" not in repr(backend)


def test_missing_key_for_the_hosted_api_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("RAY_ASD_TEST_KEY", raising=False)
    hosted = TeacherConfig(backend="openai", model="m", openai={"api_key_env": "RAY_ASD_TEST_KEY"})
    with pytest.raises(ConfigError, match="RAY_ASD_TEST_KEY is not set"):
        OpenAIBackend(hosted)


def test_a_failed_request_fails_only_its_item(server: FaultyOpenAIServer) -> None:
    teacher = LLMTeacher(OpenAIBackend(config(server, max_attempts=2)), Prompts())
    seed = "Start with 4. Add 3, then subtract 2. What is the result?"
    items = teacher.generate(make_task("arith"), [seed, f"{seed} {ALWAYS_FAIL}"], [1, 2])
    assert items[0].error is None and make_task("arith").verify(items[0].question, items[0].answer)
    assert items[1].error is not None and items[1].question is None and items[1].calls == 1


@pytest.mark.slow  # a whole trial with the tiny student
def test_a_trial_completes_through_faults(
    server: FaultyOpenAIServer, model_cache: Path, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("RAY_ASD_CACHE", str(model_cache))
    faults = ["429", "hang", "500", "malformed", "503", "429", "502", "hang"]
    server.inject(faults)
    out = tmp_path / "trial"
    settings = {
        "student.model": "tiny:",
        "student.max_new_tokens": 8,
        "budget.iterations": 2,
        "budget.per_iteration": 3,
        "budget.warmup": 2,
        "seeds.n": 8,
        "eval.n": 4,
        "train.epochs": 1,
        "teacher.backend": "openai",
        "teacher.model": "teacher-7b",
        "teacher.openai.base_url": server.base_url,
        "teacher.openai.api_key_env": "RAY_ASD_TEST_KEY",
        "teacher.openai.timeout_s": 0.5,
        "teacher.openai.backoff_initial_s": 0.01,
        "teacher.openai.max_attempts": len(faults) + 1,  # no request can run out of tries
        "strategy.name": "loss",
    }
    argv = ["trial", "--out", str(out)]
    for key, value in settings.items():
        argv += ["--set", f"{key}={value}"]
    assert main(argv) == 0
    items = [json.loads(line) for line in (out / "items.jsonl").open()]
    assert sum(item["teacher_retries"] for item in items) == len(faults)
    assert all(item["teacher_error"] is None for item in items)
    assert sum(item["accepted"] for item in items) == 2 + 2 * 3  # the oracle-like server
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics[-1]["teacher_retries"] == len(faults) and metrics[-1]["teacher_failed"] == 0
    stats = json.loads((out / "teacher_stats.json").read_text())
    assert stats["retries_timeout"] == 2 and stats["retries_rate_limited"] == 2
    assert stats["retries_server_error"] == 3 and stats["retries_malformed"] == 1
    assert stats["requests"] == server.served["ok"] == 2 * len(items)
    # The trial's progress lost, the cache kept: run again, and every request is answered
    # from the teacher cache, none reaches the server; the results are the same.
    served = sum(server.served.values())
    shutil.rmtree(out / "checkpoints")
    assert main(argv) == 0
    assert sum(server.served.values()) == served
    again = [json.loads(line) for line in (out / "items.jsonl").open()]
    assert all(item["teacher_cached"] == item["teacher_calls"] for item in again)
    drop = ("teacher_retries", "teacher_cached")
    strip = lambda rows: [{k: v for k, v in r.items() if k not in drop} for r in rows]  # noqa: E731
    assert strip(again) == strip(items)
