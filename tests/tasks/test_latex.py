import pytest

from ray_asd.tasks import make_task
from ray_asd.tasks.latex import MAX_ANSWER_CHARS, extract_boxed, latex_equal


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


@pytest.mark.parametrize(
    "answer", ["9^{9^{9^{9}}}", "10^{10^{10^{10}}}", "100000000!", "2^{12345678}"]
)
def test_pathological_answers_are_refused_fast_off_the_main_thread(answer: str) -> None:
    import time
    from concurrent.futures import ThreadPoolExecutor

    started = time.perf_counter()
    with ThreadPoolExecutor(1) as pool:
        assert not pool.submit(latex_equal, answer, "5").result(timeout=5)
    assert time.perf_counter() - started < 1.0


def test_math_grades_the_last_box_not_an_intermediate_one() -> None:
    task = make_task("math")
    output = "First, $x = \\boxed{3}$.\nThen $y = 2x - 1 = \\boxed{5}$."
    assert task.cut_after_final(output) == output
    assert task.is_correct("q", task.cut_after_final(output), "\\boxed{5}")
