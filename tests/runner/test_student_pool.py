"""Shared student engines (``resources.scoring.shared``): two trials of one student on one
engine get the answers their own processes give, a restarted trial (its adapter saved
again over the same folder) is served its new weights, and an engine that dies is restarted
with its requests re-sent."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import ray
import torch

from ray_asd.answers import answer_table
from ray_asd.columns import ANSWER_NLL
from ray_asd.config import TrainConfig, TrialConfig
from ray_asd.experiment import ExperimentConfig, cells
from ray_asd.runner.scoring import PoolAnswers
from ray_asd.runner.student_pool import start_student_pools, student_key
from ray_asd.student.model import Student
from ray_asd.tasks import load_table, make_task
from tests.runner.conftest import LocalCluster

COLUMNS = ["student_answer", "answer_tokens", "correct", "answer_nll"]


def test_one_pool_per_base_student_whatever_a_request_carries() -> None:
    config = ExperimentConfig.model_validate(
        {
            "student": {"model": "tiny:"},
            "grid": {
                "strategy": ["loss", "random"],
                "student": [
                    "tiny:",
                    {"model": "tiny:", "max_new_tokens": 8},
                    "embedded:smollm2-135m",
                ],
            },
        }
    )
    # Cells: strategy x student, in that order.
    keys = [student_key(cell.config) for cell in cells(config)]
    # loss and random, max_new_tokens 8 or not: one key; another model: another.
    assert len({keys[0], keys[1], keys[3], keys[4]}) == 1
    assert keys[2] == keys[5] != keys[0]


def _trained(student: Student, task: object, table: pd.DataFrame, rate: float) -> Student:
    prompts = [task.prompt(q) for q in table["question"]]  # type: ignore[attr-defined]
    config = TrainConfig(learning_rate=rate, epochs=2, batch_size=len(table))
    student.train(prompts, list(table["answer"]), config, seed=0)
    return student


def test_two_trials_on_one_shared_engine_answer_as_on_their_own(
    ray_cluster: LocalCluster, tmp_path: Path
) -> None:
    experiment = ExperimentConfig.model_validate(
        {
            "name": "shared",
            "task": {"name": "arith"},
            "student": {"model": "tiny:", "max_new_tokens": 12},
            "grid": {"strategy": ["loss", "random"]},
            "resources": {"scoring": {"actors": 1, "cpus": 0, "batch_size": 8, "shared": True}},
        }
    )
    grid = cells(experiment)
    scoring = experiment.resources.scoring
    threads = torch.get_num_threads()
    task = make_task("arith")
    table = load_table(task, grid[0].config.task.train).head(6)
    hold = start_student_pools(
        grid, scoring, prefix="t19", namespace="ray-asd", cache_dir=None, threads=threads
    )
    assert len(hold.handles) == 1  # two trials, one base student: one engine
    students = [
        _trained(Student.load("tiny:", autocast=True), task, table, rate) for rate in (5e-2, 1e-1)
    ]

    def own(config: TrialConfig, student: Student) -> pd.DataFrame:
        """What the trial's own process answers (scoring actors of its own answer the same:
        tests/runner/test_scoring.py)."""
        return answer_table(config, task, student, table, (ANSWER_NLL,))

    def assert_same(served: pd.DataFrame, expected: pd.DataFrame) -> None:
        pd.testing.assert_frame_equal(served[COLUMNS[:3]], expected[COLUMNS[:3]])
        assert served["answer_nll"].to_numpy() == pytest.approx(
            expected["answer_nll"].to_numpy(), rel=1e-4
        )

    shared = [
        PoolAnswers(
            cell.config, student, tmp_path / cell.name / "adapters", hold.pools.engines(cell.config)
        )
        for cell, student in zip(grid, students, strict=True)
    ]
    try:
        for answers in shared:
            answers.changed()
        # The trials' passes interleave on the shared engine: A, B, A.
        first = [shared[0](table, (ANSWER_NLL,)), shared[1](table, (ANSWER_NLL,))]
        again = shared[0](table, (ANSWER_NLL,))
        for i in (0, 1):
            assert_same(first[i], own(grid[i].config, students[i]))
        pd.testing.assert_frame_equal(again[COLUMNS], first[0][COLUMNS])
        assert not first[0]["answer_nll"].equals(first[1]["answer_nll"]), "two adapters"

        # Trial 0 restarts (a new attempt): new weights saved over the same folder, v1 again.
        restarted_student = _trained(Student.load("tiny:", autocast=True), task, table, 2e-1)
        folder = tmp_path / grid[0].name / "adapters"
        restarted = PoolAnswers(
            grid[0].config, restarted_student, folder, hold.pools.engines(grid[0].config)
        )
        restarted.changed()
        assert_same(restarted(table, (ANSWER_NLL,)), own(grid[0].config, restarted_student))

        # The engine dies: Ray restarts it and re-sends the pass's requests.
        (engine,) = hold.handles
        ray.kill(engine, no_restart=False)
        pd.testing.assert_frame_equal(shared[1](table, (ANSWER_NLL,))[COLUMNS], first[1][COLUMNS])
    finally:
        for handle in hold.handles:
            ray.kill(handle)
