"""The loop's arithmetic on a fake student (`tests/helpers/fake_student.py`) and the real
oracle teacher and arith task: whole trials in milliseconds. The tiny model's end-to-end runs
are in tests/test_trial.py and tests/runner/."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ray_asd.assemble import assemble, seeds_and_test
from ray_asd.config import TrialConfig
from ray_asd.config_file import load_config
from ray_asd.loop import run_trial
from ray_asd.parts import TrialParts
from ray_asd.plan import plan
from ray_asd.records import Item, spend_of
from ray_asd.state import latest_checkpoint, load_checkpoint
from ray_asd.tasks import make_task
from ray_asd.teacher import Completion
from tests.helpers.fake_student import FakeStudent

OVERRIDES = [
    "budget.iterations=2",
    "budget.per_iteration=4",
    "seeds.n=8",
    "eval.n=4",
    "train.epochs=1",
]


def config_of(*overrides: str) -> TrialConfig:
    return load_config(None, [*OVERRIDES, *overrides])


class Counting:
    """Counts the teacher's generate calls (the cost a resume must not pay twice)."""

    def __init__(self, parts: TrialParts) -> None:
        self.calls, generate = 0, parts.teacher.generate

        def counted(*args: object, **kwargs: object) -> object:
            self.calls += 1
            return generate(*args, **kwargs)  # type: ignore[arg-type]

        parts.teacher.generate = counted  # type: ignore[method-assign]


def trial_parts(
    config: TrialConfig, **injected: object
) -> tuple[TrialParts, FakeStudent, pd.DataFrame, pd.DataFrame]:
    trial = plan(config)
    student = FakeStudent({})
    parts = assemble(trial, student, log=lambda _: None, **injected)  # type: ignore[arg-type]
    pool, test = seeds_and_test(trial, parts.task)
    student.answers = dict(
        zip([*pool["question"], *test["question"]], [*pool["answer"], *test["answer"]], strict=True)
    )
    return parts, student, pool, test


def run(
    config: TrialConfig, out: Path, **injected: object
) -> tuple[pd.DataFrame, FakeStudent, int]:
    parts, student, pool, test = trial_parts(config, **injected)
    counting = Counting(parts)
    metrics = run_trial(parts, pool, test, out)
    return metrics, student, counting.calls


def without_timings(metrics: pd.DataFrame) -> pd.DataFrame:
    return metrics[[c for c in metrics.columns if "seconds" not in c]]


@pytest.mark.parametrize(
    ("strategy", "normalisation"),
    [
        ("loss", "mean"),
        ("static", "mean"),
        ("loss_gt", "step"),
        ("llm2llm", "mean"),
        ("badge", "mean"),
    ],
)
def test_two_iterations(tmp_path: Path, strategy: str, normalisation: str) -> None:
    config = config_of(f"strategy.name={strategy}", f"loss_normalisation={normalisation}")
    metrics, student, _ = run(config, tmp_path)
    assert metrics["phase"].tolist() == ["base", "iteration", "iteration"]
    assert metrics["iteration"].tolist() == [-1, 0, 1]
    assert metrics["n_synthetic"].tolist() == [0, 4, 8]
    # retrain: a fresh adapter on every accepted item, seeded per iteration
    assert student.trained == [(4, 1), (8, 2)]
    if strategy != "static":  # the scorer's column reached the selection, finite
        assert metrics["score_mean"].iloc[1:].notna().all()
    else:
        assert "score_mean" not in metrics
    items = [
        json.loads(line) for line in (tmp_path / "checkpoints" / "iter_001" / "items.jsonl").open()
    ]
    accepted = [item for item in items if item["accepted"]]
    arith = make_task(config.task.name)
    assert all(arith.verify(item["question"], item["answer"]) for item in accepted)
    assert len({item["question"] for item in accepted}) == len(accepted)
    assert {item["iteration"] for item in accepted} == ({0} if strategy == "static" else {0, 1})
    tokens = metrics["teacher_prompt_tokens"].tolist()[1:]
    # Every strategy is charged per budget point: static the calls behind its prefix.
    assert 0 < tokens[0] < tokens[1]


def test_static_picks_its_whole_budget_at_the_start(tmp_path: Path) -> None:
    run(config_of("strategy.name=static"), tmp_path)
    state = load_checkpoint(latest_checkpoint(tmp_path))
    assert [len(p) for p in state.picks] == [8, 0]  # m x T at t = 0, none after


