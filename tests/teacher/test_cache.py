"""The teacher cache over a real backend (transformers, tiny model): what was answered once
is never computed again, also by another writer or after a restart; failures are not kept."""

import json
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ray_asd.config import TeacherConfig
from ray_asd.errors import DataError
from ray_asd.models import MARKER_FILE, resolve_model
from ray_asd.teacher import CachedBackend, Completion
from ray_asd.teacher.base import isolate_failures, model_fingerprint, sampling_identity
from ray_asd.teacher.cache import identity_digest, request_key
from ray_asd.teacher.transformers import TransformersBackend
from ray_asd.teacher.vllm import vllm_identity
from tests.teacher.echo import Echo

PROMPTS = ["Write a problem about apples.", "Write a problem about pens.", "Add 2 and 3."]


@pytest.fixture(scope="module")
def backend(model_cache: Path) -> TransformersBackend:
    config = TeacherConfig(backend="transformers", model="tiny:", max_new_tokens=8)
    return TransformersBackend(config, model_cache)


@pytest.mark.slow  # the tiny model generates
def test_answered_requests_come_from_the_cache(
    backend: TransformersBackend, tmp_path: Path
) -> None:
    cached = CachedBackend(backend, tmp_path, "e0")
    calls = backend.stats()["calls"]
    first = cached.complete(PROMPTS[:2], [1, 2])
    again = cached.complete(PROMPTS, [1, 2, 3])
    assert [c.text for c in again[:2]] == [c.text for c in first]
    assert [c.cached for c in first + again] == [False, False, True, True, False]
    assert again[0].prompt_tokens == first[0].prompt_tokens > 0  # still charged its tokens
    assert backend.stats()["calls"] == calls + 2  # the second call computed one request
    assert cached.stats()["cache_hits"] == 2 and cached.stats()["cache_misses"] == 3
    new_seed = cached.complete(PROMPTS[:1], [99])[0]
    assert not new_seed.cached  # a new seed is a new request


@pytest.mark.slow  # the tiny model generates
def test_another_writer_and_a_restart_read_every_file(
    backend: TransformersBackend, tmp_path: Path
) -> None:
    first = CachedBackend(backend, tmp_path, "e0").complete(PROMPTS, [1, 2, 3])
    (own,) = tmp_path.glob("*/e0.jsonl")
    with own.open("a") as file:
        file.write('{"key": "cut sho')  # a writer killed mid-write
    other = CachedBackend(backend, tmp_path, "e1")
    assert other.complete(PROMPTS, [1, 2, 3]) == [
        Completion(c.text, c.prompt_tokens, c.completion_tokens, cached=True) for c in first
    ]
    # The writer of the cut file restarts and stores something new: that record survives.
    restarted = CachedBackend(backend, tmp_path, "e0")
    new = restarted.complete(["Something new."], [4])[0]
    assert CachedBackend(backend, tmp_path, "e2").complete(["Something new."], [4])[0].cached
    assert not new.cached


@pytest.mark.slow  # the tiny model generates
def test_sampling_settings_are_part_of_the_key(model_cache: Path, tmp_path: Path) -> None:
    hot = TeacherConfig(backend="transformers", model="tiny:", max_new_tokens=8, temperature=1.0)
    CachedBackend(TransformersBackend(hot, model_cache), tmp_path, "e0").complete(
        PROMPTS, [1, 2, 3]
    )
    cold = hot.model_copy(update={"temperature": 0.2})
    again = CachedBackend(TransformersBackend(cold, model_cache), tmp_path, "e1")
    assert not any(c.cached for c in again.complete(PROMPTS, [1, 2, 3]))


def test_a_failing_request_fails_alone_and_is_not_cached(tmp_path: Path) -> None:
    counts: dict[str, int] = {}
    tries = {"bad": 0}

    def generate(prompts: list[str], seeds: list[int]) -> list[Completion]:
        if "bad" in prompts:  # an engine error: the whole batch raises
            tries["bad"] += 1
            raise ValueError("prompt too long")
        return [Completion(p.upper(), 1, 1) for p in prompts]

    results = isolate_failures(generate, ["a", "bad", "c"], [1, 2, 3], 3, counts)
    assert [r.text for r in results] == ["A", "", "C"]
    assert results[1].error == "ValueError('prompt too long')" and results[1].retries == 2
    assert counts == {"retries": 2, "failed": 1} and tries["bad"] == 4  # the batch + 3 alone


def good_record(identity: dict[str, Any], prompt: str, seed: int) -> dict[str, Any]:
    key = request_key(identity, prompt, seed)
    return {"key": key, "identity": identity, "prompt": prompt, "seed": seed, "text": "t"} | {
        "prompt_tokens": 1,
        "completion_tokens": 1,
    }


