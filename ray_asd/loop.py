"""The paper's loop for one trial (DESIGN section 2), with a checkpoint after every iteration.

    for t in 0..T-1:
        answer   the student answers every seed             parts.student.answers
        rate     other models rate the answers (if asked)   parts.rate (reward, judge, lion)
        select   the strategy scores every seed, picks m    plan.strategy (a bandit: its arms)
        generate the teacher writes a new question per pick, then answers it; filters reject
        (score the new items as their seeds were, for `ray-asd report`; not the method)
        train    LoRA on all accepted items so far          parts.student.train
                 (a bandit: its arms paid in learning progress, ray_asd.progress)
        evaluate accuracy on the test set                   parts.student.answers
        record   metrics row + checkpoint (resume continues at t + 1)

No Ray here: `ray_asd.parts` holds what the loop calls, in-process in `ray_asd.trial` and on
Ray actors in the runner. All randomness of the loop flows from one numpy generator whose
state is checkpointed, so a resumed trial makes exactly the picks and teacher requests an
uninterrupted one makes, and never repeats a finished iteration's teacher calls.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ray_asd import metrics
from ray_asd.analysis import analyse
from ray_asd.generation import generate_items, novelty_index
from ray_asd.metrics import Generation, Stages, format_row
from ray_asd.parts import TrialParts
from ray_asd.progress import learn, select, train
from ray_asd.records import Spend
from ray_asd.state import TrialState, latest_checkpoint, load_checkpoint, save_checkpoint
from ray_asd.strategies.selectors import Uniform

# (metrics row, test item id -> correct): the base model's evaluation, shared by a cell.
Evaluation = tuple[dict[str, Any], dict[str, bool]]


def run_trial(
    parts: TrialParts, pool: pd.DataFrame, test: pd.DataFrame, out: Path, start: Path | None = None
) -> pd.DataFrame:
    """Runs a trial's iterations from ``start`` (default: the latest checkpoint in ``out``,
    else a new start) on the seed ``pool``, evaluated on ``test``; checkpoints go to
    ``out/checkpoints``. Returns its metrics, one row per phase (base, warm-up, iterations)."""
    plan, schedule, student, log = parts.plan, parts.plan.schedule, parts.student, parts.log
    log(schedule.describe(len(pool), len(test)))
    start = start or latest_checkpoint(out)  # resume where a checkpoint is
    if start is None:
        start = begin(parts, pool, test, out)  # else: the base model, the warm-up
    state = resume(parts, start)
    novelty = novelty_index(plan.config, pool, state.accepted)
    for t in range(state.next_iteration, schedule.iterations):
        if schedule.stops_before(t, state.spent.tokens):
            log(f"[trial] teacher budget spent ({state.spent.tokens} tokens): stopping at t={t}")
            break
        stages = Stages()
        with stages("answer"):
            scored = student.answers(pool, plan.student_columns) if plan.answers_seeds else pool
        with stages("rate"):
            scored, rating = _rate(parts, scored, state, t)
        state.rating += rating
        if rating.tokens and schedule.spent(state.spent.tokens):
            _stop(parts, state, t, stages, rating, out)  # the rating calls spent the rest
            break
        with stages("select"):
            selection = select(parts, pool, scored, state, t)
        with stages("generate"):
            name, spent = plan.strategy.name, state.spent.tokens
            new = generate_items(parts, selection.picked, state.rng, novelty, t, name, spent)
        state.items += new
        accepted, charged, new = schedule.training_set(state.items, state.picks[0], new, t)
        if schedule.upfront and t and len(accepted) == state.metrics[-1]["n_synthetic"]:
            log(f"[trial] t={t}: static's prefix cannot grow (token cap, or no items left): stop")
            break
        with stages("score_items"):  # for the report's fidelity and ordering, not the method
            analysis = analyse(parts, pool, state, new, t, out)
        trained, learned = learn(parts, state, selection, new, accepted, t, stages)
        correct, accuracy = _evaluate(parts, test, stages)
        generation = Generation(new, charged, state.rating, rating)
        row = metrics.row(
            "iteration",
            t,
            len(accepted),
            accuracy,
            stages,
            generation=generation,
            train=trained,
            selection=selection,
            analysis=analysis,
            model_seconds=student.model_seconds(),
            bandit=learned,
        )
        state.record(row, correct)
        state.next_iteration = t + 1
        log(format_row(row))
        save_checkpoint(out, state, student.save, parts.checkpointed)
    return pd.DataFrame(state.metrics)


def resume(parts: TrialParts, start: Path) -> TrialState:
    """The state saved at checkpoint ``start``, with its student loaded."""
    config = parts.plan.config
    state = load_checkpoint(start)
    parts.log(f"[trial] continuing at iteration {state.next_iteration} from {start}")
    parts.student.load(start / "student")
    if state.next_iteration == 0 and config.strategy.stream:
        # Another random stream for the picks and teacher requests (an A/A pair's second arm);
        # the warm-up, drawn from its own generator, stays the cell's.
        state.rng = np.random.default_rng([config.seed, 4, config.strategy.stream])
    return state


def begin(
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
    config = parts.plan.config
    state = TrialState(rng=np.random.default_rng(config.seed))
    row, correct = base or evaluate_base(parts, test)
    state.record(dict(row), correct)
    parts.student.load(None)
    if parts.plan.schedule.warmup:
        warm_up(parts, pool, test, state)
    rows = len(state.metrics)
    return save_checkpoint(out, state, parts.student.save, parts.checkpointed, "start", rows)


def evaluate_base(parts: TrialParts, test: pd.DataFrame) -> Evaluation:
    """The base model on the test set: greedy and deterministic, so the runner evaluates it
    once per (task, student) and every seed's trial reuses it."""
    parts.student.load(None)  # the base model, whatever the student did before
    stages = Stages()
    correct, accuracy = _evaluate(parts, test, stages)
    parts.log(f"[trial] base model accuracy {accuracy['accuracy']:.3f} on {len(test)} test items")
    row = metrics.row("base", -1, 0, accuracy, stages, model_seconds=parts.student.model_seconds())
    return row, correct