def test_resume_equals_uninterrupted(tmp_path: Path) -> None:
    config = config_of("strategy.name=loss", "train.mode=continue")
    straight, uninterrupted, straight_calls = run(config, tmp_path / "straight")
    parts, student, pool, test = trial_parts(config)
    student.fail_at_seed = 2  # training at t = 1
    with pytest.raises(RuntimeError, match="node lost"):
        run_trial(parts, pool, test, tmp_path / "resumed")
    assert load_checkpoint(latest_checkpoint(tmp_path / "resumed")).next_iteration == 1
    resumed, student, resumed_calls = run(config, tmp_path / "resumed")
    pd.testing.assert_frame_equal(without_timings(straight), without_timings(resumed))
    assert 0 < resumed_calls < straight_calls  # t = 0's teacher calls are not made again
    read = lambda run: (tmp_path / run / "checkpoints" / "iter_001" / "items.jsonl").read_text()  # noqa: E731
    assert read("straight") == read("resumed")
    # continue: t = 1 trains the resumed adapter (4 items) on all 8 items so far, as straight
    assert student.skill == uninterrupted.skill == 4 + 8


def test_teacher_token_budget_stops_the_trial(tmp_path: Path) -> None:
    config = config_of("strategy.name=random", "budget.iterations=4")
    unlimited, _, _ = run(config, tmp_path / "unlimited")
    per_iteration = unlimited["teacher_tokens_phase"].iloc[1]
    budget = int(per_iteration * 1.5)  # a bit more than one iteration: the second is the last
    limited, _, _ = run(
        config_of("strategy.name=random", "budget.iterations=4", f"budget.teacher_tokens={budget}"),
        tmp_path / "limited",
    )
    assert limited["iteration"].tolist() == [-1, 0, 1]
    spent = limited["teacher_tokens"].tolist()
    assert spent[1] < budget <= spent[2]  # it stopped once spent, not before
    assert unlimited["teacher_tokens"].iloc[-1] > spent[2]


ITEM = {
    "strategy": "static",
    "teacher": "oracle",
    "question": "q",
    "answer": "a",
    "final_answer": "1",
    "completion_tokens": 0,
    "teacher_calls": 1,
    "teacher_retries": 0,
    "teacher_cached": 0,
    "teacher_error": None,
    "reject_reason": None,
}


def test_static_trains_on_a_prefix_in_pick_order_charged_its_own_calls() -> None:
    def item(seed: str, t: int, attempt: int, accepted: bool, tokens: int) -> Item:
        record = {**ITEM, "id": f"{seed}{attempt}", "seed_id": seed, "iteration": t}
        return Item.from_json(
            {**record, "attempt": attempt, "accepted": accepted, "prompt_tokens": tokens}
        )

    # Picks a, b, c; a's first attempt was rejected, so in acceptance order it comes last.
    items = [
        item("w", -1, 1, True, 5),  # the warm-up
        item("a", 0, 1, False, 10),
        item("b", 0, 1, True, 10),
        item("c", 0, 1, True, 10),
        item("a", 0, 2, True, 10),
    ]
    schedule = plan(config_of("strategy.name=static", "budget.per_iteration=1")).schedule
    accepted, charged = schedule.static_prefix(items, ["a", "b", "c"], 1)
    assert [i.id for i in accepted] == ["w1", "a2"]  # a first: pick order
    assert spend_of(charged).tokens == 5 + 20  # a's rejected attempt is part of its cost
    accepted, charged = schedule.static_prefix(items, ["a", "b", "c"], 2)
    assert [i.id for i in accepted] == ["w1", "a2", "b1"] and spend_of(charged).tokens == 35
    # A cap of 30 tokens: b would take the charge to 35, so the prefix stops at a.
    capped = plan(config_of("strategy.name=static", "budget.teacher_tokens=30")).schedule
    accepted, charged = capped.static_prefix(items, ["a", "b", "c"], 3)
    assert [i.id for i in accepted] == ["w1", "a2"] and spend_of(charged).tokens == 25
    # m = 1: iteration 1 trains on a and b, and adds only b's call to the charge.
    _, _, new = schedule.training_set(items, ["a", "b", "c"], [], 1)
    assert [i.id for i in new] == ["b1"]


