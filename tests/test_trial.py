"""`ray-asd trial` end to end with the tiny student: CLI, outputs, warm-up, resume."""

import json
from pathlib import Path

import pandas as pd
import pytest

from ray_asd.cli import main

SMALL = [
    "student.model=tiny:",
    "student.max_new_tokens=16",
    "budget.iterations=1",
    "budget.per_iteration=4",
    "budget.warmup=4",
    "seeds.n=8",
    "eval.n=4",
    "train.epochs=1",
]


@pytest.fixture(autouse=True)
def cache(model_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_ASD_CACHE", str(model_cache))


def trial(capsys, out: Path, *extra: str) -> tuple[int, str, str]:
    argv = ["trial", "--out", str(out)]
    for override in [*SMALL, *extra]:
        argv += [override] if override.startswith("--") else ["--set", override]
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_trial_writes_results_and_prints_the_table(tmp_path: Path, capsys) -> None:
    code, out, _ = trial(capsys, tmp_path / "run")
    assert code == 0
    assert "base model accuracy" in out and "[trial] t= 0" in out
    metrics = pd.read_csv(tmp_path / "run" / "metrics.csv")
    assert metrics["phase"].tolist() == ["base", "warmup", "iteration"]
    assert metrics["n_synthetic"].tolist() == [0, 4, 8]  # the warm-up counts in the budget
    items = [json.loads(line) for line in (tmp_path / "run" / "items.jsonl").open()]
    assert {item["strategy"] for item in items} == {"warmup", "loss"}
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["budget"]["warmup"] == 4


def test_warm_up_is_shared_by_every_strategy(tmp_path: Path, capsys) -> None:
    runs = {}
    for strategy in ("loss", "random"):
        assert trial(capsys, tmp_path / strategy, f"strategy.name={strategy}")[0] == 0
        items = [json.loads(line) for line in (tmp_path / strategy / "items.jsonl").open()]
        runs[strategy] = [
            (i["seed_id"], i["question"], i["answer"]) for i in items if i["iteration"] < 0
        ]
    assert runs["loss"] == runs["random"] and len(runs["loss"]) >= 4


def test_existing_trial_needs_resume(tmp_path: Path, capsys) -> None:
    assert trial(capsys, tmp_path / "run")[0] == 0
    code, _, err = trial(capsys, tmp_path / "run")
    assert code == 2 and "pass --resume" in err
    # Resuming a finished trial repeats nothing and reports the same metrics.
    before = pd.read_csv(tmp_path / "run" / "metrics.csv")
    code, out, _ = trial(capsys, tmp_path / "run", "--resume")
    assert code == 0 and "continuing at iteration 1" in out
    after = pd.read_csv(tmp_path / "run" / "metrics.csv")
    pd.testing.assert_frame_equal(before, after)


def test_bad_override_is_one_clear_error(tmp_path: Path, capsys) -> None:
    code, _, err = trial(capsys, tmp_path / "run", "budget.iteratons=2")
    assert code == 2 and "budget.iteratons: Extra inputs are not permitted" in err


def test_a_teacher_whose_items_are_all_rejected_leaves_the_student_untrained(
    tmp_path: Path, capsys
) -> None:
    # The tiny random model as an LLM teacher (transformers backend) never writes a usable
    # item: the trial still runs to the end, training skipped, every rejection counted.
    llm_teacher = [
        "teacher.backend=transformers",
        "teacher.model=tiny:",
        "teacher.max_new_tokens=8",
        "generation.max_attempts=1",
    ]
    code, out, _ = trial(capsys, tmp_path / "run", *llm_teacher)
    assert code == 0 and "no accepted items yet, the student stays as it is" in out
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert [row["n_synthetic"] for row in metrics] == [0, 0, 0]
    assert [row["n_rejected"] for row in metrics[1:]] == [4, 4]
    assert metrics[-1]["teacher_calls"] > 0 and metrics[-1]["teacher_tokens"] > 0