def test_four_bad_records_are_skipped_counted_and_warned_about_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    CachedBackend(Echo(), tmp_path, "e0").complete(["a", "b"], [1, 2])
    (own,) = tmp_path.glob("*/e0.jsonl")
    missing_text = good_record(Echo().identity, "x", 9)
    del missing_text["text"]
    with own.open("ab") as file:
        file.write(b'{"key": "cut sho\n')  # a writer killed mid-line, the line ended by its restart
        file.write(b"[1, 2]\n")  # JSON, but not an object
        file.write(json.dumps(good_record(Echo().identity, "y", 8)).encode()[:-2] + b'\xff"}\n')
        file.write(json.dumps(missing_text).encode() + b"\n")
    CachedBackend(Echo(), tmp_path, "e0").complete(["c"], [3])  # records after the damage
    echo = Echo()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="ray_asd.teacher.cache"):
        cached = CachedBackend(echo, tmp_path, "e1")
    assert cached.stats()["cache_skipped"] == 4 and cached.stats()["cache_records"] == 3
    assert all(c.cached for c in cached.complete(["a", "b", "c"], [1, 2, 3])) and not echo.calls
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"teacher cache {own}: skipped 4 bad records (first at line 3: Invalid control "
        "character at: line 1 column 17 (char 16))"
    ]


def test_files_that_cannot_be_read_are_skipped_and_counted(tmp_path: Path) -> None:
    CachedBackend(Echo(), tmp_path, "e0").complete(["a"], [1])
    (own,) = tmp_path.glob("*/e0.jsonl")
    (tmp_path / "folder.jsonl").mkdir()
    (own.parent / "dead-link.jsonl").symlink_to(tmp_path / "nowhere")
    os.mkfifo(own.parent / "fifo.jsonl")  # opening it would block the start forever
    (tmp_path / "notes.jsonl").write_text('{"note": "not a cache record"}\n\n')
    echo = Echo()
    cached = CachedBackend(echo, tmp_path, "e1")
    assert cached.complete(["a"], [1])[0].cached and not echo.calls
    stats = cached.stats()
    assert (stats["cache_unreadable"], stats["cache_skipped"]) == (3, 2)


def test_a_file_without_read_permission_is_skipped(tmp_path: Path) -> None:
    private = tmp_path / "private.jsonl"
    private.write_text(json.dumps(good_record(Echo().identity, "a", 1)) + "\n")
    private.chmod(0o000)
    script = (
        "import json, sys; from pathlib import Path;"
        "from ray_asd.teacher.cache import CachedBackend; from tests.teacher.echo import Echo;"
        "print(json.dumps(CachedBackend(Echo(), Path(sys.argv[1]), 'e1').stats()))"
    )
    # Root reads any file: its reader runs without the capabilities that allow it.
    drop = "-dac_override,-dac_read_search"
    unprivileged = ["setpriv", f"--inh-caps={drop}", f"--bounding-set={drop}", "--"]
    child = subprocess.run(
        [*(unprivileged if os.getuid() == 0 else []), sys.executable, "-c", script, tmp_path],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parents[2],
        check=True,
    )
    stats = json.loads(child.stdout)
    assert (stats["cache_unreadable"], stats["cache_records"]) == (1, 0)
    assert f"{private}: cannot be read, skipped ([Errno 13] Permission denied" in child.stderr


KILLED_WRITER = """
import resource, signal, sys
from pathlib import Path
from ray_asd.teacher.cache import CachedBackend
from tests.teacher.echo import Echo
cached = CachedBackend(Echo(), Path(sys.argv[1]), "e0")
cached.complete(["first"], [1])
(own,) = Path(sys.argv[1]).glob("*/e0.jsonl")
# The kernel lets the next write reach 60 more bytes, then kills this process with SIGXFSZ
# (which Python ignores unless told otherwise).
signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
limit = own.stat().st_size + 60
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
cached.complete(["second " * 50], [2])
"""


def test_a_writer_killed_mid_line_loses_only_that_record(tmp_path: Path) -> None:
    child = subprocess.run(
        [sys.executable, "-c", KILLED_WRITER, str(tmp_path)], cwd=Path(__file__).parents[2]
    )
    assert child.returncode == -signal.SIGXFSZ
    (own,) = tmp_path.glob("*/e0.jsonl")
    assert not own.read_bytes().endswith(b"\n")  # the second record is cut short
    restarted = CachedBackend(Echo(), tmp_path, "e0")
    assert restarted.complete(["first", "third"], [1, 3])[0].cached
    echo = Echo()
    again = CachedBackend(echo, tmp_path, "e1")
    results = again.complete(["first", "second " * 50, "third"], [1, 2, 3])
    assert [c.cached for c in results] == [True, False, True] and echo.calls == 1
    assert again.stats()["cache_skipped"] == 1


