"""The teacher cache over a real backend (transformers, tiny model): what was answered once
is never computed again, also by another writer or after a restart; failures are not kept."""

from pathlib import Path

import pytest

from ray_asd.config import TeacherConfig
from ray_asd.teacher import CachedBackend, Completion
from ray_asd.teacher.base import isolate_failures
from ray_asd.teacher.transformers import TransformersBackend

PROMPTS = ["Write a problem about apples.", "Write a problem about pens.", "Add 2 and 3."]


@pytest.fixture(scope="module")
def backend(model_cache: Path) -> TransformersBackend:
    config = TeacherConfig(backend="transformers", model="tiny:", max_new_tokens=8)
    return TransformersBackend(config, model_cache)


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


def test_another_writer_and_a_restart_read_every_file(
    backend: TransformersBackend, tmp_path: Path
) -> None:
    first = CachedBackend(backend, tmp_path, "e0").complete(PROMPTS, [1, 2, 3])
    with (tmp_path / "e0.jsonl").open("a") as file:
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
