"""End-to-end trials with the tiny random-init student and the oracle teacher."""

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ray_asd.config import TrialConfig
from ray_asd.config_file import load_config
from ray_asd.loop import TrialParts, run_trial, static_prefix
from ray_asd.state import latest_checkpoint, load_checkpoint, teacher_tokens
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
    # Every strategy is charged per budget point: static the calls behind its prefix.
    assert 0 < tokens[0] < tokens[1]


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
    expected = answer_table(config, task, student, table, ("answer_nll",))
    assert [item["score"] for item in first] == pytest.approx(expected["answer_nll"].tolist())
    assert [item["student_correct"] for item in first] == expected["correct"].tolist()
    for item in accepted:
        assert item["seed_score"] == state.scores[item["iteration"]][item["seed_id"]]


def _item(seed: str, t: int, attempt: int, accepted: bool, tokens: int) -> dict:
    return {
        "id": f"{seed}{attempt}",
        "seed_id": seed,
        "iteration": t,
        "attempt": attempt,
        "accepted": accepted,
        "prompt_tokens": tokens,
        "completion_tokens": 0,
    }


def test_static_trains_on_a_prefix_in_pick_order_charged_its_own_calls() -> None:
    # Picks a, b, c; a's first attempt was rejected, so in acceptance order it comes last.
    items = [
        _item("w", -1, 1, True, 5),  # the warm-up
        _item("a", 0, 1, False, 10),
        _item("b", 0, 1, True, 10),
        _item("c", 0, 1, True, 10),
        _item("a", 0, 2, True, 10),
    ]
    accepted, charged = static_prefix(items, ["a", "b", "c"], 1, None)
    assert [i["id"] for i in accepted] == ["w1", "a2"]  # a first: pick order
    assert teacher_tokens(charged) == 5 + 20  # a's rejected attempt is part of its cost
    accepted, charged = static_prefix(items, ["a", "b", "c"], 2, None)
    assert [i["id"] for i in accepted] == ["w1", "a2", "b1"]
    assert teacher_tokens(charged) == 35
    # A cap of 30 tokens: b would take the charge to 35, so the prefix stops at a.
    accepted, charged = static_prefix(items, ["a", "b", "c"], 3, 30)
    assert [i["id"] for i in accepted] == ["w1", "a2"] and teacher_tokens(charged) == 25


def test_a_second_random_stream_shares_the_warm_up_but_not_the_picks(
    student: Student, tmp_path: Path
) -> None:
    overrides = [*OVERRIDES, "strategy.name=random", "budget.warmup=4"]
    runs = {}
    for stream in (0, 1, 1):
        out = tmp_path / f"stream{stream}-{len(runs)}"
        make_run(load_config(None, [*overrides, f"strategy.stream={stream}"]), student, out)
        runs[len(runs)] = load_checkpoint(latest_checkpoint(out))
    warm = [[i["question"] for i in s.items if i["iteration"] < 0] for s in runs.values()]
    assert warm[0] == warm[1] == warm[2]  # the cell's warm-up, whatever the stream
    assert runs[0].picks != runs[1].picks
    assert runs[1].picks == runs[2].picks  # a stream is reproducible


def test_difficulty_and_the_analyses_records(student: Student, tmp_path: Path) -> None:
    config = load_config(None, [*OVERRIDES, "strategy.name=difficulty", "task.params={max_ops: 3}"])
    answered: list[tuple[str, ...]] = []
    task = make_task(config.task.name, **config.task.params)
    pool = load_table(task, config.task.train).head(config.seeds.n)
    test = load_table(task, config.task.test).head(config.eval.n)
    callables = student_parts(config, task, student)
    answers = callables["student_answers"]

    def recording(table: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
        answered.append(tuple(table["id"]))
        return answers(table, columns)

    callables["student_answers"] = recording
    parts = TrialParts(
        task, build_strategy(config), build_teacher(config.teacher), **callables, log=lambda _: None
    )
    metrics = run_trial(config, parts, pool, test, tmp_path)
    # The pool is never answered to pick seeds: difficulty is a column of the pool.
    assert tuple(pool["id"]) not in answered
    state = load_checkpoint(latest_checkpoint(tmp_path))
    m = config.budget.per_iteration
    top = sorted(pool["difficulty"], reverse=True)[:m]  # 8 seeds cycling 1..3: 3, 3, 2, 2
    for picks in state.picks:  # top_k of the task's own difficulty
        assert sorted(pool.set_index("id").loc[picks, "difficulty"], reverse=True) == top
    rows = metrics[metrics["phase"] == "iteration"]
    assert (rows["picks_difficulty_3"] == top.count(3)).all()
    levels = sorted(test["difficulty"].unique())
    for level in levels:  # per-difficulty test accuracy
        expected = [
            np.mean([e["correct"][i] for i in test[test["difficulty"] == level]["id"]])
            for e in state.evaluations
        ]
        assert metrics[f"accuracy_difficulty_{level}"].tolist() == pytest.approx(expected)
    # One record of per-item correctness per evaluation, matching the accuracy.
    assert [e["phase"] for e in state.evaluations] == ["base", "iteration", "iteration"]
    assert [np.mean(list(e["correct"].values())) for e in state.evaluations] == pytest.approx(
        metrics["accuracy"].tolist()
    )
    # Ordering records: seed scores of both students (difficulty: the same) and correctness.
    accepted = [i for i in state.items if i["accepted"] and i["iteration"] >= 0]
    difficulty = pool.set_index("id")["difficulty"]
    assert accepted and all(
        i["seed_score_first"] == i["seed_score_final"] == difficulty[i["seed_id"]] for i in accepted
    )
    assert all(
        isinstance(i["correct_first"], bool) and isinstance(i["correct_final"], bool)
        for i in accepted
    )


def test_loss_scores_the_graded_answer_and_its_stop_token(student: Student) -> None:
    config = load_config(None, OVERRIDES)
    task = make_task("arith")
    table = load_table(task, config.task.test).head(4)
    scored = answer_table(config, task, student, table, ("answer_nll",))
    prompts = [task.prompt(q) for q in table["question"]]
    graded = scored["student_answer"].tolist()
    assert graded == [task.cut_after_final(a) for a in graded]  # cut as the checker reads it
    expected = student.nll(prompts, graded, batch_size=4, reduction="mean", add_eos=True)
    assert scored["answer_nll"].tolist() == pytest.approx(expected.tolist())
