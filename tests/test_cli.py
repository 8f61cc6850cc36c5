import json
import subprocess
import sys
from pathlib import Path

import pytest

from ray_asd.cli import main

GOOD = '{"question": "What is 2 + 3?", "answer": "2 + 3 = 5\\n#### 5"}\n'


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_check_passes_on_good_file(tmp_path: Path, capsys) -> None:
    path = tmp_path / "good.jsonl"
    path.write_text(GOOD * 3, encoding="utf-8")
    code, out, _ = run(capsys, "data", "check", "--task", "gsm8k", "--path", str(path))
    assert code == 0
    assert "rows:                       3" in out
    assert "reference answers extract:  3/3 (100.0%)" in out
    assert "OK: every reference answer extracts and self-checks" in out


def test_check_lists_failing_rows_and_exits_1(tmp_path: Path, capsys) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_text(
        GOOD + '{"question": "q", "answer": "forgot the marker"}\n' + GOOD, encoding="utf-8"
    )
    code, out, _ = run(capsys, "data", "check", "--task", "gsm8k", "--path", str(path))
    assert code == 1
    assert "row 2 (id 2): no final answer in the reference answer: 'forgot the marker'" in out


def test_check_json(tmp_path: Path, capsys) -> None:
    path = tmp_path / "good.jsonl"
    path.write_text(GOOD * 2, encoding="utf-8")
    code, out, _ = run(capsys, "data", "check", "--task", "gsm8k", "--path", str(path), "--json")
    report = json.loads(out)
    assert code == 0
    assert (report["rows"], report["extracted"], report["self_correct"], report["n_failures"]) == (
        2,
        2,
        2,
        0,
    )


def test_check_builtin_game24(capsys) -> None:
    code, out, _ = run(capsys, "data", "check", "--task", "game24", "--split", "all", "--json")
    report = json.loads(out)
    assert code == 0
    assert report["rows"] == report["self_correct"] == 1362


def test_check_generic_with_checker_and_columns(tmp_path: Path, capsys) -> None:
    path = tmp_path / "mc.csv"
    path.write_text("prompt,label\nPick one,(B)\nAnother,C\n", encoding="utf-8")
    code, out, _ = run(
        capsys,
        "data",
        "check",
        "--task",
        "generic",
        "--checker",
        "choice",
        "--path",
        str(path),
        "--question-column",
        "prompt",
        "--answer-column",
        "label",
    )
    assert code == 0, out


@pytest.mark.parametrize(
    ("files", "argv", "message"),
    [
        (
            {"e.jsonl": ""},
            ["--task", "gsm8k", "--path", "{dir}/e.jsonl"],
            "e.jsonl: the file is empty",
        ),
        (
            {"b.jsonl": GOOD + "{oops\n"},
            ["--task", "gsm8k", "--path", "{dir}/b.jsonl"],
            "b.jsonl: line 2: invalid JSON",
        ),
        (
            {"c.jsonl": '{"q": "x", "answer": "#### 1"}\n'},
            ["--task", "gsm8k", "--path", "{dir}/c.jsonl"],
            "c.jsonl: line 1: no question column 'question'",
        ),
        ({}, ["--task", "gsm8k", "--path", "{dir}/missing.jsonl"], "missing.jsonl: no such file"),
        (
            {},
            ["--task", "gsm9k", "--path", "x.jsonl"],
            "unknown task 'gsm9k'; did you mean 'gsm8k'",
        ),
        (
            {},
            ["--task", "generic", "--checker", "fuzzy", "--path", "x.jsonl"],
            "unknown checker 'fuzzy'",
        ),
        (
            {},
            ["--task", "gsm8k", "--checker", "exact", "--path", "x.jsonl"],
            "unknown parameter(s) ['checker']",
        ),
        ({}, ["--task", "generic"], "no built-in or default hub data"),
        (
            {"g.jsonl": GOOD},
            ["--task", "gsm8k", "--path", "{dir}/g.jsonl", "--limit", "0"],
            "limit: Input should be greater than or equal to 1",
        ),
        ({}, ["--task", "game24", "--split", "dev"], "unknown split 'dev'"),
    ],
)
def test_check_errors_exit_2_with_one_line(tmp_path: Path, capsys, files, argv, message) -> None:
    for name, content in files.items():
        (tmp_path / name).write_text(content, encoding="utf-8")
    code, out, err = run(
        capsys, "data", "check", *[a.replace("{dir}", str(tmp_path)) for a in argv]
    )
    assert code == 2
    assert out == ""
    assert err.startswith("ray-asd: error: ") and message in err
    assert err.count("\n") == 1


def test_path_and_hub_are_exclusive(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "check", "--task", "gsm8k", "--path", "a.jsonl", "--hub", "openai/gsm8k"])
    assert exit_info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


SMOKE = Path(__file__).resolve().parents[1] / "configs" / "smoke.yaml"


def closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed again when the block ends


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--set", "grid.strategy=[loss, nonsense]"], "smoke.yaml: grid.strategy[1]: "),
        (["--set", "grid.task=[nope]"], "smoke.yaml: grid.task[0]: "),
        (["--set", "budget.per_iteration=-1"], "smoke.yaml: budget.per_iteration: "),
        (["--set", "student.model=./missing"], "smoke.yaml: student.model: "),
        (["--set", "storage=s3://bucket/runs"], "smoke.yaml: storage: "),
        (
            ["--set", "grid.strategy=[loss]", "--set", "tune.scheduler.metric=acuracy"],
            "smoke.yaml: tune.scheduler.metric: 'acuracy' is not a metric every "
            "trial reports at each iteration; did you mean 'accuracy'? (known: accuracy, ",
        ),
        (  # smoke's grid compares loss and random
            ["--set", "tune.scheduler.grace_period=1", "--set", "budget.iterations=3"],
            "smoke.yaml: tune.scheduler: the grid compares strategies (loss, random)",
        ),
        (["--address", "127.0.0.1:{port}"], "--address 127.0.0.1:{port}: cannot connect"),
        (["--address", "ray://nohost"], "--address ray://nohost: expected ray://HOST:PORT"),
        (  # ray_asd.preflight, called by the CLI before Ray
            [
                *("--set", "teacher.backend=openai", "--set", "teacher.model=gpt-x"),
                *("--set", "teacher.openai.api_key_env=RAY_ASD_TEST_NO_SUCH_KEY"),
            ],
            "smoke.yaml: teacher.openai.api_key_env: the environment variable "
            "RAY_ASD_TEST_NO_SUCH_KEY is not set",
        ),
    ],
)
def test_run_rejects_bad_experiments_before_ray_starts(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch, argv: list[str], message: str
) -> None:
    import ray

    def no_ray(*args: object, **kwargs: object) -> None:
        raise AssertionError("ray.init was called")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", no_ray)
    port = closed_port()
    argv = [a.format(port=port) for a in argv]
    code, _, err = run(capsys, "run", str(SMOKE), "--set", f"storage={tmp_path}", *argv)
    assert code == 2
    assert err.count("\n") == 1, err
    assert message.format(port=port) in err
    assert list(tmp_path.iterdir()) == []  # storage as it was


