import threading
from pathlib import Path

import pytest

from ray_asd.tasks.deadline import DeadlineWorker

# A child that speaks the worker's wire format: "ready", then one JSON reply per JSON line.
# "spin" busy-loops with no timer of its own, so only the parent's kill can end it.
STUB = """
import json, sys
print("ready", flush=True)
for line in sys.stdin:
    request = json.loads(line)
    if request == "spin":
        while True:
            pass
    if request == "exit":
        sys.exit(3)
    print(json.dumps([request, "ok"]), flush=True)
"""


@pytest.fixture
def worker(tmp_path: Path):
    script = tmp_path / "stub.py"
    script.write_text(STUB, encoding="utf-8")
    worker = DeadlineWorker(script, deadline_seconds=1.0)
    yield worker
    worker.close()


def test_replies_come_back_and_the_child_is_reused(worker: DeadlineWorker) -> None:
    assert worker.ask("a") == (["a", "ok"], None)
    first = worker._process
    assert worker.ask({"b": 1}) == ([{"b": 1}, "ok"], None)
    assert worker._process is first and worker.restarts == 0


@pytest.mark.slow  # waits out the 1 s deadline
@pytest.mark.parametrize("on_thread", [False, True], ids=["main thread", "other thread"])
def test_a_stalled_request_is_cut_off_and_the_next_one_is_served(
    worker: DeadlineWorker, on_thread: bool
) -> None:
    worker.ask("warm")
    result: list = []

    def stall() -> None:
        result.append(worker.ask("spin"))

    if on_thread:
        thread = threading.Thread(target=stall)
        thread.start()
        thread.join(timeout=10)
    else:
        stall()
    (reply, reason) = result[0]
    assert reply is None and reason == "no verdict within 1 s; stub restarted"
    assert worker.ask("after") == (["after", "ok"], None)
    assert worker.restarts == 1


def test_a_child_that_exits_is_reported_and_replaced(worker: DeadlineWorker) -> None:
    assert worker.ask("exit") == (None, "the stub process died")
    assert worker.ask("again") == (["again", "ok"], None)


def test_a_child_that_never_gets_ready(tmp_path: Path) -> None:
    script = tmp_path / "mute.py"
    script.write_text("import time\ntime.sleep(60)\n", encoding="utf-8")
    worker = DeadlineWorker(script, deadline_seconds=0.3, start_seconds=0.5)
    assert worker.ask("x") == (None, "mute did not start within 0.5 s")
    assert worker._process is None  # killed, not left running
