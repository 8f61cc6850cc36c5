"""The merger of concurrent callers' requests (ray_asd/student/coalesce.py) on a fake engine
that takes requests between steps, as vLLM's does: each caller gets its own outputs in order,
a caller arriving while the engine runs joins its steps, the engine is never entered by two
threads, and an error reaches the callers it concerns."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import pytest

from ray_asd.student.coalesce import Merger

# A request: (label, steps it takes to finish).
Request = tuple[str, int]


class FakeEngine:
    """Requests finish after their number of steps; each step's batch is recorded."""

    def __init__(self, step_seconds: float = 0.001) -> None:
        self.step_seconds = step_seconds
        self.hold_first_step: Callable[[], bool] = lambda: True  # the first step waits on it
        self.left: dict[str, tuple[str, int]] = {}  # id -> (label, steps left)
        self.batches: list[set[str]] = []
        self.stepped = threading.Event()
        self.failing_step = False
        self._next = 0
        self._inside = threading.Lock()

    def add(self, requests: Sequence[Request]) -> list[str]:
        with self._alone():
            if any(label == "bad" for label, _ in requests):
                raise ValueError("bad request")
            ids = []
            for label, steps in requests:
                self._next += 1
                self.left[str(self._next)] = (label, steps)
                ids.append(str(self._next))
            return ids

    def step(self) -> list[tuple[str, str]]:
        with self._alone():
            self.stepped.set()
            time.sleep(self.step_seconds)
            while not self.batches and not self.hold_first_step():
                time.sleep(0.001)
            if self.failing_step:
                raise RuntimeError("engine died")
            self.batches.append({label for label, _ in self.left.values()})
            self.left = {key: (label, n - 1) for key, (label, n) in self.left.items()}
            finished = [(key, label) for key, (label, n) in self.left.items() if n == 0]
            for key, _ in finished:
                del self.left[key]
            return finished

    @contextmanager
    def _alone(self) -> Iterator[None]:
        assert self._inside.acquire(blocking=False), "the engine was entered by two threads"
        try:
            yield
        finally:
            self._inside.release()


def in_threads(*jobs: Callable[[], object]) -> list[object]:
    """Each job on its own thread; their results (or the exceptions they raised)."""
    results: list[object] = [None] * len(jobs)

    def target(i: int) -> None:
        try:
            results[i] = jobs[i]()
        except Exception as error:
            results[i] = error

    threads = [threading.Thread(target=target, args=(i,)) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
        assert not thread.is_alive(), "a caller hung"
    return results


def after_first_step(engine: FakeEngine, job: Callable[[], object]) -> Callable[[], object]:
    """``job``, called once the engine is stepping."""

    def joined() -> object:
        assert engine.stepped.wait(timeout=5)
        return job()

    return joined


def test_one_caller_gets_its_outputs_in_order_whatever_finishes_first() -> None:
    merger = Merger(FakeEngine())
    assert merger.run([("a", 3), ("b", 1), ("c", 2)]) == ["a", "b", "c"]
    assert merger.run([]) == []
    assert merger.counts == {"calls": 1, "busy_periods": 1}


@pytest.mark.parametrize("first_steps, second_steps", [(30, 3), (3, 30)])
def test_a_caller_arriving_mid_run_joins_the_engines_steps(
    first_steps: int, second_steps: int
) -> None:
    """(30, 3): the second finishes inside the first's run; (3, 30): the first returns and the
    second, still waiting, drives the engine on."""
    engine = FakeEngine()
    merger = Merger(engine)
    engine.hold_first_step = lambda: merger.counts["calls"] == 2  # the second has queued
    first = [(f"a{i}", first_steps) for i in range(2)]
    second = [(f"b{i}", second_steps - i) for i in range(2)]
    results = in_threads(
        lambda: merger.run(first), after_first_step(engine, lambda: merger.run(second))
    )
    assert results == [["a0", "a1"], ["b0", "b1"]]
    assert any({"a0", "b0"} <= batch for batch in engine.batches)  # one step served both
    assert merger.counts == {"calls": 2, "busy_periods": 1}
    assert len(engine.batches) < first_steps + second_steps  # fewer steps than one by one


def test_many_callers_each_get_their_own_outputs() -> None:
    merger = Merger(FakeEngine(step_seconds=0.0005))
    jobs = [
        (lambda k=k: merger.run([(f"{k}-{j}", 1 + (k * 7 + j) % 5) for j in range(k + 1)]))
        for k in range(8)
    ]
    results = in_threads(*jobs)
    assert results == [[f"{k}-{j}" for j in range(k + 1)] for k in range(8)]
    assert merger.counts["calls"] == 8


def test_a_bad_request_fails_its_caller_only() -> None:
    engine = FakeEngine()
    merger = Merger(engine)
    results = in_threads(
        lambda: merger.run([("a", 20)]), after_first_step(engine, lambda: merger.run([("bad", 1)]))
    )
    assert results[0] == ["a"]
    assert isinstance(results[1], ValueError)
    assert merger.run([("c", 1)]) == ["c"]  # the merger goes on


def test_an_engine_failure_reaches_every_caller_in_it() -> None:
    engine = FakeEngine()
    merger = Merger(engine)

    def fail_soon() -> None:
        assert engine.stepped.wait(timeout=5)
        time.sleep(0.005)
        engine.failing_step = True

    results = in_threads(
        lambda: merger.run([("a", 10_000)]),
        after_first_step(engine, lambda: merger.run([("b", 10_000)])),
        fail_soon,
    )
    assert all(isinstance(r, RuntimeError) for r in results[:2]), results
    engine.failing_step = False
    assert merger.run([("c", 1)]) == ["c"]


def test_an_output_the_engine_was_not_asked_for_is_an_error() -> None:
    engine = FakeEngine()
    merger = Merger(engine)
    engine.left["stray"] = ("x", 1)  # as an engine whose ids differ from those add gave
    with pytest.raises(KeyError, match="stray"):
        merger.run([("a", 2)])
