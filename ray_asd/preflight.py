"""Checks that need more than the config file, run before any Ray work or model load.

:func:`preflight` opens and counts every data source of every cell (each distinct one once),
compares the counts with ``seeds.n``, ``eval.n`` and what the strategy's selector can pick,
looks for the environment variables an OpenAI-wire backend reads its key from, and warns
where seeds are also test questions and where remote code may run. It lists every problem at
once, one line each, naming the file and the key (``f.yaml: eval.n: ...``); nothing is
written. No Ray here.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd

from ray_asd.config import TeacherConfig, TrialConfig
from ray_asd.config_file import Problems
from ray_asd.errors import ConfigError, DataError
from ray_asd.experiment import Cell, ExperimentConfig, cells, check_cell
from ray_asd.plan import build_strategy, plan
from ray_asd.schedule import Schedule
from ray_asd.tasks import DataSource, Task, load_table, make_task
from ray_asd.tasks.check import shared_questions
from ray_asd.teacher.backends import openai_settings, vllm_settings

log = logging.getLogger(__name__)

# The keys of a trial config's axes (an experiment's cells name their grid entries instead).
TRIAL_KEYS = {"strategy": "strategy", "student": "student.model", "task": "task"}


def preflight(config: TrialConfig, where: str) -> list[str]:
    """Checks a validated trial or experiment config against its data and environment.

    Args:
        config: from :func:`~ray_asd.config_file.load_config` or
            :func:`~ray_asd.experiment.load_experiment` (an experiment checks every cell).
        where: the config file, for the lines.

    Returns:
        The warnings, each also logged once: seed pools that share questions with their test
        set, and the keys that let remote code run.

    Raises:
        ConfigError: every problem, one line each (data problems among them).
        DataError: every problem, one line each, when all of them are in the data.
    """
    problems = Problems()
    if isinstance(config, ExperimentConfig):
        grid = cells(config, where)  # load_experiment has raised on any cell problem
    else:
        for problem in check_cell(config, TRIAL_KEYS, where):
            problems.add(problem)
        grid = [Cell("trial", config, {}, TRIAL_KEYS)]
    tables: dict[str, pd.DataFrame | DataError] = {}  # one load per distinct (task, source)
    leaks: dict[str, str] = {}  # one warning per distinct (seed pool, test set)
    for cell in grid:
        for problem in _data_problems(cell, where, tables, leaks):
            problems.add(problem)
        for problem in _environment_problems(cell.config, where):
            problems.add(problem)
    warnings = [*dict.fromkeys(leaks.values()), *_remote_code(config, where)]
    for warning in warnings:
        log.warning(warning)
    problems.raise_any()
    return warnings


def _data_problems(
    cell: Cell, where: str, tables: dict[str, pd.DataFrame | DataError], leaks: dict[str, str]
) -> list[str | DataError]:
    """The cell's train and test sources opened and counted, against its sizes and picks;
    ``leaks`` gets a warning where seeds are also test questions."""
    trial, key = cell.config, cell.keys.get("task", "task")
    try:
        task = make_task(trial.task.name, **trial.task.params)
    except ConfigError:
        return []  # check_cell has said why
    problems: list[str | DataError] = []
    rows = {}
    for split, source in (("train", trial.task.train), ("test", trial.task.test)):
        identity = json.dumps(
            [trial.task.name, trial.task.params, source.model_dump(mode="json")], default=str
        )
        if identity not in tables:
            try:
                tables[identity] = load_table(task, source)
            except DataError as error:
                tables[identity] = error
        table = tables[identity]
        if isinstance(table, DataError):
            problems.append(DataError(f"{where}: {key}.{split}: {table}"))
        elif len(table) == 0:
            problems.append(
                DataError(f"{where}: {key}.{split}: {_origin(task, source)} has no rows")
            )
        else:
            rows[split] = table
    sizes = [
        ("train", "seeds.n", trial.seeds.n, "seeds"),
        ("test", "eval.n", trial.eval.n, "test items"),
    ]
    for split, wanted, n, what in sizes:
        if split in rows and n > len(rows[split]):
            origin = _origin(task, getattr(trial.task, split))
            problems.append(
                f"{where}: {wanted}: {n} {what} asked for, but {key}.{split} ({origin}) has "
                f"{len(rows[split])} rows; set {wanted} to at most {len(rows[split])}"
            )
    if "train" in rows:
        problems += _pick_problems(cell, min(trial.seeds.n, len(rows["train"])), where)
    if len(rows) == 2:
        pool, test = rows["train"].head(trial.seeds.n), rows["test"].head(trial.eval.n)
        pair = json.dumps([key, trial.task.model_dump(mode="json"), trial.seeds.n, trial.eval.n])
        if pair not in leaks and (shared := shared_questions(pool, test)):
            seed_row, test_row = shared[0]
            leaks[pair] = (
                f"{where}: {key}: {len(shared)} of the {len(pool)} seeds are also test "
                f"questions (seed row {seed_row} is test row {test_row}): the teacher writes "
                "from them, so the test score may be inflated"
            )
    return problems


def _pick_problems(cell: Cell, pool: int, where: str) -> list[str]:
    """Whether the strategy's selector can pick what the budget asks from ``pool`` seeds.

    Top-k, bottom-k, balanced, the stochastic selectors and k-means++ pick each seed at most
    once; uniform (random, static) starts a fresh permutation when the pool runs out. The
    selector itself is asked, on ``pool`` equal scores, so no list of names can go stale.
    The warm-up always draws uniformly: any size fits any pool.
    """
    budget = cell.config.budget
    try:
        strategy = build_strategy(cell.config)
    except ConfigError:
        return []  # check_cell has said why
    # The most picks at once: static's whole budget at t = 0, else per_iteration.
    picks = Schedule.of(cell.config, strategy.upfront).picks(0)
    if picks <= pool:
        return []
    try:
        strategy.selector(np.ones(pool), picks, np.random.default_rng(0))
    except ValueError:
        label = cell.keys.get("strategy", "strategy")
        asked = (
            f"{budget.per_iteration} x {budget.iterations} iterations = {picks} picks at once"
            if strategy.upfront
            else f"{picks} picks per iteration"
        )
        return [
            f"{where}: budget.per_iteration: {asked} from a pool of {pool} seeds, but strategy "
            f"{strategy.name!r} ({label}) selects with {strategy.selector_name}, which picks a "
            f"seed at most once; lower budget.per_iteration to {pool} or raise seeds.n"
        ]
    return []


def _origin(task: Task, source: DataSource) -> str:
    """Where a source's rows come from, as a person would say it."""
    limit = f", first {source.limit} rows" if source.limit is not None else ""
    if source.path is not None:
        return f"{source.path}{limit}"
    hub = source.hub or (task.hub.path if task.hub else None)
    if source.hub is not None or task.builtin is None:
        return f"hub dataset {hub} split {source.split!r}{limit}"
    return f"{task.name}'s built-in {source.split!r} split{limit}"


