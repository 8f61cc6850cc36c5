"""The teacher engine outside Ray: it replays what it served, also after a restart."""

from pathlib import Path

from ray_asd.config import TeacherConfig
from ray_asd.runner.teacher_pool import TaskSpec, TeacherEngine, _split
from ray_asd.tasks import DataSource, load_table, make_task

ARITH = TaskSpec("arith", (("max_ops", 2), ("min_ops", 1)))
SEEDS = list(load_table(make_task("arith", min_ops=1, max_ops=2), DataSource())["question"][:4])


def test_repeated_requests_are_replayed_not_recomputed(tmp_path: Path) -> None:
    engine = TeacherEngine(TeacherConfig(backend="oracle"), None, str(tmp_path / "e0.jsonl"))
    first = engine.serve("write", ARITH, SEEDS[:3], [1, 2, 3])
    again = engine.serve("write", ARITH, SEEDS[1:], [2, 3, 4])
    assert again[:2] == first[1:]
    assert engine.stats() == {"requests": 6, "engine_requests": 4, "calls": 2}
    other_seed = engine.serve("write", ARITH, SEEDS[:1], [99])
    assert engine.stats()["engine_requests"] == 5  # a new seed is a new request
    assert other_seed[0].text  # the oracle wrote a question


def test_a_restarted_pool_replays_every_engines_file(tmp_path: Path) -> None:
    config = TeacherConfig(backend="oracle")
    first = TeacherEngine(config, None, str(tmp_path / "e0.jsonl"))
    written = first.serve("write", ARITH, SEEDS[:3], [1, 2, 3])
    questions = [out.text or "" for out in written]
    answered = first.serve("answer", ARITH, questions, [1, 2, 3])
    with (tmp_path / "e0.jsonl").open("a") as file:
        file.write('{"key": "cut sho')  # an engine killed mid-write
    other = TeacherEngine(config, None, str(tmp_path / "e1.jsonl"))
    assert other.serve("write", ARITH, SEEDS[:3], [1, 2, 3]) == written
    assert other.serve("answer", ARITH, questions, [1, 2, 3]) == answered
    assert other.stats()["engine_requests"] == 0
    # The engine of the cut file restarts and serves something new: that record survives.
    restarted = TeacherEngine(config, None, str(tmp_path / "e0.jsonl"))
    new = restarted.serve("write", ARITH, SEEDS[3:], [4])
    third = TeacherEngine(config, None, str(tmp_path / "e2.jsonl"))
    assert third.serve("write", ARITH, SEEDS[3:], [4]) == new
    assert third.stats()["engine_requests"] == 0


def test_split_covers_the_batch_in_order() -> None:
    assert _split(5, 2) == [(0, 2), (2, 5)]
    assert _split(2, 3) == [(0, 1), (1, 1), (1, 2)]