def test_each_model_has_its_folder_and_old_flat_files_stay_readable(tmp_path: Path) -> None:
    ours, theirs = Echo().identity, {"backend": "echo", "model": "other"}
    lines = [good_record(ours, "old", 1), good_record(theirs, "old", 1)]
    (tmp_path / "e0.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    CachedBackend(Echo(theirs), tmp_path, "e0").complete(["new"], [2])
    (their_file,) = (tmp_path / identity_digest(theirs)).glob("*.jsonl")
    their_file.write_bytes(b"\xff\xfe damage in another model's files\n")
    echo = Echo()
    cached = CachedBackend(echo, tmp_path, "e0")
    # Only our record of the flat file is indexed; the other model's folder is not read.
    assert cached.stats()["cache_records"] == 1 and cached.stats()["cache_skipped"] == 0
    assert cached.complete(["old"], [1])[0] == Completion("t", 1, 1, cached=True)
    cached.complete(["new"], [2])
    files = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.jsonl")}
    assert files == {
        "e0.jsonl",
        f"{identity_digest(ours)}/e0.jsonl",
        f"{identity_digest(theirs)}/e0.jsonl",
    }


def test_records_hold_no_secret_of_the_identity(tmp_path: Path) -> None:
    url = "https://alice:hunter2-pass@llm.example/v1?api_key=k-7f3a9c1d"
    echo = Echo({"backend": "openai", "model": "m", "base_url": url})
    CachedBackend(echo, tmp_path, "e0").complete(["a"], [1])
    stored = "".join(p.read_text() for p in tmp_path.rglob("*.jsonl"))
    assert "hunter2" not in stored and "7f3a9c1d" not in stored
    assert json.loads(stored)["identity"]["base_url"] == "https://***@llm.example/v1?api_key=***"


def test_a_cache_folder_that_cannot_be_made_is_one_error_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / identity_digest(Echo().identity)).write_text("a file where a folder goes")
    with pytest.raises(DataError, match=r"^teacher cache .*/e0.jsonl: cannot create or append"):
        CachedBackend(Echo(), tmp_path, "e0")


def write_model(folder: Path) -> None:
    folder.mkdir()
    (folder / "config.json").write_text('{"hidden_size": 8}')
    (folder / "model.safetensors").write_bytes(random.Random(0).randbytes(3 << 20))
    (folder / MARKER_FILE).write_text('{"built_at": 1}')


def test_the_fingerprint_follows_content_not_copies(tmp_path: Path) -> None:
    write_model(tmp_path / "m")
    print_ = model_fingerprint(tmp_path / "m")
    shutil.copytree(tmp_path / "m", tmp_path / "copy")  # new mtimes, another node's copy
    (tmp_path / "copy" / MARKER_FILE).write_text('{"built_at": 2}')
    (tmp_path / "copy" / ".hidden").write_text("editor state")
    assert model_fingerprint(tmp_path / "copy") == print_
    (tmp_path / "copy" / "config.json").write_text('{"hidden_size": 9}')
    assert model_fingerprint(tmp_path / "copy") != print_
    shutil.copy(tmp_path / "m" / "config.json", tmp_path / "copy")
    with (tmp_path / "copy" / "model.safetensors").open("rb+") as weights:
        weights.seek(1 << 20)  # the middle of 3 MiB: inside a window (every 200 KiB or so)
        weights.write(b"\0" * 16)
    assert model_fingerprint(tmp_path / "copy") != print_


def test_revision_and_engine_numerics_join_the_identity_credentials_do_not() -> None:
    config = TeacherConfig(backend="vllm", model="org/m")
    assert "revision" not in sampling_identity(config)  # old records of main stay valid
    pinned = config.model_copy(update={"revision": "abc123"})
    assert sampling_identity(pinned)["revision"] == "abc123"
    settings = config.vllm.model_copy(
        update={"dtype": "float16", "engine_kwargs": {"quantization": "awq", "hf_token": "hf_x"}}
    )
    identity = vllm_identity(config.model_copy(update={"vllm": settings}), None)
    assert identity == sampling_identity(config) | {"dtype": "float16", "quantization": "awq"}


@pytest.mark.slow  # the tiny model generates
def test_a_changed_local_model_folder_gets_no_stale_completion(
    model_cache: Path, tmp_path: Path
) -> None:
    shutil.copytree(resolve_model("tiny:", model_cache), tmp_path / "model")
    config = TeacherConfig(backend="transformers", model=str(tmp_path / "model"))
    config = config.model_copy(update={"max_new_tokens": 4})
    CachedBackend(TransformersBackend(config), tmp_path / "cache", "e0").complete(
        PROMPTS, [1, 2, 3]
    )
    same = CachedBackend(TransformersBackend(config), tmp_path / "cache", "e1")
    assert all(c.cached for c in same.complete(PROMPTS, [1, 2, 3]))
    generation = tmp_path / "model" / "generation_config.json"
    generation.write_text(generation.read_text().replace("{", '{"note": "retrained",', 1))
    changed = CachedBackend(TransformersBackend(config), tmp_path / "cache", "e2")
    assert not any(c.cached for c in changed.complete(PROMPTS, [1, 2, 3]))


def test_an_engine_error_holding_a_token_is_masked(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf-planted-engine-9d1")

    def generate(prompts: list[str], seeds: list[int]) -> list[Completion]:
        raise OSError("401 fetching https://hub/model with token hf-planted-engine-9d1")

    with caplog.at_level(logging.WARNING):
        [failed] = isolate_failures(generate, ["a"], [1], 1, {})
    assert failed.error is not None and "OSError('401 fetching" in failed.error
    assert "hf-planted-engine-9d1" not in failed.error + caplog.text
