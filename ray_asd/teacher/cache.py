"""The teacher cache: completions kept by a hash of (model, sampling, prompt, seed).

Every completion a backend returns is appended to a JSONL file on the experiment's storage,
``<folder>/<identity digest>/<writer>.jsonl``: one subfolder per model and sampling settings
(:func:`identity_digest`), one file per writer in it. A resumed or repeated experiment that
sends a request already answered gets the stored completion without a model call (it is still
charged its tokens, so budgets and curves do not depend on the cache). Failed requests are not
stored: a later run tries them again. One writer per file; several writers (the engines of a
pool, trials run in-process, other experiments on the same storage) share a folder.

At start an engine indexes only its own subfolder, plus the flat ``<folder>/*.jsonl`` files
of versions before the subfolders (records of other models in them are passed over): key ->
(file, byte offset), the completion text is read back on a hit. So an engine's start costs
what its own model's records cost, and the storage's other experiments can neither slow it
down nor, by damaging their files, stop it. Damage of its own files cannot either: a bad
record (a line cut short by a killed writer, not JSON, not an object, a field missing or of
the wrong type, bytes that are not UTF-8) is skipped and counted, with one warning line per
file; a file that cannot be read (permissions, a folder named ``*.jsonl``) likewise.

Nothing secret is persisted: the backend's identity passes through :func:`ray_asd.redact.redact`
before keys, folder names and records are made from it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ray_asd.errors import DataError
from ray_asd.redact import redact
from ray_asd.teacher.base import Completion, CompletionBackend

log = logging.getLogger(__name__)

# The fields a record needs to answer a request, and their JSON types (bool is not an int).
_FIELDS: dict[str, type] = {
    "key": str,
    "identity": dict,
    "text": str,
    "prompt_tokens": int,
    "completion_tokens": int,
}


def request_key(identity: dict[str, Any], prompt: str, seed: int) -> str:
    payload = json.dumps([identity, prompt, seed], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def identity_digest(identity: dict[str, Any]) -> str:
    """The name of the subfolder holding the records of ``identity`` (64 bits of a sha256:
    a collision would only make two models share a folder, their keys still differ)."""
    payload = json.dumps(identity, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


class CachedBackend:
    """``backend`` with a cache in ``folder``, this writer's records in
    ``<identity digest>/<writer>.jsonl``.

    Raises:
        DataError: this writer's file cannot be created or written (read-only storage).
    """

    def __init__(self, backend: CompletionBackend, folder: Path, writer: str) -> None:
        self.backend = backend
        self._identity: dict[str, Any] = redact(backend.identity)
        own = folder / identity_digest(self._identity)
        self._file = own / f"{writer}.jsonl"
        try:
            own.mkdir(parents=True, exist_ok=True)
            _end_line(self._file)
        except OSError as error:
            raise DataError(
                f"teacher cache {self._file}: cannot create or append to it ({error})"
            ) from error
        # Flat files first: a key found twice is answered by the newer layout's record.
        paths = sorted(folder.glob("*.jsonl")) + sorted(own.glob("*.jsonl"))
        self._files, self._where, skipped, unreadable = _index(paths, self._identity)
        if self._file not in self._files:  # unreadable right after it was opened: still ours
            self._files.append(self._file)
        self._own = self._files.index(self._file)
        self._counts = {
            "cache_hits": 0,
            "cache_misses": 0,
            "cache_skipped": skipped,
            "cache_unreadable": unreadable,
            "cache_records": len(self._where),
        }
        # An engine may serve several trials at once (openai: a threaded actor).
        self._lock = threading.Lock()

    @property
    def identity(self) -> dict[str, Any]:
        """The backend's identity, secrets masked (teachers record its model in items)."""
        return self._identity

    def complete(self, prompts: Sequence[str], seeds: Sequence[int]) -> list[Completion]:
        keys = [request_key(self._identity, p, s) for p, s in zip(prompts, seeds, strict=True)]
        with self._lock:
            spots = [self._where.get(key) for key in keys]
        results = [
            None if spot is None else self._read(key, *spot)
            for key, spot in zip(keys, spots, strict=True)
        ]
        missing = [i for i, result in enumerate(results) if result is None]
        fresh = self.backend.complete([prompts[i] for i in missing], [seeds[i] for i in missing])
        answered = {i: c for i, c in zip(missing, fresh, strict=True) if c.error is None}
        with self._lock:
            self._counts["cache_hits"] += len(keys) - len(missing)
            self._counts["cache_misses"] += len(missing)
            if answered:
                self._append({keys[i]: (prompts[i], seeds[i], c) for i, c in answered.items()})
        for i, completion in zip(missing, fresh, strict=True):
            results[i] = completion
        return [result for result in results if result is not None]

    def stats(self) -> dict[str, int]:
        """The backend's counters, and the cache's: hits, misses, records skipped as bad
        (at start, or found changed on a hit), files that could not be read, and the records
        of this model found at start."""
        with self._lock:
            return {**self.backend.stats(), **self._counts}

    def _read(self, key: str, number: int, offset: int) -> Completion | None:
        """The completion stored for ``key``; None (a miss) if its line no longer holds it."""
        path = self._files[number]
        try:
            with path.open("rb") as file:
                file.seek(offset)
                record = _parse(file.readline())
            if record["key"] != key:
                raise ValueError("another record at its offset")
        except (OSError, ValueError) as error:
            log.warning(
                "teacher cache %s: a record changed since start (%s): asking the model", path, error
            )
            with self._lock:
                self._where.pop(key, None)
                self._counts["cache_skipped"] += 1
            return None
        return Completion(
            record["text"], record["prompt_tokens"], record["completion_tokens"], cached=True
        )

    def _append(self, answered: dict[str, tuple[str, int, Completion]]) -> None:
        """Appends records of ``answered`` (key -> request, completion) and indexes them;
        called under the lock."""
        lines = {
            key: (json.dumps(_record(key, self._identity, *request)) + "\n").encode()
            for key, request in answered.items()
        }
        with self._file.open("ab") as file:
            offset = file.seek(0, os.SEEK_END)
            file.write(b"".join(lines.values()))
        for key, line in lines.items():
            self._where[key] = (self._own, offset)
            offset += len(line)


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


