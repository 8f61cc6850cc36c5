"""The paper's loop for one trial (DESIGN section 2), with a checkpoint after every iteration.

    for t in 0..T-1:
        answer  the student answers every seed            parts.student_answers
        rate    other models rate the answers (if asked)  parts.rate (reward, judge, lion)
        score   the strategy's scorer rates every seed    strategy.scorer
        select  its selector picks m seeds                strategy.selector
        generate the teacher writes a new question per pick, then answers it; filters reject
        (score the new items as their seeds were, for `ray-asd report`; not the method)
        train   LoRA on all accepted items so far         parts.train
        evaluate accuracy on the test set                 parts.student_answers
        record  metrics + checkpoint (resume continues at t + 1)

No Ray here: ``TrialParts`` holds plain callables, in-process in `ray_asd.trial` and on Ray
actors in the runner. All randomness of the loop flows from one numpy generator whose state is
checkpointed, so a resumed trial makes exactly the picks and teacher requests an uninterrupted
one makes, and never repeats a finished iteration's teacher calls.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ray_asd.analysis import score_items, score_orderings
from ray_asd.config import TrialConfig
from ray_asd.filters import NoveltyIndex, RejectReason, reject_reason
from ray_asd.metrics import (
    accumulate,
    difficulty_counts,
    format_row,
    generation_metrics,
    score_stats,
)
from ray_asd.raters import RATER_COLUMNS, RatingCost
from ray_asd.state import (
    TrialState,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
    teacher_tokens,
)
from ray_asd.strategies import Strategy, scalar_scores
from ray_asd.strategies.selectors import Uniform
from ray_asd.tasks import DIFFICULTY, Task
from ray_asd.teacher import Teacher

# A table of seeds or test items -> the same rows with student_answer, answer_tokens,
# answer_nll, correct, plus whatever further columns are named (e.g. reference_nll).
StudentAnswers = Callable[[pd.DataFrame, tuple[str, ...]], pd.DataFrame]
# (answered seeds, columns, the trial's memo, its generator) -> the rater columns added, and
# what their LLM calls cost (`ray_asd.raters.Raters`).
Rate = Callable[
    [pd.DataFrame, tuple[str, ...], dict[str, Any], np.random.Generator],
    tuple[pd.DataFrame, RatingCost],
]


@dataclass
class TrialParts:
    """What the loop calls; Ray-free so that it runs in-process in tests."""

    task: Task
    strategy: Strategy
    teacher: Teacher
    student_answers: StudentAnswers
    train: Callable[[pd.DataFrame, int], dict[str, float]]  # (items, t) -> train stats
    save_student: Callable[[Path], None]
    load_student: Callable[[Path | None], None]  # None: back to the base model
    rate: Rate | None = None  # for strategies that read rater columns
    # Answers to the few new items scored for the report (`score_items`); by default
    # student_answers (the runner answers them in the trial's process, skipping its scoring actors).
    item_answers: StudentAnswers | None = None
    log: Callable[[str], None] = print
    # Called after every checkpoint with its folder and the metrics rows it adds (the runner
    # reports them to Tune and MLflow).
    checkpointed: Callable[[Path, list[dict[str, Any]]], None] = lambda folder, rows: None


Evaluation = tuple[dict[str, Any], dict[str, bool]]  # (metrics row, test id -> correct)


def evaluate_base(parts: TrialParts, test: pd.DataFrame) -> Evaluation:
    """The base model on the test set: greedy and deterministic, so the runner evaluates it
    once per (task, student) and every seed's trial reuses it."""
    parts.load_student(None)  # the base model, whatever the student did before
    return _evaluate(parts, test, t=-1, accepted=0, timings={}, phase="base")


def begin_trial(
    config: TrialConfig,
    parts: TrialParts,
    pool: pd.DataFrame,
    test: pd.DataFrame,
    out: Path,
    base: Evaluation | None = None,
) -> Path:
    """Evaluates the base model (unless ``base`` holds its evaluation) and runs the warm-up;
    returns the checkpoint iteration 0 starts from.

    Everything here is the same for every strategy of a (task, student, seed) cell, so the
    runner computes it once per cell and every strategy's trial starts from its checkpoint.
    """
    state = TrialState(rng=np.random.default_rng(config.seed))
    novelty = _novelty(config, pool, [])
    row, correct = base or evaluate_base(parts, test)
    state.metrics = [row]
    state.evaluations = [{"phase": "base", "iteration": -1, "correct": correct}]
    parts.load_student(None)
    if config.budget.warmup:
        warm_up(config, parts, pool, test, state, novelty)
    return save_checkpoint(
        out, state, parts.save_student, parts.checkpointed, "start", len(state.metrics)
    )


