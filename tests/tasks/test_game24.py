import ast
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction

import pytest

from ray_asd.tasks import game24
from ray_asd.tasks.bounds import MAX_OUTPUT_CHARS


def test_complete_solvable_set_has_1362_puzzles() -> None:
    puzzles = game24.all_solvable_puzzles()
    assert len(puzzles) == 1362
    assert len({numbers for numbers, _ in puzzles}) == 1362
    for numbers, solution in puzzles:
        assert game24.is_valid_solution(numbers, solution.expression), (numbers, solution)
        assert solution.steps[-1].value == 24


@pytest.mark.parametrize("numbers", [(1, 1, 1, 1), (1, 1, 1, 2), (13, 13, 13, 13), (1, 1, 1, 5)])
def test_known_unsolvable(numbers: tuple[int, ...]) -> None:
    assert game24.solve(numbers) is None


@pytest.mark.parametrize("numbers", [(3, 3, 8, 8), (1, 5, 5, 5), (1, 3, 4, 6), (2, 3, 5, 12)])
def test_hard_puzzles_need_fractions(numbers: tuple[int, ...]) -> None:
    solution = game24.solve(numbers)
    assert solution is not None
    assert game24.is_valid_solution(numbers, solution.expression)


def test_solution_text_lists_steps_then_answer() -> None:
    text = game24.solution_text(game24.solve((3, 3, 8, 8)))
    assert text.splitlines()[-1] == "Answer: 8 / (3 - (8 / 3)) = 24"
    assert "8 / 3 = 8/3" in text
    assert game24.is_correct("3 3 8 8", text)


@pytest.mark.parametrize(
    "expression",
    [
        "(10 - 4) * (5 - 1)",
        "(5 - 1) * (10 - 4)",
        "((10 - 4)) * ((5 - 1))",
        "(10−4)×(5−1)",  # typographic operators
        "6 * 4",
    ],
)
def test_valid_answers(expression: str) -> None:
    numbers = (6, 4) if expression == "6 * 4" else (1, 4, 5, 10)
    assert game24.is_valid_solution(numbers, expression)


@pytest.mark.parametrize(
    ("numbers", "expression"),
    [
        ((1, 4, 5, 10), "(10 - 4) * (5 + 1)"),  # 36
        ((1, 4, 5, 10), "(10 - 4) * 4"),  # wrong numbers
        ((1, 4, 5, 10), "(10 - 4) * (5 - 1) * 1"),  # a number used twice
        ((1, 4, 5, 10), "10 * 4 - 5 * 1"),  # 35
        ((2, 3, 4, 4), "(4 + 4) * 3"),  # a number missing
        ((1, 2, 3, 4), "1 * 2 * 3 * 4 / 0"),
        ((1, 2, 3, 4), "(1 + 2 + 3) * 4.0"),  # not an integer literal
        ((1, 2, 3, 4), "-(1 - 2 - 3) * 4"),  # unary minus is not one of + - * /
        ((1, 2, 3, 4), "12 * 2"),  # digits glued together
        ((2, 2, 6, 6), "2 ** 2 + 6 + 6"),
        ((1, 2, 3, 4), "1 * 2 * 3 * 4 // 1"),
        ((1, 2, 3, 4), ""),
        ((1, 2, 3, 4), "(1 + 2 + 3) * 4 = 25"),
    ],
)
def test_invalid_answers(numbers: tuple[int, ...], expression: str) -> None:
    assert not game24.is_valid_solution(numbers, expression)


ADVERSARIAL = [
    "__import__('os').system('echo pwned')",
    "(1).__class__.__bases__[0].__subclasses__()",
    "len('aaaa') * 6",
    "x * 24",
    "9 ** 9 ** 9 ** 9",
    "2 ** 100000000",
    "9" * 5000 + " * 0 + 24",
    "(" * 100 + "24" + ")" * 100,
    "(" * 10000 + "1" + ")" * 10000,
    "1 + " * 30000 + "1",
    "a" * 100_000,
    "1" * 100_000,
    "lambda: 24",
    "[24][0]",
    "24 if True else 0",
    "24 @ 1",
    "24; import os",
    "\x00" * 1000,
    "２４",  # full-width digits
]


@dataclass
class Work:
    """What the checker hands to its costly steps: the texts its answer-line pattern scans and
    the sources Python's parser reads (the two whose cost grows with the input)."""

    scanned: list[int] = field(default_factory=list)  # lengths
    parsed: list[str] = field(default_factory=list)

    def bounded(self) -> bool:
        return all(n <= MAX_OUTPUT_CHARS for n in self.scanned) and all(
            len(source) <= game24.MAX_EXPRESSION_CHARS for source in self.parsed
        )


class _CountingPattern:
    def __init__(self, pattern: re.Pattern[str], lengths: list[int]) -> None:
        self.pattern, self.lengths = pattern, lengths

    def search(self, text: str) -> re.Match[str] | None:
        self.lengths.append(len(text))
        return self.pattern.search(text)