def test_new_items_are_scored_like_their_seeds_without_changing_the_trial(tmp_path: Path) -> None:
    scored, _, _ = run(config_of("strategy.name=loss"), tmp_path / "scored")
    plain, _, _ = run(
        config_of("strategy.name=loss", "analysis.score_items=false"), tmp_path / "plain"
    )
    state = load_checkpoint(latest_checkpoint(tmp_path / "scored"))
    # Same picks, items and accuracies: scoring items is an observation, not a step.
    assert state.picks == load_checkpoint(latest_checkpoint(tmp_path / "plain")).picks
    columns = ["n_synthetic", "accuracy", "teacher_tokens"]
    pd.testing.assert_frame_equal(scored[columns], plain[columns])
    plain_items = load_checkpoint(latest_checkpoint(tmp_path / "plain")).items
    assert all(item.score is None for item in plain_items)
    assert (
        "score" not in (tmp_path / "plain" / "checkpoints" / "iter_001" / "items.jsonl").read_text()
    )
    # Iteration 0's items were scored by the base model (retrain: no adapter before t = 0's
    # training): the answer NLL of its own answer, as a seed's loss score is.
    parts = trial_parts(config_of("strategy.name=loss"))[0]
    first = [item for item in state.accepted if item.iteration == 0]
    table = pd.DataFrame(
        {
            "id": [i.id for i in first],
            "question": [i.question for i in first],
            "answer": [i.answer for i in first],
        }
    )
    expected = parts.student.answers_here(table, ("answer_nll",))
    assert [item.score for item in first] == pytest.approx(expected["answer_nll"].tolist())
    assert [item.student_correct for item in first] == expected["correct"].tolist()
    for item in state.accepted:
        assert item.seed_score == state.scores[item.iteration][item.seed_id]
    assert "analysis_calls_phase" not in scored  # loss makes no rating calls to score items


def test_a_second_random_stream_shares_the_warm_up_but_not_the_picks(tmp_path: Path) -> None:
    runs = []
    for index, stream in enumerate((0, 1, 1)):
        out = tmp_path / f"run{index}"
        run(config_of("strategy.name=random", "budget.warmup=4", f"strategy.stream={stream}"), out)
        runs.append(load_checkpoint(latest_checkpoint(out)))
    warm = [[i.question for i in s.items if i.iteration < 0] for s in runs]
    assert warm[0] == warm[1] == warm[2] and len(warm[0]) == 4  # the cell's warm-up
    assert runs[0].picks != runs[1].picks
    assert runs[1].picks == runs[2].picks  # a stream is reproducible


def test_warm_up_is_shared_by_every_strategy(tmp_path: Path) -> None:
    warm = {}
    for strategy in ("loss", "random", "static"):
        run(config_of(f"strategy.name={strategy}", "budget.warmup=4"), tmp_path / strategy)
        items = load_checkpoint(latest_checkpoint(tmp_path / strategy)).items
        warm[strategy] = [(i.seed_id, i.question, i.answer) for i in items if i.iteration < 0]
    assert warm["loss"] == warm["random"] == warm["static"] and len(warm["loss"]) == 4


def test_warm_up_row_times_its_generation(tmp_path: Path) -> None:
    metrics, student, _ = run(config_of("strategy.name=random", "budget.warmup=4"), tmp_path)
    warm = metrics[metrics["phase"] == "warmup"].iloc[0]
    assert warm["n_synthetic"] == 4 and warm["n_new"] == 4
    assert {"seconds_generate", "seconds_train", "seconds_eval"} <= set(warm.dropna().index)
    assert student.trained[0] == (4, 0)  # the warm-up trains with seed 0 (t = -1)


def test_difficulty_reads_the_pool_and_the_analyses_records(tmp_path: Path) -> None:
    config = config_of("strategy.name=difficulty", "task.params={max_ops: 3}")
    parts, student, pool, test = trial_parts(config)
    metrics = run_trial(parts, pool, test, tmp_path)
    # The pool is never answered to pick seeds: difficulty is a column of the pool.
    seed_prompts = sorted(parts.task.prompt(q) for q in pool["question"])
    assert seed_prompts not in [sorted(p) for p in student.answered]
    state = load_checkpoint(latest_checkpoint(tmp_path))
    top = sorted(pool["difficulty"], reverse=True)[:4]  # 8 seeds cycling 1..3: 3, 3, 2, 2
    for picks in state.picks:  # top_k of the task's own difficulty
        assert sorted(pool.set_index("id").loc[picks, "difficulty"], reverse=True) == top
    rows = metrics[metrics["phase"] == "iteration"]
    assert (rows["picks_difficulty_3"] == top.count(3)).all()
    for level in sorted(test["difficulty"].unique()):  # per-difficulty test accuracy
        ids = test[test["difficulty"] == level]["id"]
        expected = [np.mean([e["correct"][i] for i in ids]) for e in state.evaluations]
        assert metrics[f"accuracy_difficulty_{level}"].tolist() == pytest.approx(expected)
    assert [e["phase"] for e in state.evaluations] == ["base", "iteration", "iteration"]
    assert [np.mean(list(e["correct"].values())) for e in state.evaluations] == pytest.approx(
        metrics["accuracy"].tolist()
    )
    # Ordering records: seed scores of both students (difficulty: the same) and correctness.
    accepted = [i for i in state.accepted if i.iteration >= 0]
    difficulty = pool.set_index("id")["difficulty"]
    assert accepted and all(
        i.seed_score_first == i.seed_score_final == difficulty[i.seed_id] for i in accepted
    )
    assert all(
        isinstance(i.correct_first, bool) and isinstance(i.correct_final, bool) for i in accepted
    )