def _parse(line: bytes) -> dict[str, Any]:
    """The record on ``line``.

    Raises:
        ValueError: not UTF-8, not JSON (a line cut short), not an object, or a field of
            :data:`_FIELDS` missing or of the wrong type, or a negative token count.
    """
    record = json.loads(line.decode("utf-8"))
    if type(record) is not dict:
        raise ValueError(f"a JSON {type(record).__name__}, not an object")
    for name, kind in _FIELDS.items():
        if type(record.get(name)) is not kind:
            raise ValueError(f"field {name!r} missing or not a {kind.__name__}")
    if record["prompt_tokens"] < 0 or record["completion_tokens"] < 0:
        raise ValueError("a negative token count")
    return record


def _index(
    paths: list[Path], identity: dict[str, Any]
) -> tuple[list[Path], dict[str, tuple[int, int]], int, int]:
    """Indexes the records of ``identity`` in ``paths``.

    Returns:
        The files read, key -> (file number, byte offset of its line), the number of bad
        records skipped and the number of files that could not be read.
    """
    start = time.perf_counter()
    files: list[Path] = []
    where: dict[str, tuple[int, int]] = {}
    skipped = unreadable = 0
    for path in paths:
        try:
            if not path.is_file():  # a folder, a FIFO (opening one would block), a dead link
                raise OSError("not a regular file")
            skipped += _index_file(path, len(files), identity, where)
        except OSError as error:
            log.warning("teacher cache %s: cannot be read, skipped (%s)", path, error)
            unreadable += 1
            continue
        files.append(path)
    log.info(
        "teacher cache: %d records of this model indexed from %d files in %.2f s",
        len(where),
        len(files),
        time.perf_counter() - start,
    )
    return files, where, skipped, unreadable


def _index_file(
    path: Path, number: int, identity: dict[str, Any], where: dict[str, tuple[int, int]]
) -> int:
    """Adds the records of ``identity`` in ``path`` (file ``number``) to ``where``; returns
    the number of bad records skipped, warned about in one line."""
    skipped, first = 0, ""
    with path.open("rb") as file:
        offset = 0
        for line_number, line in enumerate(file, 1):
            try:
                record = _parse(line)
            except ValueError as error:
                skipped += 1
                first = first or f"line {line_number}: {error}"
            else:
                if record["identity"] == identity:
                    where[record["key"]] = (number, offset)
            offset += len(line)
    if skipped:
        log.warning("teacher cache %s: skipped %d bad records (first at %s)", path, skipped, first)
    return skipped


def _end_line(path: Path) -> None:
    """Creates this writer's file, or ends a line that a writer killed mid-write left open
    so that the next record starts clean."""
    with path.open("ab+") as file:
        size = file.seek(0, os.SEEK_END)
        if size:
            file.seek(size - 1)
            if file.read(1) != b"\n":
                file.write(b"\n")