def run_trial(
    config: TrialConfig,
    parts: TrialParts,
    pool: pd.DataFrame,
    test: pd.DataFrame,
    out: Path,
    start: Path | None = None,
) -> pd.DataFrame:
    """Runs the iterations of one trial from a checkpoint and returns its metrics, one row
    per phase (base, warm-up, each iteration).

    Args:
        config: the trial's configuration.
        parts: the callables that do the work.
        pool: the seed pool (fixed for the whole trial).
        test: the held-out test items.
        out: the trial's folder; checkpoints are written to ``out/checkpoints``.
        start: the checkpoint to continue from; by default the latest one in ``out``, or a
            new start (:func:`begin_trial`) when there is none.
    """
    start = start or latest_checkpoint(out) or begin_trial(config, parts, pool, test, out)
    state = load_checkpoint(start)
    parts.log(f"[trial] continuing at iteration {state.next_iteration} from {start}")
    parts.load_student(start / "student")
    if state.next_iteration == 0 and config.strategy.stream:
        # Another random stream for the picks and teacher requests (an A/A pair's second arm);
        # the warm-up, drawn from its own generator, stays the cell's.
        state.rng = np.random.default_rng([config.seed, 4, config.strategy.stream])
    novelty = _novelty(config, pool, state.accepted)
    m, iterations = config.budget.per_iteration, config.budget.iterations
    budget, upfront = config.budget.teacher_tokens, parts.strategy.upfront
    for t in range(state.next_iteration, iterations):
        # static made every teacher call at t = 0: its cap limits the prefix it trains on.
        if budget is not None and not (upfront and t) and state.teacher_tokens >= budget:
            parts.log(
                f"[trial] teacher budget spent ({state.teacher_tokens} of {budget} "
                f"tokens): stopping before iteration {t}"
            )
            break
        timings: dict[str, float] = {}
        clock = time.perf_counter()

        # Answer, rate and score: the current student on every seed (random and static read
        # no student output, difficulty only the seeds' own column: they skip this compute),
        # then any other model on its answers.
        needed = tuple(c for c in parts.strategy.scorer.columns if c not in pool.columns)
        if needed:
            parts.log(f"[trial] t={t}: the student answers {len(pool)} seeds")
        scored = parts.student_answers(pool, needed) if needed else pool
        timings["answer"] = _lap(clock)
        rating = RatingCost()
        if RATER_COLUMNS.intersection(needed):
            if parts.rate is None:
                raise ValueError(f"strategy {parts.strategy.name!r} needs raters; none given")
            parts.log(f"[trial] t={t}: rating the student's answers ({', '.join(needed)})")
            scored, rating = parts.rate(scored, needed, state.memo, state.rng)
            accumulate(state.rating, rating)
        timings["rate"] = _lap(clock) - timings["answer"]
        if rating.tokens and budget is not None and state.teacher_tokens >= budget:
            # The rating calls spent the rest: record what they cost, without generating,
            # training again on the same items or evaluating (a point with no new data).
            parts.log(f"[trial] t={t}: the rating calls spent the teacher budget: stopping")
            state.metrics.append(
                {
                    **{k: state.metrics[-1][k] for k in ("n_synthetic", "accuracy")},
                    "phase": "stopped",
                    "iteration": t,
                    **generation_metrics([], state.items, state.rating, rating),
                    **{f"seconds_{phase}": seconds for phase, seconds in timings.items()},
                }
            )
            save_checkpoint(out, state, parts.save_student, parts.checkpointed, "stopped")
            break
        scores = parts.strategy.score(scored)
        state.scores.append(dict(zip(pool["id"], scalar_scores(scores).tolist(), strict=True)))

        # Select: m seeds (static: the whole budget once, at t = 0).
        n_picks = (m * iterations if t == 0 else 0) if upfront else m
        positions = parts.strategy.pick(scores, n_picks, state.rng) if n_picks else []
        picked = pool.iloc[list(positions)]
        state.picks.append(picked["id"].tolist())
        timings["select"] = _lap(clock) - sum(timings.values())

        # Generate: the teacher writes and answers; filters keep the new, valid ones.
        if len(picked):
            parts.log(f"[trial] t={t}: the teacher writes from {len(picked)} picked seeds")
        new = generate_items(
            config,
            parts,
            picked,
            state.rng,
            novelty,
            t,
            parts.strategy.name,
            spent=state.teacher_tokens,
        )
        state.items += new
        timings["generate"] = _lap(clock) - sum(timings.values())

        # The training set and what it cost (static: the first m * (t + 1) items in pick
        # order, charged the teacher calls behind them).
        accepted, charged, new = _training_set(state, new, m, t, upfront, budget)
        if upfront and t and len(accepted) == state.metrics[-1]["n_synthetic"]:
            parts.log(
                f"[trial] t={t}: static's prefix cannot grow (token cap, or no items left): stop"
            )
            break

        # For the report's fidelity and ordering analyses, not part of the method.
        analysis = RatingCost()
        if config.analysis.score_items:
            analysis = score_items(parts, config, new, pool, state.scores[-1], t)
            if t == iterations - 1:
                first = out / "checkpoints" / "start" / "student"
                scratch = out / "analysis" / "student"
                analysis += score_orderings(
                    parts, config, state.items, pool, state.scores, first, scratch
                )
        timings["score_items"] = _lap(clock) - sum(timings.values())

        # Train: on all accepted items so far (static: its prefix).
        parts.log(f"[trial] t={t}: training on {len(accepted)} items, then evaluating")
        train_stats = _train(parts, accepted, t)
        timings["train"] = _lap(clock) - sum(timings.values())

        # Evaluate and record.
        row, correct = _evaluate(parts, test, t, len(accepted), timings)
        # The strategy's own cost this iteration: answering, rating, scoring and selecting.
        row["selection_seconds"] = timings["answer"] + timings["rate"] + timings["select"]
        row.update(
            generation_metrics(new, charged, state.rating, rating),
            **{f"train_{k}": v for k, v in train_stats.items()},
            **difficulty_counts("picks", picked),
        )
        if parts.strategy.scorer.columns:
            row.update(score_stats(scalar_scores(scores), scored))
        if analysis.calls:
            row.update(analysis_tokens_phase=analysis.tokens, analysis_calls_phase=analysis.calls)
        state.metrics.append(row)
        state.evaluations.append({"phase": "iteration", "iteration": t, "correct": correct})
        state.next_iteration = t + 1
        parts.log(format_row(row))
        save_checkpoint(out, state, parts.save_student, parts.checkpointed)
    return pd.DataFrame(state.metrics)


