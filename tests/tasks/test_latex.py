import logging
import threading
from pathlib import Path

import pytest

from ray_asd.tasks import latex, make_task
from ray_asd.tasks.deadline import DeadlineWorker
from ray_asd.tasks.latex import MAX_ANSWER_CHARS, extract_boxed, latex_equal, latex_verdict


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The answer is $\\boxed{5}$.", "5"),
        ("$\\boxed{\\frac{1}{2}}$", "\\frac{1}{2}"),
        ("nested \\boxed{\\sqrt{x^{2}+1}} ok", "\\sqrt{x^{2}+1}"),
        ("first \\boxed{1} then the real one \\boxed{2}", "2"),
        ("\\fbox{7}", "7"),
        ("so $\\boxed 5$.", "5"),
        ("\\boxed{ (1, 2] }", "(1, 2]"),
        ("no box here, the answer is 5", None),
        ("\\boxed{}", None),
        ("cut off \\boxed{\\frac{1}{2", None),
    ],
)
def test_extract_boxed(text: str, expected: str | None) -> None:
    assert extract_boxed(text) == expected


@pytest.mark.parametrize(
    ("predicted", "reference", "equal"),
    [
        ("\\frac{1}{2}", "0.5", True),
        ("\\dfrac12", "\\frac{1}{2}", True),
        ("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}", True),
        ("x = 3", "3", True),
        ("(1,2]", "(1,2]", True),
        ("[1,2]", "(1,2]", False),
        ("2, 3", "3, 2", True),
        ("9 \\text{ inches}", "9", True),
        ("10\\%", "10", True),
        ("2\\pi", "\\pi \\cdot 2", True),
        ("3", "4", False),
        ("-\\frac{1}{3}", "\\frac{1}{3}", False),
        ("", "3", False),
    ],
)
def test_latex_equal(predicted: str, reference: str, equal: bool) -> None:
    assert latex_equal(predicted, reference) is equal


def test_overlong_answer_is_rejected_without_parsing() -> None:
    assert not latex_equal("1+" * MAX_ANSWER_CHARS + "1", "1")


def test_math_task_checks_boxed_answers_of_real_solutions() -> None:
    task = make_task("math")
    reference = (
        "The sum of the roots is $-\\frac{b}{a} = -\\frac{-6}{2} = 3$, so the answer is "
        "$\\boxed{3}$."
    )
    assert task.extract(reference) == "3"
    assert task.is_correct("q", reference, reference)
    assert task.is_correct("q", "Thus the sum is \\boxed{3.0}.", reference)
    assert task.is_correct("q", "Sum $= \\boxed{\\frac{6}{2}}$", reference)
    assert not task.is_correct("q", "I think the sum is \\boxed{-3}.", reference)
    assert not task.is_correct("q", "The sum is 3.", reference)  # MATH format requires a box


def test_math_checking_works_off_the_main_thread() -> None:
    # Ray actors and thread pools call checkers from other threads, where SIGALRM fails.
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(latex_equal, "\\frac{2}{4}", "\\frac{1}{2}").result()


# Outputs that stall or blow up a checker, each with how long the math task's checker took on
# it before the deadline (at bb4e30f, in a thread, 30 s cut-off; 2 cores). Those math-verify
# itself stops after its 1 s timeout are slow tests: each waits that second out.
WAITS = pytest.mark.slow
PATHOLOGICAL = [
    pytest.param("\\boxed{9^{9^{9^{9}}}}", id="power tower"),  # refused before too (< 1 ms)
    pytest.param(
        "\\boxed{" + "(" * 10_000 + "1" + ")" * 10_000 + "}", id="10k-deep parentheses"
    ),  # fails fast
    pytest.param(
        "\\boxed{" + "(" * 200 + "1" + ")" * 200 + "}", id="200-deep parentheses"
    ),  # over 30 s
    pytest.param("\\boxed{9!!!}", id="factorial chain", marks=WAITS),  # over 30 s
    pytest.param("\\boxed{(x+y+z)^{400}}", id="symbolic power", marks=WAITS),  # over 30 s
    pytest.param("\\boxed{123456^{654321}}", id="big integer power", marks=WAITS),  # 4 s
    pytest.param("\\boxed{100000!}", id="huge factorial"),  # refused before too
    pytest.param("x" * 1_000_000 + "\\boxed{5}", id="1 MB output"),  # was read whole (and correct)
]


@pytest.mark.parametrize("on_thread", [False, True], ids=["main thread", "other thread"])
@pytest.mark.parametrize("output", PATHOLOGICAL)
def test_pathological_output_is_wrong_with_a_reason(
    output: str, on_thread: bool, caplog: pytest.LogCaptureFixture
) -> None:
    task = make_task("math")
    assert task.is_correct("q", "\\boxed{5}", "\\boxed{5}")  # the worker is up
    # The work is bounded, not timed here (a loaded machine stretches any wall clock): the
    # reason logged says a refusal, the bound or the deadline cut it, and a stall past the
    # join's 30 s fails the thread variant. Times: scripts/bad_inputs.py (1.0-1.7 s).
    result: list[bool] = []

    def check() -> None:
        result.append(task.is_correct("q", output, "\\boxed{5}"))

    with caplog.at_level(logging.WARNING, logger="ray_asd.tasks"):
        if on_thread:
            thread = threading.Thread(target=check)
            thread.start()
            thread.join(timeout=30)
        else:
            check()
    assert result == [False]
    assert any("counted as wrong" in m or "no final answer" in m for m in caplog.messages)


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("9^{9^{9^{9}}}", "the answer is not parsed: a power tower"),
        ("2^{12345678}", "the answer is not parsed: an exponent of seven or more digits"),
        ("1" + "(" * 11 + "1" + ")" * 11, "the answer is not parsed: brackets nested 11 deep"),
        pytest.param("(x+y+z)^{400}", "math-verify took over 1 s", marks=WAITS),
    ],
)
def test_verdict_reasons(answer: str, reason: str) -> None:
    equal, why = latex_verdict(answer, "5")
    assert equal is False and why is not None and why.startswith(reason)


@pytest.mark.slow  # waits out the worker's 1.5 s deadline
def test_a_killed_worker_is_replaced(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # A worker stuck where no signal reaches (C code): only the parent's kill ends it.
    stuck = tmp_path / "stuck.py"
    stuck.write_text('print("ready", flush=True)\ninput()\nwhile True:\n    pass\n')
    monkeypatch.setattr(latex, "_WORKER", DeadlineWorker(stuck, latex.DEADLINE_SECONDS))
    reason = "math-verify: no verdict within 1.5 s; stuck restarted"
    assert latex_verdict("1", "1") == (False, reason)  # the kill ended it, as the reason says
    latex._WORKER.close()


@pytest.mark.slow  # waits out math-verify's 1 s timeout
def test_ordinary_answers_keep_their_verdicts_after_a_timeout() -> None:
    assert latex_verdict("(x+y+z)^{400}", "5")[1] is not None
    assert latex_verdict("\\frac{2}{4}", "0.5") == (True, None)
    assert latex_verdict("\\frac{2}{3}", "0.5") == (False, None)


def test_math_grades_the_last_box_not_an_intermediate_one() -> None:
    task = make_task("math")
    output = "First, $x = \\boxed{3}$.\nThen $y = 2x - 1 = \\boxed{5}$."
    assert task.cut_after_final(output) == output
    assert task.is_correct("q", task.cut_after_final(output), "\\boxed{5}")
