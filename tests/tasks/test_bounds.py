import logging
import threading

import pytest

from ray_asd.tasks import make_task
from ray_asd.tasks.bounds import MAX_OUTPUT_CHARS, overlong

TASKS = {
    "gsm8k": ({}, "#### 5"),
    "arith": ({}, "#### 5"),
    "game24": ({}, "Answer: 4 * 6 * 1 * 1 = 24"),
    "generic-exact": ({"checker": "exact"}, "5"),
    "generic-numeric": ({"checker": "numeric"}, "5"),
    "generic-choice": ({"checker": "choice"}, "B"),
    "generic-math": ({"checker": "math"}, "5"),
}
# Outputs that took a checker seconds before the bounds, each with its time then (bb4e30f, 2
# cores, in a thread): the grading path is the trial's, cut_after_final and then is_correct.
STALLING = {
    # Each line start rescanned every blank line after it (the "new question" pattern): 9 s.
    # The old scan took 9 s at 20k and grows with the square: about 80 s at 60k (under the
    # length bound), past the join's 60 s.
    "60k newlines": "\n" * 60_000 + "Answer: 1 + 1 = 24",
    # The numeric extractor copied the text before each signed number: 2.5 s.
    "1 MB of signed numbers": "x -1 " * 200_000,
    # Game of 24 split every line before its length bound: 1 s.
    "10 MB of newlines": "\n" * 10_000_000 + "x",
}


def grade(name: str, output: str) -> bool:
    params, reference = TASKS[name]
    task = make_task(name.split("-")[0], **params)
    task.is_correct("1 1 4 6", reference, reference)  # math's worker process is up
    return task.is_correct("1 1 4 6", task.cut_after_final(output), reference)


@pytest.mark.parametrize("on_thread", [False, True], ids=["main thread", "other thread"])
@pytest.mark.parametrize("output", STALLING.values(), ids=STALLING.keys())
@pytest.mark.parametrize("name", TASKS)
def test_stalling_output_is_wrong_and_bounded(name: str, output: str, on_thread: bool) -> None:
    # The work is bounded, not timed (a loaded machine stretches any wall clock): a scan that
    # is not linear fails the thread variant's 60 s join. Times: scripts/bad_inputs.py.
    result: list[bool] = []
    if on_thread:
        thread = threading.Thread(target=lambda: result.append(grade(name, output)))
        thread.start()
        thread.join(timeout=60)
    else:
        result.append(grade(name, output))
    assert result == [False]


@pytest.mark.parametrize("name", TASKS)
def test_an_output_over_the_bound_has_no_final_answer_and_says_why(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    params, reference = TASKS[name]
    task = make_task(name.split("-")[0], **params)
    padded = "x" * MAX_OUTPUT_CHARS + "\n" + reference  # a correct answer, after the bound
    assert task.extract(reference) is not None
    with caplog.at_level(logging.WARNING, logger="ray_asd.tasks"):
        assert task.extract(padded) is None
        assert not task.is_correct("1 1 4 6", padded, reference)
    assert f"over {MAX_OUTPUT_CHARS}, counts as having no final answer" in caplog.text


def test_overlong_at_the_bound() -> None:
    assert not overlong("x" * MAX_OUTPUT_CHARS)
    assert overlong("x" * (MAX_OUTPUT_CHARS + 1))
