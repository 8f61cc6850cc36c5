"""Feeds `ray-asd` the bad inputs of issue 17, each in a fresh folder, and prints a Markdown
table: the input, the first line it printed on stderr, the exit code, and whether anything
was written (every file under the folder compared before and after).

    .venv/bin/python scripts/bad_inputs.py            # about 3 minutes on 2 cores

Each input runs the real console entry point in a process of its own; `run` inputs that pass
validation would start Ray, so every one here must stop before it.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ROOT / "configs" / "smoke.yaml"
GOOD_ROW = '{"question": "What is 2 + 3?", "answer": "5"}\n'


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def prepare_files(folder: Path) -> None:
    """The files the inputs below point at."""
    (folder / "empty.jsonl").write_text("", encoding="utf-8")
    (folder / "latin1.yaml").write_bytes("name: caf\xe9\n".encode("latin-1"))
    (folder / "twice.yaml").write_text(
        "budget:\n  iterations: 2\n  iterations: 3\n", encoding="utf-8"
    )
    (folder / "a-file").write_text("not a folder\n", encoding="utf-8")
    (folder / "24.csv").write_text(
        "Rank,Puzzles,AMT (s),Solved rate,1-sigma Mean,1-sigma STD\n"
        "1,1 1 4 6,5.0,95%,5.0,1.0\n2,1 1 1 1,5.0,95%,5.0,1.0\n",
        encoding="utf-8",
    )
    (folder / "ids.jsonl").write_text(
        '{"id": "a", "question": "What is 1 + 1?", "answer": "2"}\n'
        '{"id": "a", "question": "What is 2 + 2?", "answer": "4"}\n',
        encoding="utf-8",
    )
    (folder / "data").mkdir()
    (folder / "data" / "rows.jsonl").write_text(GOOD_ROW, encoding="utf-8")


def run_inputs() -> dict[str, dict[str, list[str]]]:
    """Class -> input label -> argv (after `ray-asd`), with ``{f}`` for the folder."""
    run = ["run", str(SMOKE), "--set", "storage={f}/storage"]
    openai = ["--set", "teacher.backend=openai", "--set", "teacher.model=gpt-4o-mini"]
    return {
        "late failure": {
            "missing train file": [*run, "--set", "task.train.path={f}/nope.jsonl"],
            "empty test file": [*run, "--set", "task.test.path={f}/empty.jsonl"],
            "API key variable unset": [
                *run,
                *openai,
                "--set",
                "teacher.openai.api_key_env=RAY_ASD_UNSET_KEY",
            ],
            "per_iteration beyond the pool (top-k)": [
                *run,
                "--set",
                "grid.strategy=[loss]",
                "--set",
                "budget.per_iteration=9",
            ],
            "eval.n beyond the test split": [*run, "--set", "eval.n=500"],
            "learning rate inf": [*run, "--set", "train.learning_rate=.inf"],
            "temperature nan": [*run, "--set", "teacher.temperature=.nan"],
        },
        "traceback": {
            "selector temperature 0": [
                *run,
                "--set",
                "grid.strategy=[{scorer: loss, selector: {name: power, temperature: 0}}]",
            ],
            "selector temperature 'hot'": [
                *run,
                "--set",
                "grid.strategy=[{scorer: loss, selector: {name: power, temperature: hot}}]",
            ],
            "config not UTF-8": ["run", "{f}/latin1.yaml"],
            "storage is a file": ["run", str(SMOKE), "--set", "storage={f}/a-file"],
            "trial --out is a file": ["trial", "--out", "{f}/a-file"],
        },
        "smaller": {
            "duplicate YAML key": ["run", "{f}/twice.yaml"],
            "unsolvable Game of 24 row": [
                "data",
                "check",
                "--task",
                "game24",
                "--path",
                "{f}/24.csv",
            ],
            "repeated ids": [
                "data",
                "check",
                "--task",
                "gsm8k",
                "--path",
                "{f}/ids.jsonl",
                "--id-column",
                "id",
            ],
            "a folder as --path": ["data", "check", "--task", "gsm8k", "--path", "{f}/data"],
            "revision on a local model": [*run, "--set", "student.revision=v1"],
            "scheduler metric misspelt": [
                *run,
                "--set",
                "grid.strategy=[random]",
                "--set",
                "tune.scheduler={metric: acuracy}",
            ],
        },
    }


def try_input(argv: list[str]) -> tuple[int, str, bool, float]:
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        prepare_files(folder)
        before = snapshot(folder)
        command = [sys.executable, "-m", "ray_asd.cli", *(a.replace("{f}", name) for a in argv)]
        began = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=name)
        seconds = time.perf_counter() - began
        first = next((line for line in done.stderr.splitlines() if "error" in line), "")
        unchanged = snapshot(folder) == before
        return done.returncode, first.replace(name, "F"), unchanged, seconds


def checker_row(task_name: str, answer: str, reference: str) -> str:
    """A checker's verdict and time on a stalling output, on and off the main thread (the
    tests bound the work; the times are measured here)."""
    from ray_asd.tasks import make_task

    task = make_task(task_name)
    times: list[str] = []

    def check() -> None:
        began = time.perf_counter()
        correct = task.is_correct("q", task.cut_after_final(answer), reference)
        times.append(f"{'right' if correct else 'wrong'} in {time.perf_counter() - began:.2f} s")

    check()
    thread = threading.Thread(target=check)
    thread.start()
    thread.join()
    return f"main thread: {times[0]}; other thread: {times[1]}"


def main() -> None:
    print("| class | input | line printed (F: the folder) | exit | nothing written | s |")
    print("|---|---|---|---|---|---|")
    for kind, inputs in run_inputs().items():
        for label, argv in inputs.items():
            code, line, unchanged, seconds = try_input(argv)
            shown = line.replace("|", "\\|")
            print(f"| {kind} | {label} | `{shown}` | {code} | {unchanged} | {seconds:.0f} |")
    stalls = [  # (task, output, reference, label): each took 9 s to over 30 s before
        ("math", r"The answer is $\boxed{(x+y+z)^{400}}$.", r"$\boxed{1}$", "(x+y+z)^{400}"),
        ("gsm8k", "\n" * 60_000 + "#### 5", "#### 5", "60k newlines"),
    ]
    for task_name, answer, reference, label in stalls:
        outcome = checker_row(task_name, answer, reference)
        print(f"| stall | {task_name} checker on {label} | {outcome} | - | - | - |")


if __name__ == "__main__":
    main()
