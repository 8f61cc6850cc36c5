"""A persistent child process that answers requests under a hard deadline.

Checkers that hand model output to sympy cannot bound their own time: SIGALRM works only on
the main thread, and Tune trainables and threaded Ray actors call checkers from others. So the
work runs in a child process, started once (lazily) and reused across calls, which a call that
overruns its deadline kills and replaces. The child is a plain script run by path (no
multiprocessing): no ``__main__`` re-import, no fork of a threaded parent, and it imports only
what it needs. One request at a time travels as a JSON line each way.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import select
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

READY = "ready"


class DeadlineWorker:
    """A child process running ``script``: one JSON request per line in, one JSON reply out.

    Thread-safe: calls are serialised, so a stalled call delays the others by at most its
    deadline. The start-up (imports: 1.6-3 s for math-verify on 2 busy cores) does not count
    against a deadline.
    """

    def __init__(self, script: Path, deadline_seconds: float, start_seconds: float = 120.0):
        """Args:
        script: the child's program; it prints ``ready`` once, then answers each line.
        deadline_seconds: how long one request may take before the child is killed.
        start_seconds: how long the child may take to print ``ready``.
        """
        self.script = script
        self.deadline_seconds = deadline_seconds
        self.start_seconds = start_seconds
        self.restarts = 0
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._ready = False
        self._owner = 0  # the pid that started the child: a forked copy of us must not share it
        atexit.register(self.close)

    def ask(self, request: Any) -> tuple[Any, str | None]:
        """The child's reply to ``request``, or ``(None, why there is none)``."""
        with self._lock:
            problem = self._await_ready()
            if problem is not None:
                return None, problem
            assert self._process is not None and self._process.stdin is not None
            try:
                self._process.stdin.write(json.dumps(request).encode() + b"\n")
                self._process.stdin.flush()
            except OSError:
                return None, self._replace(f"the {self.script.stem} process had exited")
            reply = self._read_line(self.deadline_seconds)
            if reply is None:
                return None, self._replace(
                    f"no verdict within {self.deadline_seconds:g} s; {self.script.stem} restarted"
                )
            if not reply:
                return None, self._replace(f"the {self.script.stem} process died")
            return json.loads(reply), None

    def close(self) -> None:
        """Ends the child (it also ends by itself when our end of its stdin closes)."""
        process, self._process = self._process, None
        if process is not None and self._owner == os.getpid():
            process.kill()
            process.wait()

    def _start(self) -> None:
        self._process = subprocess.Popen(
            # -P: the script's folder is not put on sys.path, where it could shadow modules.
            [sys.executable, "-P", str(self.script)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
        )
        self._ready, self._owner = False, os.getpid()

    def _await_ready(self) -> str | None:
        if self._owner != os.getpid():
            self._process = None  # inherited through fork: the child belongs to our parent
        if self._process is None or self._process.poll() is not None:
            self._start()
        if self._ready:
            return None
        started = time.monotonic()
        line = self._read_line(self.start_seconds)
        if line is None or line.strip() != READY.encode():
            self.close()
            return f"{self.script.stem} did not start within {self.start_seconds:g} s"
        self._ready = True
        log.debug("%s ready in %.2f s", self.script.stem, time.monotonic() - started)
        return None

    def _read_line(self, seconds: float) -> bytes | None:
        """The child's next line; None if none came within ``seconds``, b"" if it exited."""
        assert self._process is not None and self._process.stdout is not None
        readable, _, _ = select.select([self._process.stdout], [], [], seconds)
        return self._process.stdout.readline() if readable else None

    def _replace(self, reason: str) -> str:
        """Kills the child and starts the next one now, so it warms up before the next call."""
        self.close()
        self.restarts += 1
        self._start()
        return reason