def _training_set(
    state: TrialState, new: list[dict[str, Any]], m: int, t: int, upfront: bool, budget: int | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """(accepted items to train on at iteration t, every item whose teacher calls they are
    charged, the items this iteration adds to that charge).

    Static trains on a prefix of its budget: the first m * (t + 1) items in *pick* order
    (acceptance order would move seeds whose first attempt was rejected to the end), charged
    the calls behind that prefix, rejected attempts included, and no more than ``budget``
    tokens with the warm-up's.
    """
    if not upfront:
        return state.accepted, state.items, new
    accepted, charged = static_prefix(state.items, state.picks[0], m * (t + 1), budget)
    before = {item["id"] for item in static_prefix(state.items, state.picks[0], m * t, budget)[1]}
    return accepted, charged, [item for item in charged if item["id"] not in before]


def static_prefix(
    items: list[dict[str, Any]], picks: list[str], n: int, budget: int | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The warm-up plus the first ``n`` accepted items of an upfront budget in pick order,
    stopping before a seed whose calls would take the charge over ``budget``: (accepted
    items, every item charged)."""
    charged = [item for item in items if item["iteration"] < 0]
    by_seed: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        if item["iteration"] >= 0:
            by_seed.setdefault(item["seed_id"], []).append(item)
    taken = 0
    for seed_id in picks:
        calls = by_seed.get(seed_id, [])
        right = sum(item["accepted"] for item in calls)
        if taken + right > n or (
            budget is not None and teacher_tokens(charged) + teacher_tokens(calls) > budget
        ):
            break
        charged += calls
        taken += right
    return [item for item in charged if item["accepted"]], charged


def _novelty(
    config: TrialConfig, pool: pd.DataFrame, accepted: list[dict[str, Any]]
) -> NoveltyIndex:
    """The near-duplicate index over the seeds and every accepted item so far."""
    novelty = NoveltyIndex(config.generation.ngram, config.generation.near_duplicate_threshold)
    for question in [*pool["question"], *(item["question"] for item in accepted)]:
        novelty.add(question)
    return novelty


def generate_items(
    config: TrialConfig,
    parts: TrialParts,
    picked: pd.DataFrame,
    rng: np.random.Generator,
    novelty: NoveltyIndex,
    t: int,
    label: str,
    spent: int = 0,
) -> list[dict[str, Any]]:
    """Generation for every picked seed, retried up to ``max_attempts`` times, and not
    begun again once the trial's teacher tokens (``spent`` before this call) reach
    ``budget.teacher_tokens`` (the batch in flight completes).

    Returns every item the teacher produced, accepted or not, with its provenance.
    """
    task, teacher, budget = parts.task, parts.teacher, config.budget.teacher_tokens
    pending = list(zip(picked["id"], picked["question"], strict=True))
    items: list[dict[str, Any]] = []
    for attempt in range(1, config.generation.max_attempts + 1):
        if not pending or (budget is not None and spent >= budget):
            break
        seeds = rng.integers(0, 2**31 - 1, size=len(pending)).tolist()
        generated = teacher.generate(task, [q for _, q in pending], seeds)
        retry = []
        for (seed_id, seed_question), new in zip(pending, generated, strict=True):
            reason = (
                RejectReason.TEACHER_ERROR
                if new.error is not None
                else reject_reason(task, new.question, new.answer, novelty)
            )
            if reason is None:
                novelty.add(new.question)
            else:
                retry.append((seed_id, seed_question))
            spent += new.prompt_tokens + new.completion_tokens
            items.append(
                {
                    "id": f"t{t}-{len(items)}",
                    "seed_id": seed_id,
                    "iteration": t,
                    "attempt": attempt,
                    "strategy": label,
                    "teacher": teacher.model,
                    "question": new.question,
                    "answer": new.answer,
                    "final_answer": task.extract(new.answer) if new.answer else None,
                    "prompt_tokens": new.prompt_tokens,
                    "completion_tokens": new.completion_tokens,
                    "teacher_calls": new.calls,
                    "teacher_retries": new.retries,
                    "teacher_cached": new.cached,
                    "teacher_error": new.error,
                    "accepted": reason is None,
                    "reject_reason": None if reason is None else str(reason),
                }
            )
        pending = retry
    return items


def warm_up(
    config: TrialConfig,
    parts: TrialParts,
    pool: pd.DataFrame,
    test: pd.DataFrame,
    state: TrialState,
    novelty: NoveltyIndex,
) -> None:
    """Generates and trains ``budget.warmup`` items from random seeds before iteration 0.

    Picking with an untrained student is uninformative (STACK-NOTES: the base model is ~96%
    wrong); a shared warm-up makes selection meaningful. Its randomness comes from a generator
    of its own, so every strategy of a (task, student, seed) cell gets the same warm-up items.
    """
    rng = np.random.default_rng([config.seed, 1])
    positions = Uniform()(np.zeros(len(pool)), config.budget.warmup, rng)
    new = generate_items(config, parts, pool.iloc[list(positions)], rng, novelty, -1, "warmup")
    state.items += new
    accepted = state.accepted
    clock = time.perf_counter()
    stats = _train(parts, accepted, -1)
    row, correct = _evaluate(parts, test, -1, len(accepted), {"train": _lap(clock)}, "warmup")
    state.evaluations.append({"phase": "warmup", "iteration": -1, "correct": correct})
    row.update(
        generation_metrics(new, state.items, state.rating, RatingCost()),
        **{f"train_{k}": v for k, v in stats.items()},
    )
    state.metrics.append(row)
    parts.log(format_row(row))


def _train(parts: TrialParts, accepted: list[dict[str, Any]], t: int) -> dict[str, float]:
    if not accepted:  # a teacher whose every item was rejected: nothing to learn from yet
        parts.log(f"[trial] t={t}: no accepted items yet, the student stays as it is")
        return {}
    return parts.train(pd.DataFrame(accepted), t)


def _evaluate(
    parts: TrialParts,
    test: pd.DataFrame,
    t: int,
    accepted: int,
    timings: dict[str, float],
    phase: str = "iteration",
) -> Evaluation:
    """The test accuracy row (per difficulty too, where the task knows it) and each test
    item's correctness (for paired tests across strategies, e.g. McNemar's)."""
    clock = time.perf_counter()
    answers = parts.student_answers(test, ())
    row: dict[str, Any] = {
        "phase": phase,
        "iteration": t,
        "n_synthetic": accepted,
        "accuracy": float(answers["correct"].mean()),
    }
    if DIFFICULTY in answers.columns:
        by_level = answers.groupby(DIFFICULTY)["correct"].mean()
        row.update({f"accuracy_difficulty_{int(k)}": float(v) for k, v in by_level.items()})
    row.update({f"seconds_{phase}": seconds for phase, seconds in timings.items()})
    row["seconds_eval"] = _lap(clock)
    if phase == "base":
        parts.log(f"[trial] base model accuracy {row['accuracy']:.3f} on {len(test)} test items")
    correct = dict(zip(answers["id"].astype(str), map(bool, answers["correct"]), strict=True))
    return row, correct


def _lap(start: float) -> float:
    return time.perf_counter() - start
