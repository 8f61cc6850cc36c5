"""A completion backend for the cache's tests, light enough to import in a child process
(no torch): the cache tests that kill or restrict a writer run it in one."""

from collections.abc import Sequence
from typing import Any

from ray_asd.teacher.base import Completion


class Echo:
    """A completion backend whose answer is a function of the request: the tests that use it
    are about the cache's files, not the model (test_cache's first tests run a real one)."""

    def __init__(self, identity: dict[str, Any] | None = None) -> None:
        self.identity = identity or {"backend": "echo", "model": "m"}
        self.calls = 0

    def complete(self, prompts: Sequence[str], seeds: Sequence[int]) -> list[Completion]:
        self.calls += len(prompts)
        return [Completion(f"{p} #{s}", len(p), 2) for p, s in zip(prompts, seeds, strict=True)]

    def stats(self) -> dict[str, int]:
        return {"requests": self.calls}
