import os
import subprocess
import sys
from pathlib import Path

import pytest
from ray.exceptions import ActorDiedError, RayTaskError

from ray_asd.errors import ConfigError, DataError
from ray_asd.failure import MAX_MESSAGE, check_writable, root_cause

# What Ray's RayTaskError carries as its traceback text (a real one, from an actor's __init__,
# colour codes included).
TRACEBACK = (
    "\x1b[36mray::CompletionEngine.__init__()\x1b[39m (pid=177, ip=127.0.0.1)\n"
    "           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n"
    '  File "/work/main/ray_asd/teacher/vllm.py", line 10, in __init__\n'
    '    raise ConfigError("teacher.model: bad\\nsecond line")\n'
    "ray_asd.errors.ConfigError: teacher.model: bad\n"
    "second line"
)


def task_error(cause: BaseException) -> BaseException:
    """The error a driver gets from ``ray.get`` of a task or a Tune trial that raised ``cause``."""
    return RayTaskError("train", TRACEBACK, cause).as_instanceof_cause()


def test_a_task_error_unwraps_to_its_cause() -> None:
    cause = root_cause(task_error(DataError("train.jsonl: line 3: invalid JSON")))
    assert (cause.type, cause.line, cause.input) == (
        "DataError",
        "train.jsonl: line 3: invalid JSON",
        True,
    )


def test_a_chained_wrapper_unwraps_through_raise_from() -> None:
    from ray.tune.error import TuneError

    try:
        try:
            raise task_error(ConfigError("budget.warmup: 99 > 40 seeds"))
        except Exception as inner:
            raise TuneError("trial failed") from inner
    except TuneError as outer:
        assert root_cause(outer).line == "budget.warmup: 99 > 40 seeds"


def test_an_actor_that_died_in_init_is_read_from_its_traceback_text() -> None:
    error = ActorDiedError(RayTaskError("__init__", TRACEBACK, ConfigError("lost")))
    cause = root_cause(error)
    assert (cause.type, cause.message, cause.input) == (
        "ConfigError",
        "teacher.model: bad\nsecond line",
        True,
    )
    assert cause.one_line == "ConfigError: teacher.model: bad; second line"


def test_an_unexpected_error_is_one_redacted_line() -> None:
    error = RuntimeError("GET https://user:hunter22@host/x?token=abc failed\n  retry: no")
    cause = root_cause(task_error(error))
    assert not cause.input and not cause.explained
    assert cause.line == "RuntimeError: GET https://***@host/x?token=*** failed retry: no"
    assert len(root_cause(ValueError("x" * 10_000)).message) == MAX_MESSAGE


def test_an_os_error_on_a_path_is_an_input_error() -> None:
    cause = root_cause(PermissionError(13, "Permission denied", "/data/train.jsonl"))
    assert cause.input and cause.line.startswith("PermissionError: ")
    assert not root_cause(ConnectionResetError(104, "reset")).input


def test_writable_folders_pass_and_leave_nothing(tmp_path: Path) -> None:
    check_writable(tmp_path, "--out")
    check_writable(tmp_path / "new" / "deeper", "--out")
    assert list(tmp_path.iterdir()) == []


def test_a_file_where_a_folder_must_be(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(ConfigError, match=r"^--out .*/f: not a folder \(a file is there\)$"):
        check_writable(tmp_path / "f", "--out")
    with pytest.raises(ConfigError, match=r"/f/x: not a folder \(a file is there: .*/f\)$"):
        check_writable(tmp_path / "f" / "x", "s: storage")
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


def run_read_only(folder: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """``argv`` in a private mount namespace where ``folder`` is mounted read-only: the real
    EROFS a read-only disk gives (root ignores chmod, and the tests run as root)."""
    script = f'mount --bind -o ro "{folder}" "{folder}" && exec "$@"'
    return subprocess.run(
        ["unshare", "-m", "sh", "-c", script, "sh", *argv],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )


def test_a_read_only_folder_is_named_with_the_probe_tried(tmp_path: Path) -> None:
    (tmp_path / "kept").write_text("x")
    code = (
        "import sys; from pathlib import Path; from ray_asd.failure import check_writable\n"
        "try:\n"
        "    check_writable(Path(sys.argv[1]), '--out')\n"
        "except Exception as e:\n"
        "    print(e)"
    )
    result = run_read_only(tmp_path, sys.executable, "-c", code, str(tmp_path / "x"))
    assert result.returncode == 0, result.stderr
    probe = tmp_path / ".ray-asd-probe-"
    assert result.stdout.startswith(f"--out {tmp_path / 'x'}: read-only (tried to create {probe}")
    assert [p.name for p in tmp_path.iterdir()] == ["kept"]