class FakeJudge:
    """A completion backend that rates every answer 7 at 50 prompt + 5 completion tokens."""

    def identity(self) -> dict[str, str]:
        return {"model": "fake-judge"}

    def complete(self, prompts: list[str], seeds: list[int]) -> list[Completion]:
        return [
            Completion(text="Rating: 7", prompt_tokens=50, completion_tokens=5) for _ in prompts
        ]

    def stats(self) -> dict[str, int]:
        return {}


def test_rating_calls_that_spend_the_budget_stop_the_trial_with_a_row(tmp_path: Path) -> None:
    # 8 seeds rated at 55 tokens each: 440 tokens at t = 0 alone, over a cap of 400.
    config = config_of(
        "strategy.name=judge", "judge.llm={backend: openai, model: m}", "budget.teacher_tokens=400"
    )
    metrics, student, calls = run(config, tmp_path, judge=FakeJudge())
    assert metrics["phase"].tolist() == ["base", "stopped"]
    stopped = metrics.iloc[-1]
    assert stopped["rating_tokens_phase"] == stopped["teacher_tokens"] == 8 * 55
    assert stopped["n_synthetic"] == 0 and calls == 0 and student.trained == []
    assert load_checkpoint(latest_checkpoint(tmp_path)).rating.calls == 8


def test_every_phase_row_reaches_state_json_and_metrics_alike(tmp_path: Path) -> None:
    metrics, _, _ = run(config_of("strategy.name=loss", "budget.warmup=4"), tmp_path)
    rows = json.loads((tmp_path / "checkpoints" / "iter_001" / "state.json").read_text())["metrics"]
    assert pd.DataFrame(rows).columns.tolist() == metrics.columns.tolist()
    assert [set(r) for r in rows] == [set(r.dropna().index) for _, r in metrics.iterrows()]


def test_judge_tokens_count_toward_the_teacher_budget(tmp_path: Path) -> None:
    judged = ["strategy.name=judge", "judge.llm={backend: openai, model: m}", "budget.warmup=4"]
    free, _, _ = run(
        config_of(*judged, "budget.iterations=3"), tmp_path / "free", judge=FakeJudge()
    )
    first = free[free["phase"] == "iteration"].iloc[0]
    assert first["rating_tokens_phase"] == 8 * 55  # 8 seeds rated at 55 tokens each
    # Exactly iteration 0's rating + generation: iteration 1 does not start. A budget that
    # counted generation alone would not be spent yet.
    budget = int(free["teacher_tokens"].iloc[2])
    assert free["generation_tokens"].iloc[2] < budget
    capped_config = config_of(*judged, "budget.iterations=3", f"budget.teacher_tokens={budget}")
    capped, _, _ = run(capped_config, tmp_path / "capped", judge=FakeJudge())
    assert capped["phase"].tolist() == ["base", "warmup", "iteration"]
    # A budget the first rating pass already spends: its cost is recorded, nothing else runs.
    tight = int(free["teacher_tokens"].iloc[1] + 1)
    tight_config = config_of(*judged, "budget.iterations=3", f"budget.teacher_tokens={tight}")
    stopped, _, _ = run(tight_config, tmp_path / "tight", judge=FakeJudge())
    assert stopped["phase"].tolist() == ["base", "warmup", "stopped"]
    last, warm = stopped.iloc[-1], stopped.iloc[1]
    assert (last["n_synthetic"], last["accuracy"]) == (warm["n_synthetic"], warm["accuracy"])
    assert last["teacher_tokens"] == warm["teacher_tokens"] + first["rating_tokens_phase"]
    assert last["n_new"] == 0 and tight <= last["teacher_tokens"]