def _environment_problems(trial: TrialConfig, where: str) -> list[str]:
    """The API key variables the trial's OpenAI-wire teacher and judge read; never a value."""
    llms: list[tuple[str, TeacherConfig]] = [("teacher", trial.teacher)]
    if trial.judge.llm is not None:
        try:
            if plan(trial).needs_judge:  # the judge pool starts only for a strategy that reads it
                llms.append(("judge.llm", trial.judge.llm))
        except ConfigError:
            pass  # check_cell has said why the strategy does not build
    problems = []
    for key, llm in llms:
        settings = openai_settings(llm)
        if settings is None:
            continue
        from ray_asd.teacher.openai_api import api_key

        try:
            api_key(llm)  # the backend's own rule: a local base_url may go without a key
        except ConfigError:
            problems.append(
                f"{where}: {key}.openai.api_key_env: the environment variable "
                f"{settings.api_key_env} is not set; it must hold the API key of "
                f"{settings.base_url or 'the OpenAI API'}"
            )
    return problems


def _remote_code(config: TrialConfig, where: str) -> list[str]:
    """A warning per key that lets a model's own Python code run (transformers and vLLM
    ``trust_remote_code``): code from the model's repository, run as this user."""
    keys = ["student.trust_remote_code"] if config.student.trust_remote_code else []
    if isinstance(config, ExperimentConfig):  # students are the one model axis of a grid
        keys += [
            f"grid.student[{i}].trust_remote_code"
            for i, entry in enumerate(config.grid.student or [])
            if isinstance(entry, dict) and entry.get("trust_remote_code")
        ]
    if config.reward.trust_remote_code and config.reward.model is not None:
        keys.append("reward.trust_remote_code")
    judge = config.judge.llm
    engines = {  # the vLLM engines a trial may start, by key
        "teacher": vllm_settings(config.teacher),
        "judge.llm": vllm_settings(judge) if judge is not None else None,
        "reward": config.reward.vllm if config.reward.backend == "vllm" else None,
    }
    keys += [
        f"{key}.vllm.engine_kwargs.trust_remote_code"
        for key, engine in engines.items()
        if engine is not None and engine.engine_kwargs.get("trust_remote_code")
    ]
    return [
        f"{where}: {key}: remote code allowed: the model repository's own Python runs in the "
        "trial's processes; allow it only for models you trust"
        for key in keys
    ]