@pytest.mark.slow  # a fresh interpreter
def test_unwritable_storage_fails_before_ray_or_torch_is_imported(tmp_path: Path) -> None:
    storage = tmp_path / "runs"
    storage.write_text("not a folder")
    code = (
        "import sys\n"
        "from ray_asd.cli import main\n"
        f"code = main(['run', {str(SMOKE)!r}, '--set', 'storage={storage}'])\n"
        "heavy = sorted({'ray', 'torch'} & set(sys.modules))\n"
        "assert not heavy, heavy\n"
        "sys.exit(code)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.count("\n") == 1 and "not a folder (a file is there" in done.stderr


def test_storage_that_is_a_file_is_one_line_before_ray(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ray

    monkeypatch.setattr(ray, "init", lambda *a, **k: pytest.fail("ray.init was called"))
    storage = tmp_path / "runs"
    storage.write_text("not a folder")
    code, out, err = run(capsys, "run", str(SMOKE), "--set", f"storage={storage}")
    assert code == 2 and out == ""
    there = f"not a folder (a file is there: {storage})"
    assert err == f"ray-asd: error: {SMOKE}: storage {storage / 'smoke'}: {there}\n"
    assert [p.name for p in tmp_path.iterdir()] == [
        "runs"
    ] and storage.read_text() == "not a folder"


def test_out_that_is_a_file_is_one_line(tmp_path: Path, capsys) -> None:
    out_file = tmp_path / "out"
    out_file.write_text("x")
    code, out, err = run(capsys, "trial", "--out", str(out_file))
    assert (code, out) == (2, "")
    assert err == f"ray-asd: error: --out {out_file}: not a folder (a file is there)\n"
    assert out_file.read_text() == "x"


@pytest.mark.slow  # each command in a process of its own (1.5-16 s: `run` imports Ray)
@pytest.mark.parametrize(
    "argv",
    [
        ["trial", "--out", "{ro}/trial"],
        ["run", str(SMOKE), "--set", "storage={ro}/runs"],
        ["report", "smoke", "--tracking-uri", "sqlite:///{ro}/mlflow.db", "--out", "{ro}/r"],
    ],
)
def test_a_read_only_output_folder_is_one_line(tmp_path: Path, argv: list[str]) -> None:
    # Through the installed console script: its exit code and stderr are the user's.
    from tests.test_failure import run_read_only

    read_only = tmp_path / "ro"
    read_only.mkdir()
    (read_only / "kept").write_text("x")
    script = Path(sys.executable).with_name("ray-asd")
    argv = [a.format(ro=read_only) for a in argv]
    result = run_read_only(read_only, str(script), *argv)
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("ray-asd: error: ")
    assert (
        f"{read_only}/" in line
        and f": read-only (tried to create {read_only}/.ray-asd-probe-" in line
    )
    assert [p.name for p in read_only.iterdir()] == ["kept"]


def failing_task(error: BaseException):
    def make_task(*args: object, **kwargs: object) -> None:
        raise error

    return make_task


@pytest.mark.parametrize(
    ("error", "code", "line"),
    [
        (
            RuntimeError("boom at https://user:pa55word@host/x\n  second line"),
            1,
            "RuntimeError: boom at https://***@host/x second line",
        ),
        (
            PermissionError(13, "Permission denied", "/data/train.jsonl"),
            2,
            "PermissionError: [Errno 13] Permission denied: '/data/train.jsonl'",
        ),
    ],
)
def test_an_unexpected_error_is_one_line_and_a_hint(
    capsys, monkeypatch: pytest.MonkeyPatch, error: BaseException, code: int, line: str
) -> None:
    import ray_asd.tasks
    from ray_asd.cli import HINT

    monkeypatch.delenv("RAY_ASD_DEBUG", raising=False)
    monkeypatch.setattr(ray_asd.tasks, "make_task", failing_task(error))
    got, out, err = run(capsys, "data", "check", "--task", "gsm8k")
    assert (got, out) == (code, "")
    assert err.splitlines() == [f"ray-asd: error: {line}", HINT]


@pytest.mark.parametrize(
    ("argv", "env"),
    [
        (["--debug", "data", "check", "--task", "gsm8k"], None),
        (["data", "check", "--task", "gsm8k", "--debug"], None),
        (["data", "check", "--task", "gsm8k"], "1"),
    ],
)
def test_debug_prints_the_traceback(
    capsys, monkeypatch: pytest.MonkeyPatch, argv: list[str], env: str | None
) -> None:
    import ray_asd.tasks

    if env is None:
        monkeypatch.delenv("RAY_ASD_DEBUG", raising=False)
    else:
        monkeypatch.setenv("RAY_ASD_DEBUG", env)
    monkeypatch.setattr(ray_asd.tasks, "make_task", failing_task(RuntimeError("boom")))
    code, _, err = run(capsys, *argv)
    assert code == 1
    assert err.startswith("Traceback (most recent call last):")
    assert err.splitlines()[-1] == "ray-asd: error: RuntimeError: boom"


def test_ctrl_c_is_one_line_and_exit_130(capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    import ray_asd.tasks

    monkeypatch.setattr(ray_asd.tasks, "make_task", failing_task(KeyboardInterrupt()))
    assert run(capsys, "data", "check", "--task", "gsm8k") == (130, "", "ray-asd: interrupted\n")


def test_export_takes_a_cell_or_best_not_both(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "runs/x", "--cell", "loss-tiny-arith-seed0", "--best"])
    assert exit_info.value.code == 2
    assert "argument --best: not allowed with argument --cell" in capsys.readouterr().err


@pytest.mark.slow  # a fresh interpreter
def test_export_of_a_trial_without_checkpoints_fails_before_torch_or_datasets(
    tmp_path: Path,
) -> None:
    from ray_asd.config import TrialConfig
    from ray_asd.trial import write_config

    write_config(
        tmp_path / "trial" / "config.json",
        TrialConfig.model_validate({"student": {"model": "tiny:"}}),
    )
    code = (
        "import sys\n"
        "from ray_asd.cli import main\n"
        f"code = main(['export', {str(tmp_path / 'trial')!r}])\n"
        "heavy = sorted({'torch', 'datasets', 'ray'} & set(sys.modules))\n"
        "assert not heavy, heavy\n"
        "sys.exit(code)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr[-2000:]
    line = f"trial {tmp_path / 'trial'}: no checkpoint yet (checkpoints/latest is missing)"
    assert done.stderr == f"ray-asd: error: {line}\n"


def test_data_check_help_names_every_registered_task_and_checker(capsys) -> None:
    from ray_asd.tasks import TASKS
    from ray_asd.tasks.builtin import GENERIC_CHECKERS

    with pytest.raises(SystemExit) as done:
        main(["data", "check", "--help"])
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps the lines
    assert f"--task TASK one of {', '.join(TASKS)} " in text
    assert "logic" in TASKS  # the task the hand-written list had missed
    assert f"--checker CHECKER generic task only: one of {', '.join(GENERIC_CHECKERS)} " in text


@pytest.mark.slow  # a fresh interpreter
def test_the_parser_reads_the_task_registry_only_to_print_help() -> None:
    code = (
        "import sys\n"
        "from ray_asd.cli import build_parser\n"
        "build_parser().parse_args(['data', 'check', '--task', 'logic'])\n"
        "assert 'ray_asd.tasks' not in sys.modules and 'pandas' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
