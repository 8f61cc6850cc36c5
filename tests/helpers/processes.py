"""Real servers (mlflow, vLLM's OpenAI server) as subprocesses on loopback, for fixtures."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def http_server(
    command: list[str],
    health_url: str,
    log_path: Path,
    *,
    env: dict[str, str] | None = None,
    start_timeout: float = 120,
) -> Iterator[None]:
    """Runs ``command`` until the block ends, once ``health_url`` answers 200.

    Raises:
        RuntimeError: the process exited or did not answer in time (with its log's tail).
    """
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
        deadline = time.monotonic() + start_timeout
        while True:
            try:
                with urllib.request.urlopen(health_url, timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                tail = log_path.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{' '.join(command[:4])} did not start:\n{tail}")
            time.sleep(0.5)
        try:
            yield
        finally:
            server.terminate()
            server.wait(timeout=60)
