"""End-to-end trials with the tiny random-init student and the oracle teacher."""

import json
import time
from pathlib import Path

import pandas as pd
import pytest

from ray_asd.config import TrialConfig, load_config
from ray_asd.loop import TrialParts, run_trial
from ray_asd.state import latest_checkpoint, load_checkpoint
from ray_asd.student import Student
from ray_asd.tasks import load_table, make_task
from ray_asd.trial import answer_table, build_strategy, build_teacher, student_parts

OVERRIDES = [
    "student.model=tiny:",
    "student.max_new_tokens=16",
    "budget.iterations=2",
    "budget.per_iteration=4",
    "seeds.n=8",
    "eval.n=4",
    "train.epochs=1",
]


@pytest.fixture(scope="module")
def student(model_cache: Path) -> Student:
    return Student.load("tiny:", cache_dir=model_cache, device="cpu")


def make_run(
    config: TrialConfig, student: Student, out: Path, fail_at: int | None = None
) -> pd.DataFrame:
    task = make_task(config.task.name)
    pool = load_table(task, config.task.train).head(config.seeds.n)
    test = load_table(task, config.task.test).head(config.eval.n)
    callables = student_parts(config, task, student)
    if fail_at is not None:  # simulate a crash inside training at iteration fail_at
        train = callables["train"]

        def crashing_train(items: pd.DataFrame, t: int) -> dict[str, float]:
            if t == fail_at:
                raise RuntimeError("node lost")
            return train(items, t)

        callables["train"] = crashing_train
    teacher = build_teacher(config.teacher)
    calls = {"generate": 0}
    generate = teacher.generate

    def counting_generate(*args, **kwargs):
        calls["generate"] += 1
        return generate(*args, **kwargs)

    teacher.generate = counting_generate
    parts = TrialParts(task, build_strategy(config), teacher, **callables, log=lambda _: None)
    metrics = run_trial(config, parts, pool, test, out)
    metrics.attrs["teacher_calls"] = calls["generate"]
    return metrics


def without_timings(metrics: pd.DataFrame) -> pd.DataFrame:
    return metrics[[c for c in metrics.columns if "seconds" not in c]]


@pytest.mark.parametrize(
    ("strategy", "normalisation"), [("loss", "mean"), ("static", "mean"), ("loss_gt", "step")]
)
def test_two_iterations_end_to_end(
    student: Student, tmp_path: Path, strategy: str, normalisation: str
) -> None:
    config = load_config(
        None, [*OVERRIDES, f"strategy.name={strategy}", f"loss_normalisation={normalisation}"]
    )
    started = time.perf_counter()
    metrics = make_run(config, student, tmp_path)
    assert time.perf_counter() - started < 60
    assert metrics["iteration"].tolist() == [-1, 0, 1]
    assert metrics["n_synthetic"].tolist() == [0, 4, 8]
    if strategy != "static":  # the scorer's column reached the selection, finite
        assert metrics["score_mean"].iloc[1:].notna().all()
    items = [
        json.loads(line) for line in (tmp_path / "checkpoints" / "iter_001" / "items.jsonl").open()
    ]
    accepted = [item for item in items if item["accepted"]]
    task = make_task("arith")
    assert all(task.verify(item["question"], item["answer"]) for item in accepted)
    assert len({item["question"] for item in accepted}) == len(accepted)
    assert {item["iteration"] for item in accepted} == ({0} if strategy == "static" else {0, 1})
    tokens = metrics["teacher_prompt_tokens"].tolist()[1:]
    # static spends its whole budget at t = 0; the others spend per iteration.
    assert tokens[0] > 0 and (
        tokens[1] == tokens[0] if strategy == "static" else tokens[1] > tokens[0]
    )


def test_resume_equals_uninterrupted(student: Student, tmp_path: Path) -> None:
    config = load_config(None, [*OVERRIDES, "strategy.name=loss", "train.mode=continue"])
    straight = make_run(config, student, tmp_path / "straight")
    with pytest.raises(RuntimeError, match="node lost"):
        make_run(config, student, tmp_path / "resumed", fail_at=1)
    assert load_checkpoint(latest_checkpoint(tmp_path / "resumed")).next_iteration == 1
    resumed = make_run(config, student, tmp_path / "resumed")
    pd.testing.assert_frame_equal(without_timings(straight), without_timings(resumed))
    assert resumed.attrs["teacher_calls"] < straight.attrs["teacher_calls"]
    read = lambda run: (tmp_path / run / "checkpoints" / "iter_001" / "items.jsonl").read_text()  # noqa: E731
    assert read("straight") == read("resumed")


def test_teacher_token_budget_stops_the_trial(student: Student, tmp_path: Path) -> None:
    config = load_config(None, [*OVERRIDES, "strategy.name=random", "budget.iterations=4"])
    unlimited = make_run(config, student, tmp_path / "unlimited")
    per_iteration = unlimited["teacher_tokens_phase"].iloc[1]
    # Enough for a bit more than one iteration: the second one starts, and is the last.
    budget = int(per_iteration * 1.5)
    limited = make_run(
        config.model_copy(
            update={"budget": config.budget.model_copy(update={"teacher_tokens": budget})}
        ),
        student,
        tmp_path / "limited",
    )
    assert limited["iteration"].tolist() == [-1, 0, 1]
    spent = limited["teacher_tokens"].tolist()
    assert spent[1] < budget <= spent[2]  # it stopped once spent, not before
    assert unlimited["teacher_tokens"].iloc[-1] > spent[2]


def test_new_items_are_scored_like_their_seeds_without_changing_the_trial(
    student: Student, tmp_path: Path
) -> None:
    config = load_config(None, [*OVERRIDES, "strategy.name=loss"])
    scored = make_run(config, student, tmp_path / "scored")
    plain = make_run(
        config.model_copy(
            update={"analysis": config.analysis.model_copy(update={"score_items": False})}
        ),
        student,
        tmp_path / "plain",
    )
    state = load_checkpoint(latest_checkpoint(tmp_path / "scored"))
    accepted = [item for item in state.items if item["accepted"]]
    # Same picks, items and accuracies: scoring items is an observation, not a step.
    assert state.picks == load_checkpoint(latest_checkpoint(tmp_path / "plain")).picks
    pd.testing.assert_frame_equal(
        without_timings(scored)[["n_synthetic", "accuracy", "teacher_tokens"]],
        without_timings(plain)[["n_synthetic", "accuracy", "teacher_tokens"]],
    )
    plain_items = load_checkpoint(latest_checkpoint(tmp_path / "plain")).items
    assert all("score" not in item for item in plain_items)
    # Iteration 0's items were scored by the base model (retrain: no adapter before t = 0's
    # training): the answer NLL of its own greedy answer, as a seed's loss score is.
    first = [item for item in accepted if item["iteration"] == 0]
    student.reset_adapter()
    task = make_task(config.task.name)
    table = pd.DataFrame([{k: item[k] for k in ("id", "question", "answer")} for item in first])
    expected = answer_table(config, task, student, table)
    assert [item["score"] for item in first] == pytest.approx(expected["answer_nll"].tolist())
    assert [item["student_correct"] for item in first] == expected["correct"].tolist()
    for item in accepted:
        assert item["seed_score"] == state.scores[item["iteration"]][item["seed_id"]]