BANDIT = [
    "strategy={scorer: bandit, arms: [difficulty, random]}",
    "task.params={max_ops: 3}",
    "seeds.n=48",
    "budget.per_iteration=8",
    "budget.iterations=6",
]


def bandit_run(
    out: Path, hard_teaches: bool, *overrides: str, fail_at_seed: int | None = None
) -> pd.DataFrame:
    """A bandit between `difficulty` (the hardest seeds: 3 operations) and `random`, on a
    student planted so that training lowers the NLL of 3-operation items 100 times as much as
    the others' (``hard_teaches``), or the reverse."""
    parts, student, pool, test = trial_parts(config_of(*BANDIT, *overrides))
    arith = make_task("arith")
    strong, weak = (10.0, 0.1) if hard_teaches else (0.1, 10.0)
    student.lesson = lambda question: strong if arith.difficulty(question) == 3 else weak
    student.fail_at_seed = fail_at_seed
    return run_trial(parts, pool, test, out)


@pytest.mark.parametrize("hard_teaches", [True, False])
def test_the_bandit_shares_follow_the_planted_progress(tmp_path: Path, hard_teaches: bool) -> None:
    metrics = bandit_run(tmp_path, hard_teaches)
    rows = metrics[metrics["phase"] == "iteration"]
    winner, loser = ("difficulty", "random") if hard_teaches else ("random", "difficulty")
    share = rows[f"bandit_share_{winner}"].tolist()
    assert share[0] == 0.5 and share[-1] > 0.7  # from an even split to most of the picks
    picks = rows[[f"bandit_picks_{winner}", f"bandit_picks_{loser}"]].iloc[3:].sum()
    assert picks.iloc[0] > 2 * picks.iloc[1]  # the last 3 iterations' picks
    # The winner's items bought more progress per teacher token whenever both were picked.
    both = rows[f"bandit_progress_{winner}"].notna() & rows[f"bandit_progress_{loser}"].notna()
    assert (rows[f"bandit_progress_{winner}"][both] > rows[f"bandit_progress_{loser}"][both]).all()


def test_a_resumed_bandit_makes_the_choices_of_an_uninterrupted_one(tmp_path: Path) -> None:
    straight = bandit_run(tmp_path / "straight", True)
    with pytest.raises(RuntimeError, match="node lost"):
        bandit_run(tmp_path / "resumed", True, fail_at_seed=3)  # training at t = 2
    assert load_checkpoint(latest_checkpoint(tmp_path / "resumed")).next_iteration == 2
    resumed = bandit_run(tmp_path / "resumed", True)
    pd.testing.assert_frame_equal(without_timings(straight), without_timings(resumed))
    states = [load_checkpoint(latest_checkpoint(tmp_path / run)) for run in ("straight", "resumed")]
    assert states[0].bandit == states[1].bandit and states[0].picks == states[1].picks
    # The checkpoint holds each pick's arm, per iteration, parallel to the picks.
    bandit = states[0].bandit
    assert bandit is not None and len(bandit.choices) == 6
    assert [len(c) for c in bandit.choices] == [len(p) for p in states[0].picks] == [8] * 6
    rows = straight[straight["phase"] == "iteration"]
    by_arm = [[c.count(arm) for c in bandit.choices] for arm in (0, 1)]
    assert by_arm == [
        rows["bandit_picks_difficulty"].tolist(),
        rows["bandit_picks_random"].tolist(),
    ]


def test_a_bandit_answers_the_columns_of_every_arm_and_picks_each_seed_once(
    tmp_path: Path,
) -> None:
    config = config_of(
        "strategy={scorer: bandit, arms: [loss_gt, llm2llm, random], bandit_gamma: 1}",
        "seeds.n=16",
        "budget.per_iteration=12",
    )
    trial = plan(config)
    assert trial.student_columns == ("reference_nll", "correct") and trial.answers_seeds
    metrics, _, _ = run(config, tmp_path)
    state = load_checkpoint(latest_checkpoint(tmp_path))
    assert all(len(set(picks)) == len(picks) == 12 for picks in state.picks)
    # gamma 1: the split stays uniform, whatever the rewards.
    rows = metrics[metrics["phase"] == "iteration"]
    for arm in ("loss_gt", "llm2llm", "random"):
        assert rows[f"bandit_share_{arm}"].tolist() == pytest.approx([1 / 3, 1 / 3])
    assert "score_mean" not in metrics  # a bandit has no one score per seed
    assert (rows["seconds_progress"] > 0).all()  # the NLL before and after, timed
    assert {i.strategy for i in state.items} == {"bandit"}