@pytest.fixture
def work(monkeypatch: pytest.MonkeyPatch) -> Iterator[Work]:
    """A bound on work instead of a wall clock (which flakes under load): every scan and parse
    of the checker recorded."""
    seen, parse = Work(), ast.parse

    def counting_parse(source: str, *args: object, **kwargs: object) -> ast.AST:
        seen.parsed.append(source)
        return parse(source, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(game24, "_ANSWER_LINE", _CountingPattern(game24._ANSWER_LINE, seen.scanned))
    monkeypatch.setattr(game24.ast, "parse", counting_parse)
    yield seen


@pytest.mark.parametrize("expression", ADVERSARIAL)
def test_adversarial_input_is_rejected_before_costly_work(expression: str, work: Work) -> None:
    for numbers in [(1, 2, 3, 4), (24, 1, 1, 1)]:
        assert not game24.is_valid_solution(numbers, expression)
        assert not game24.is_correct(" ".join(map(str, numbers)), f"Answer: {expression} = 24")
    # Nothing over the bounds reaches the parser or the pattern: "(" * 10000 would cost a
    # RecursionError's unwinding, "9 ** 9 ** 9" never reaches evaluation at all.
    assert work.bounded(), (work.scanned, [len(p) for p in work.parsed])
    assert len(work.parsed) <= 4  # at most one parse per check


def test_the_work_bound_catches_an_unbounded_checker(
    work: Work, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without the length bound, the nested parentheses reach the parser: the bound fails.
    monkeypatch.setattr(game24, "MAX_EXPRESSION_CHARS", 10**6)
    game24.evaluate_expression("(" * 10000 + "1" + ")" * 10000)
    monkeypatch.undo()
    assert not work.bounded()


def test_huge_literal_is_rejected_even_within_length_bound() -> None:
    assert game24.evaluate_expression("9" * 150) is None


def test_evaluation_is_exact_rational_arithmetic() -> None:
    value, literals = game24.evaluate_expression("8 / (3 - 8 / 3)")
    assert value == Fraction(24) and sorted(literals) == [3, 3, 8, 8]
    # Floating point would make 24.000000000000004 here and reject a correct answer.
    assert game24.is_valid_solution((1, 5, 5, 5), "5 * (5 - 1 / 5)")


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("4 + 8 = 12\n12 * 2 = 24\nAnswer: (4 + 8) * 2 = 24", "(4 + 8) * 2"),
        ("answer: (4 + 8) * 2 = 24.", "(4 + 8) * 2"),
        ("Let me think.\n(4 + 8) * 2 = 24", "(4 + 8) * 2"),
        ("Answer: (4 + 8) * 2", "(4 + 8) * 2"),
        ("", None),
        ("Answer:", None),
    ],
)
def test_extract_expression(output: str, expected: str | None) -> None:
    assert game24.extract_expression(output) == expected


@pytest.mark.parametrize(
    ("question", "numbers"),
    [("1 1 4 6", (1, 1, 4, 6)), ("Use 4, 9, 10 and 13 to make 24.", None), ("1 2 3", None)],
)
def test_parse_puzzle(question: str, numbers: tuple[int, ...] | None) -> None:
    # "24" in the second question is a fifth number: questions should carry the numbers alone.
    assert game24.parse_puzzle(question) == numbers


def test_every_multiset_agrees_with_brute_force_on_a_sample() -> None:
    # Independent check of the solver: evaluate every expression shape over every ordering.
    def brute(numbers: tuple[int, ...]) -> bool:
        ops = "+-*/"
        for a, b, c, d in set(itertools.permutations(numbers)):
            for x, y, z in itertools.product(ops, repeat=3):
                for shape in (
                    f"(({a}{x}{b}){y}{c}){z}{d}",
                    f"({a}{x}({b}{y}{c})){z}{d}",
                    f"({a}{x}{b}){y}({c}{z}{d})",
                    f"{a}{x}(({b}{y}{c}){z}{d})",
                    f"{a}{x}({b}{y}({c}{z}{d}))",
                ):
                    result = game24.evaluate_expression(shape)
                    if result is not None and result[0] == 24:
                        return True
        return False

    sample = list(itertools.combinations_with_replacement(range(1, 14), 4))[::37]
    for numbers in sample:
        assert (game24.solve(numbers) is not None) == brute(numbers), numbers


@pytest.mark.parametrize(
    "output",
    [
        "To find the answer: try 10 - 4 = 6.\nAnswer: (10 - 4) * (13 - 9) = 24",
        "**Answer:** (10 - 4) * (13 - 9) = 24",
        "**Answer: (10 - 4) * (13 - 9) = 24**",
        "Answer: `(10 - 4) * (13 - 9) = 24`",
        "Answer: (10 - 4)\t* (13 - 9) = 24",
        "Answer: (10 - 4) ⋅ (13 - 9) = 24.",
    ],
)
def test_answers_in_markdown_and_mid_text_mentions(output: str) -> None:
    assert game24.is_correct("4 9 10 13", output)


def test_long_whitespace_is_rejected_before_costly_work(work: Work) -> None:
    for n in (10_000, 200_000):
        assert not game24.is_correct("1 1 4 6", "Answer: 1" + " " * n + "1")
    # 200k characters are over the output bound: never scanned; the 10k line is over the line
    # bound: never parsed.
    assert work.scanned == [10_010] and work.parsed == []