def warm_up(parts: TrialParts, pool: pd.DataFrame, test: pd.DataFrame, state: TrialState) -> None:
    """Generates and trains ``budget.warmup`` items from random seeds before iteration 0.

    Picking with an untrained student is uninformative: the base model answers ~96% of arith
    seeds wrong, and the NLL of its rambling answers is lower on harder problems. A shared
    warm-up makes selection meaningful. Its randomness comes from a generator of its own, so
    every strategy of a (task, student, seed) cell gets the same warm-up items.
    """
    config, schedule = parts.plan.config, parts.plan.schedule
    rng = np.random.default_rng([config.seed, 1])
    stages = Stages()
    with stages("generate"):
        positions = Uniform()(np.zeros(len(pool)), schedule.warmup, rng)
        picked, novelty = pool.iloc[list(positions)], novelty_index(config, pool, [])
        new = generate_items(parts, picked, rng, novelty, -1, "warmup")
    state.items += new
    with stages("train"):
        trained = train(parts, state.accepted, -1)
    correct, accuracy = _evaluate(parts, test, stages)
    row = metrics.row(
        "warmup",
        -1,
        len(state.accepted),
        accuracy,
        stages,
        generation=Generation(new, state.items, state.rating),
        train=trained,
        model_seconds=parts.student.model_seconds(),
    )
    state.record(row, correct)
    parts.log(format_row(row))


def _rate(
    parts: TrialParts, scored: pd.DataFrame, state: TrialState, t: int
) -> tuple[pd.DataFrame, Spend]:
    columns = parts.plan.rater_columns
    if not columns:
        return scored, Spend()
    assert parts.rate is not None, "assemble builds raters for the plan's rater columns"
    parts.log(f"[trial] t={t}: rating the student's answers ({', '.join(columns)})")
    return parts.rate(scored, columns, state.memo, state.rng)


def _stop(
    parts: TrialParts, state: TrialState, t: int, stages: Stages, rating: Spend, out: Path
) -> None:
    """Records what the rating calls cost, without generating, training again on the same
    items or evaluating (a point with no new data)."""
    parts.log(f"[trial] t={t}: the rating calls spent the teacher budget: stopping")
    last = state.metrics[-1]
    row = metrics.row(
        "stopped",
        t,
        last["n_synthetic"],
        {"accuracy": last["accuracy"]},
        stages,
        generation=Generation([], state.items, state.rating, rating),
        model_seconds=parts.student.model_seconds(),
    )
    state.metrics.append(row)
    save_checkpoint(out, state, parts.student.save, parts.checkpointed, "stopped")


def _evaluate(
    parts: TrialParts, test: pd.DataFrame, stages: Stages
) -> tuple[dict[str, bool], dict[str, float]]:
    """Each test item's correctness (for paired tests across strategies, e.g. McNemar's) and
    the accuracy (per difficulty too, where the task knows it); timed as ``eval``."""
    with stages("eval"):
        answers = parts.student.answers(test, ())
    correct = dict(zip(answers["id"].astype(str), map(bool, answers["correct"]), strict=True))
    return correct, metrics.accuracy(answers)
