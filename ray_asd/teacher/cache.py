"""The teacher cache: completions kept by a hash of (model, sampling, prompt, seed).

Every completion a backend returns is appended to a JSONL file in a folder on the
experiment's storage; at start every file of the folder is read back. A resumed or repeated
experiment that sends a request already answered gets the stored completion without a model
call (it is still charged its tokens, so budgets and curves do not depend on the cache).
Failed requests are not stored: a later run tries them again. One writer per file; several
writers (the engines of a pool, trials run in-process) share a folder.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ray_asd.teacher.base import Completion, CompletionBackend


def request_key(identity: dict[str, Any], prompt: str, seed: int) -> str:
    payload = json.dumps([identity, prompt, seed], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


class CachedBackend:
    """``backend`` with a cache in ``folder``, this writer's records in ``<writer>.jsonl``."""

    def __init__(self, backend: CompletionBackend, folder: Path, writer: str) -> None:
        self.backend = backend
        folder.mkdir(parents=True, exist_ok=True)
        self._file = folder / f"{writer}.jsonl"
        self._stored = _read_folder(folder)
        _end_line(self._file)
        self._counts = {"cache_hits": 0, "cache_misses": 0}
        # An engine may serve several trials at once (openai: a threaded actor).
        self._lock = threading.Lock()

    @property
    def identity(self) -> dict[str, Any]:
        return self.backend.identity

    def complete(self, prompts: Sequence[str], seeds: Sequence[int]) -> list[Completion]:
        identity = self.identity
        keys = [request_key(identity, p, s) for p, s in zip(prompts, seeds, strict=True)]
        results: list[Completion | None] = [
            replace(self._stored[key], cached=True) if key in self._stored else None for key in keys
        ]
        missing = [i for i, result in enumerate(results) if result is None]
        fresh = self.backend.complete([prompts[i] for i in missing], [seeds[i] for i in missing])
        answered = {i: c for i, c in zip(missing, fresh, strict=True) if c.error is None}
        with self._lock:
            self._counts["cache_hits"] += len(keys) - len(missing)
            self._counts["cache_misses"] += len(missing)
            if answered:
                with self._file.open("a", encoding="utf-8") as file:
                    file.write(
                        "".join(
                            json.dumps(_record(keys[i], identity, prompts[i], seeds[i], c)) + "\n"
                            for i, c in answered.items()
                        )
                    )
            self._stored.update({keys[i]: replace(c, retries=0) for i, c in answered.items()})
        for i, completion in zip(missing, fresh, strict=True):
            results[i] = completion
        return [result for result in results if result is not None]

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {**self.backend.stats(), **self._counts}


def _record(
    key: str, identity: dict[str, Any], prompt: str, seed: int, completion: Completion
) -> dict[str, Any]:
    # The request itself is kept too, so the cache doubles as a log of every teacher call.
    return {
        "key": key,
        "identity": identity,
        "prompt": prompt,
        "seed": seed,
        "text": completion.text,
        "prompt_tokens": completion.prompt_tokens,
        "completion_tokens": completion.completion_tokens,
    }


def _read_folder(folder: Path) -> dict[str, Completion]:
    stored: dict[str, Completion] = {}
    for path in sorted(folder.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:  # a line cut short when its writer died: not stored
                continue
            stored[record["key"]] = Completion(
                record["text"], record["prompt_tokens"], record["completion_tokens"]
            )
    return stored


def _end_line(path: Path) -> None:
    """Ends a line a writer killed mid-write left open, so the next record starts clean."""
    if path.is_file() and path.stat().st_size:
        with path.open("rb+") as file:
            file.seek(-1, 2)
            if file.read(1) != b"\n":
                file.write(b"\n")
