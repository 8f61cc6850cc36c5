"""The runner's scoring actors: same answers as the trial's own student, one actor process
per trial (not per pass), the trial's new weights served after they change, order kept."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest
import ray
import torch
from ray.exceptions import RayActorError

from ray_asd.answers import answer_table
from ray_asd.columns import ANSWER_NLL
from ray_asd.config import TrainConfig
from ray_asd.config_file import load_config
from ray_asd.experiment import ScoringResources
from ray_asd.runner.scoring import ActorSlot, PoolAnswers, ScoringActors
from ray_asd.student.model import Student
from ray_asd.tasks import load_table, make_task
from tests.runner.conftest import LocalCluster

pytestmark = [pytest.mark.ray, pytest.mark.slow]


class Echo:
    """A scoring actor class that tags each row (with its ``config``), its batch's size and
    its process."""

    def __init__(self, config: str, cache_dir: str | None, threads: int | None) -> None:
        self.tag = config

    def score(self, batch: pd.DataFrame) -> pd.DataFrame:
        import os

        return batch.assign(tag=self.tag, batch_rows=len(batch), pid=os.getpid())


def test_rows_come_back_in_order_in_batches_shared_by_the_actors(
    ray_cluster: LocalCluster,
) -> None:
    resources = ScoringResources(actors=2, cpus=0, batch_size=3)
    actors = ScoringActors(Echo, "x", resources, ActorSlot(), None, None)
    table = pd.DataFrame({"id": [f"r{i}" for i in range(11)]})
    try:
        scored = actors.map(table)
        assert list(scored["id"]) == list(table["id"])
        assert set(scored["tag"]) == {"x"}
        assert scored["batch_rows"].max() == 3  # never more than batch_size rows
        # 4 rows on 2 actors: 2 batches of 2, one per actor, not one batch of 3 and one of 1.
        small = actors.map(table.head(4))
        assert list(small["batch_rows"]) == [2, 2, 2, 2]
        assert actors.map(table.head(0)).empty
    finally:
        actors.close()


def test_two_pools_of_one_trial_take_turns_in_its_slot(ray_cluster: LocalCluster) -> None:
    # The worker node has 2 CPUs: two 1-CPU pools alive at once would leave no CPU for a
    # trial; the student's pool and the reward model's share one slot instead.
    slot, resources = ActorSlot(), ScoringResources(actors=1, cpus=1, batch_size=8)
    student, reward = (ScoringActors(Echo, t, resources, slot, None, None) for t in ("s", "r"))
    table = pd.DataFrame({"id": ["a", "b"]})
    try:
        first = student.map(table)["pid"].iloc[0]
        assert student.map(table)["pid"].iloc[0] == first  # the same actor, pass after pass
        assert set(reward.map(table)["tag"]) == {"r"}
        assert student.actors == [] and slot.holder is reward
        assert set(student.map(table)["tag"]) == {"s"}  # started again when needed
        assert reward.actors == [] and student.start_seconds > 0
    finally:
        student.close()
        reward.close()


def test_the_actors_answer_like_the_trial_s_student_and_outlive_a_pass(
    ray_cluster: LocalCluster, tmp_path: Path
) -> None:
    config = load_config(
        None, ["student.model=tiny:", "task.name=arith", "student.max_new_tokens=12"]
    )
    task = make_task(config.task.name)
    table = load_table(task, config.task.train).head(6)
    student = Student.load(config.student.model, autocast=config.student.autocast)
    threads = torch.get_num_threads()
    # One batch, as answer_table's here: left padding differs with the batch's rows, and the
    # random tiny model's near-uniform logits let that flip a greedy token.
    resources = ScoringResources(actors=1, cpus=1, batch_size=len(table))
    answers = PoolAnswers(
        config, student, tmp_path / "adapters", resources, ActorSlot(), None, threads
    )
    columns = ["student_answer", "answer_tokens", "correct"]
    try:
        base = answers(table, (ANSWER_NLL,))
        pd.testing.assert_frame_equal(
            base[columns], answer_table(config, task, student, table)[columns]
        )
        (actor,) = answers.actors.actors
        pid = ray.get(actor.__ray_call__.remote(lambda self: __import__("os").getpid()))

        # The trial trains: the next pass serves the new adapter, from the same process.
        student.train(
            [task.prompt(q) for q in table["question"]],
            list(table["answer"]),
            TrainConfig(learning_rate=5e-2, epochs=3, batch_size=6),
            seed=0,
        )
        answers.changed()
        trained = answers(table, (ANSWER_NLL,))
        expected = answer_table(config, task, student, table, (ANSWER_NLL,))
        pd.testing.assert_frame_equal(trained[columns], expected[columns])
        assert trained["answer_nll"].to_numpy() == pytest.approx(
            expected["answer_nll"].to_numpy(), rel=1e-4
        )
        assert not trained["answer_nll"].equals(base["answer_nll"]), "weights changed"
        assert answers.actors.actors == [actor]
        assert ray.get(actor.__ray_call__.remote(lambda self: __import__("os").getpid())) == pid
        assert answers.model_seconds > 0
    finally:
        answers.close()
    # close() kills the actor (ray.kill is asynchronous: wait for the calls to fail).
    deadline = time.monotonic() + 30
    with pytest.raises(RayActorError):
        while time.monotonic() < deadline:
            ray.get(actor.__ray_ready__.remote())
            time.sleep(0.2)
