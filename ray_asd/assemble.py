"""The one place a trial's parts are built, from its plan (`ray_asd.plan`).

``ray-asd trial`` calls :func:`assemble` with nothing injected: the student answers in this
process (``student.backend: vllm``: a vLLM engine here serves its adapter), LLM completions are
built and cached here. A Tune trial injects the runner's pieces
through the same arguments: scoring actors that serve the student's answers, the shared teacher
and judge pools, reward-model actors.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from ray_asd.answers import EngineAnswers
from ray_asd.parts import ServedAnswers, TrialParts, TrialStudent
from ray_asd.plan import TrialPlan
from ray_asd.raters import Judge, Raters, RewardFn
from ray_asd.tasks import Task, load_table, make_task
from ray_asd.teacher import CompletionBackend, Teacher
from ray_asd.teacher.build import judge_backend, make_teacher

if TYPE_CHECKING:
    from ray_asd.student.protocol import StudentModel


def assemble(
    plan: TrialPlan,
    model: StudentModel,
    *,
    cache_dir: Path | None = None,
    teacher_cache: Path | None = None,
    served: ServedAnswers | None = None,
    completions: CompletionBackend | None = None,
    judge: CompletionBackend | None = None,
    reward: RewardFn | None = None,
    log: Callable[[str], None] = print,
) -> TrialParts:
    """The loop's parts for a trial.

    Args:
        plan: the trial's plan.
        model: the student model in this process (it trains).
        cache_dir: where embedded and tiny models are materialised.
        teacher_cache: the teacher cache folder for LLM completions built here (in-process).
        served: answers to seeds and test items served elsewhere (the runner's scoring
            actors); None: ``model`` answers them, or with ``student.backend: vllm`` an
            engine started here.
        completions: an LLM teacher's backend (the runner's shared pool); None: built here.
        judge: the judge's backend (the runner's judge pool); None: ``judge.llm``'s built
            here, else the teacher's own.
        reward: the reward model (the runner's actors); None: loaded here if needed.
        log: one line of progress.
    """
    config = plan.config
    task = make_task(config.task.name, **config.task.params)
    if served is None and config.student.backend == "vllm":
        from ray_asd.student.vllm_engine import VllmStudent  # imports vLLM

        engine = VllmStudent(config.student, config.train.lora_target_modules, cache_dir)
        served = EngineAnswers(config, task, engine, model)
    teacher = make_teacher(
        config.teacher, cache_dir, completions=completions, teacher_cache=teacher_cache
    )
    return TrialParts(
        plan=plan,
        task=task,
        teacher=teacher,
        student=TrialStudent(plan, task, model, served),
        rate=_raters(plan, task, teacher, cache_dir, teacher_cache, judge, reward),
        log=log,
    )


def seeds_and_test(plan: TrialPlan, task: Task) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The trial's seed pool and test set: the first ``seeds.n`` and ``eval.n`` rows."""
    config = plan.config
    pool = load_table(task, config.task.train).head(config.seeds.n)
    return pool, load_table(task, config.task.test).head(config.eval.n)


def _raters(
    plan: TrialPlan,
    task: Task,
    teacher: Teacher,
    cache_dir: Path | None,
    teacher_cache: Path | None,
    judge: CompletionBackend | None,
    reward: RewardFn | None,
) -> Raters | None:
    """The raters of the plan's rater columns (None: it names none)."""
    if not plan.rater_columns:
        return None
    config = plan.config
    rater = None
    if plan.needs_judge:
        backend = judge or judge_backend(config.judge, teacher, cache_dir, teacher_cache)
        rater = Judge.load(backend, config.judge)
    if plan.needs_reward and reward is None:
        from ray_asd.raters.reward import load_reward_model  # imports torch

        reward = load_reward_model(config.reward, cache_dir).score
    return Raters(task, reward=reward, judge=rater, teacher=teacher)
