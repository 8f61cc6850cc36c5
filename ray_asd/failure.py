"""What went wrong, in one line: the root cause of an error (through Ray's wrappers) and the
check that a folder the user named can be written.

Ray hands a driver the errors of its workers wrapped: ``RayTaskError(ConfigError)`` (a task or
a Tune trial raised; the original is its ``cause``), ``ActorDiedError`` (an actor's
``__init__`` raised; only the text of the original's traceback survives), Tune errors chained
with ``raise ... from``. Both the CLI's last-resort handler and the driver's per-trial FAILED
lines print the original's type and message instead of the wrapper's traceback.

No Ray imports: Ray's classes are recognised by their module, so `ray-asd trial` and
`ray-asd data check` never load Ray.
"""

from __future__ import annotations

import errno
import os
import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from ray_asd.errors import ConfigError, DataError
from ray_asd.redact import redact_text

# The errors whose message is written for the user: printed as they are, exit code 2.
INPUT_ERRORS = (ConfigError, DataError, ValidationError)
# A message longer than this is cut: one line on a terminal, a few at most.
MAX_MESSAGE = 500
# Wrappers nest a few deep (Tune's error around a RayTaskError around the trial's error).
MAX_DEPTH = 10
# A traceback's last frame line; the exception's "module.Type: message" follows its code lines.
_FRAME = re.compile(r'^\s+File ".*", line \d+')
_RAISED = re.compile(r"^(?P<type>[A-Za-z_][\w.]*): ?(?P<message>.*)$")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class Cause:
    """The root cause of an error: its class name, its message (redacted) and whether it is an
    input error (bad config, data, or a path the user gave), the user's to fix."""

    type: str
    message: str
    input: bool

    @property
    def explained(self) -> bool:
        """Whether the message was written for the user (a ray-asd error): no traceback helps."""
        return self.type in _INPUT_NAMES

    @property
    def line(self) -> str:
        """What to print after ``error:``: a ray-asd message as it is, else ``Type: message``."""
        if self.explained:
            return self.message
        return f"{self.type}: {self.message}" if self.message else self.type

    @property
    def one_line(self) -> str:
        """``Type: message`` on one line (a trial's FAILED line): a message's lines joined."""
        message = "; ".join(line.strip() for line in self.message.splitlines() if line.strip())
        return f"{self.type}: {message}" if message else self.type


_INPUT_NAMES = frozenset(kind.__name__ for kind in INPUT_ERRORS)


def root_cause(error: BaseException) -> Cause:
    """The error behind ``error``'s Ray and Tune wrappers, as a :class:`Cause`.

    Args:
        error: what a command or a trial raised.

    Returns:
        The original's type and message; ConfigError and DataError messages keep their
        lines (one per problem), others are joined into one line and cut at MAX_MESSAGE.
    """
    for _ in range(MAX_DEPTH):
        inner = _wrapped(error)
        if inner is None:
            break
        error = inner
    if _is_ray(error):
        parsed = _from_traceback_text(str(error))
        if parsed is not None:
            return parsed
    if isinstance(error, ValidationError):  # a DataSource built from flags
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in error.errors()
        )
        return Cause("ValidationError", redact_text(problems), input=True)
    kind = type(error).__name__
    if isinstance(error, ConfigError | DataError):  # subclasses too (registry.ParameterError)
        base = "ConfigError" if isinstance(error, ConfigError) else "DataError"
        return Cause(base, redact_text(str(error)), input=True)
    # An OSError with a file name is about a path: a config, data file, storage or --out.
    path_error = isinstance(error, OSError) and error.filename is not None
    return Cause(kind, _one_line(str(error)), input=path_error)


def _wrapped(error: BaseException) -> BaseException | None:
    """The error a Ray or Tune wrapper carries, if ``error`` is one."""
    if not _is_ray(error):
        return None
    cause = getattr(error, "cause", None)
    if isinstance(cause, BaseException) and cause is not error:
        return cause
    return error.__cause__


def _is_ray(error: BaseException) -> bool:
    return type(error).__module__.split(".")[0] == "ray"


def _from_traceback_text(text: str) -> Cause | None:
    """The ``module.Type: message`` after the last frame of a traceback carried as text (an
    actor that failed in ``__init__``); the lines after it belong to the message."""
    lines = _ANSI.sub("", text).splitlines()
    frames = [i for i, line in enumerate(lines) if _FRAME.match(line)]
    if not frames:
        return None
    rest = lines[frames[-1] + 1 :]
    for i, line in enumerate(rest):
        if line[:1].isspace():  # the frame's code and its ^^^ markers
            continue
        match = _RAISED.match(line)
        if match is None:
            return None
        kind = match["type"].rsplit(".", 1)[-1]
        message = "\n".join([match["message"], *rest[i + 1 :]]).strip()
        base = _input_base(kind)
        if base is not None:
            return Cause(base, redact_text(message), input=True)
        return Cause(kind, _one_line(message), input=False)
    return None


def _input_base(name: str) -> str | None:
    """The input error class that ``name`` is or derives from (of the classes imported)."""
    for base in INPUT_ERRORS:
        family: list[type] = [base]
        while family:
            kind = family.pop()
            if kind.__name__ == name:
                return base.__name__
            family += kind.__subclasses__()
    return None


def _one_line(text: str) -> str:
    line = " ".join(redact_text(text).split())
    return line if len(line) <= MAX_MESSAGE else line[: MAX_MESSAGE - 3] + "..."


def check_writable(folder: Path, label: str) -> None:
    """Checks that ``folder`` is, or can be created as, a folder this process can write, by
    creating and removing a probe file in it or in its nearest existing parent: nothing is
    left behind, so a run refused later leaves storage as it was.

    Args:
        folder: the folder a command will write (storage, ``--out``).
        label: what names it in the message, e.g. ``"--out"`` or ``"x.yaml: storage"``.

    Raises:
        ConfigError: one line naming the folder and what was tried: a file where a folder
            must be, or a read-only (or otherwise unwritable) place.
    """
    existing = folder
    try:
        while not existing.exists():
            if existing.parent == existing:
                break
            existing = existing.parent
        is_dir = existing.is_dir()
    except OSError as error:
        raise ConfigError(f"{label} {folder}: cannot be reached ({error.strerror})") from None
    if not is_dir:
        where = "" if existing == folder else f": {existing}"
        raise ConfigError(f"{label} {folder}: not a folder (a file is there{where})")
    probe = existing / f".ray-asd-probe-{os.getpid()}"
    try:
        os.close(os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        probe.unlink()
    except OSError as error:
        denied = error.errno in (errno.EROFS, errno.EACCES, errno.EPERM)
        reason = "read-only" if denied else f"not writable ({error.strerror})"
        raise ConfigError(f"{label} {folder}: {reason} (tried to create {probe})") from None
