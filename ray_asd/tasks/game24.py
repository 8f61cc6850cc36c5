"""Game of 24: an exact solver, the full puzzle set, and a safe verifier of model answers.

A puzzle is a multiset of four integers in 1..13; an answer is an arithmetic expression over
+ - * / and parentheses that uses each of the four numbers exactly once and equals 24 in exact
rational arithmetic. Model output is data: it is parsed by a whitelist AST walker with size
bounds and never evaluated by Python (DESIGN section 6).

References: Yao et al. 2023, "Tree of Thoughts" (the 24.csv puzzle set and its answer format).
"""

from __future__ import annotations

import ast
import itertools
import random
import re
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction
from functools import cache

from ray_asd.tasks.bounds import overlong

TARGET = 24
CARD_VALUES = range(1, 14)
# The whole-answer bound: a four-number expression fits in far fewer characters; anything
# longer is rejected before parsing, so adversarial input costs microseconds.
MAX_EXPRESSION_CHARS = 200
_ALLOWED_CHARS = re.compile(r"[0-9+\-*/() ]*")
_OPERATORS: dict[type[ast.operator], str] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
}
# The line that states the final answer: "Answer: ...", "**Answer:** ...", "> answer: ...".
ANSWER_LINE = r"^[ \t*_`>]*answer[ \t*_`]*:"
_ANSWER_LINE = re.compile(ANSWER_LINE, flags=re.IGNORECASE | re.MULTILINE)
_MARKDOWN = "*_`$ \t"  # emphasis, code and math marks around an answer (never inside: * is times)
# Models write typographic operators; these are the same operations.
_SYMBOL_NORMALISATION = str.maketrans(
    {"×": "*", "∗": "*", "·": "*", "⋅": "*", "÷": "/", "−": "-", "–": "-", "\t": " "}
)


@dataclass(frozen=True)
class Step:
    """One binary operation of a solution: ``left op right = value``."""

    left: Fraction
    op: str
    right: Fraction
    value: Fraction


@dataclass(frozen=True)
class Solution:
    """A solution as an expression string plus the operations in evaluation order."""

    expression: str
    steps: tuple[Step, ...]


def _format(value: Fraction) -> str:
    return (
        str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"
    )


def _operand(value: Fraction) -> str:
    """A step's operand; fractions in parentheses so ``4 / (1/6)`` cannot read as ``(4/1)/6``."""
    text = _format(value)
    return text if value.denominator == 1 else f"({text})"


def _apply(op: str, a: Fraction, b: Fraction) -> Fraction | None:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    return a / b if b != 0 else None


# An expression tree: a leaf number, or (operator, left tree, right tree).
Tree = int | tuple[str, "Tree", "Tree"]


def _splits(numbers: tuple[int, ...]):
    """Every way to split a sorted multiset into two non-empty sorted sub-multisets."""
    indices = range(len(numbers))
    seen = set()
    for size in range(1, len(numbers)):
        for chosen in itertools.combinations(indices, size):
            left = tuple(numbers[i] for i in chosen)
            right = tuple(numbers[i] for i in indices if i not in chosen)
            if (left, right) not in seen:
                seen.add((left, right))
                yield left, right


@cache
def _reachable(numbers: tuple[int, ...]) -> dict[Fraction, Tree]:
    """Every value an expression over exactly ``numbers`` can take, each with one tree.

    ``numbers`` is sorted, so sub-multisets are shared across puzzles through the cache.
    Splits come in both orders, so non-commutative operators see both operand orders.
    """
    if len(numbers) == 1:
        return {Fraction(numbers[0]): numbers[0]}
    values: dict[Fraction, Tree] = {}
    for left, right in _splits(numbers):
        for a, tree_a in _reachable(left).items():
            for b, tree_b in _reachable(right).items():
                for op in "+-*/":
                    value = _apply(op, a, b)
                    if value is not None and value not in values:
                        values[value] = (op, tree_a, tree_b)
    return values


def _find(numbers: tuple[int, ...], target: Fraction) -> Tree | None:
    """A tree over ``numbers`` worth ``target``, by inverting the last operation.

    For each split and each value ``a`` of the left part, the right part must hold the ``b``
    with ``a op b == target`` for some op (the swapped orders come from the mirrored split);
    four dictionary lookups replace the full product of the two value sets: all 1820
    puzzles take under a second.
    """
    if len(numbers) == 1:
        return numbers[0] if target == numbers[0] else None
    for left, right in _splits(numbers):
        right_values = _reachable(right)
        for a, tree_a in _reachable(left).items():
            needed = [("+", target - a), ("-", a - target), ("*", target / a if a else None)]
            needed.append(("/", a / target if target else None))
            for op, b in needed:
                if b is not None and b in right_values and _apply(op, a, b) == target:
                    return (op, tree_a, right_values[b])
    return None


def _render(tree: Tree, steps: list[Step]) -> tuple[str, Fraction]:
    if isinstance(tree, int):
        return str(tree), Fraction(tree)
    op, left, right = tree
    left_text, a = _render(left, steps)
    right_text, b = _render(right, steps)
    value = _apply(op, a, b)
    assert value is not None  # trees are built only from defined operations
    steps.append(Step(a, op, b, value))
    return f"({left_text} {op} {right_text})", value


def solve(numbers: tuple[int, ...] | list[int]) -> Solution | None:
    """One solution of the puzzle, or None if there is none.

    Args:
        numbers: the four puzzle numbers, in any order.

    Returns:
        A solution whose expression has no redundant outer parentheses, or None.
    """
    tree = _find(tuple(sorted(numbers)), Fraction(TARGET))
    if tree is None:
        return None
    steps: list[Step] = []
    expression, _ = _render(tree, steps)
    if expression.startswith("("):
        expression = expression[1:-1]
    return Solution(expression, tuple(steps))


def all_solvable_puzzles() -> list[tuple[tuple[int, int, int, int], Solution]]:
    """The complete set of solvable four-number multisets of 1..13 (1362 of the 1820)."""
    puzzles = []
    for numbers in itertools.combinations_with_replacement(CARD_VALUES, 4):
        solution = solve(numbers)
        if solution is not None:
            puzzles.append((numbers, solution))
    return puzzles


def solution_text(solution: Solution) -> str:
    """The reference answer format: one line per operation, then ``Answer: expr = 24``."""
    lines = [
        f"{_operand(s.left)} {s.op} {_operand(s.right)} = {_format(s.value)}"
        for s in solution.steps
    ]
    return "\n".join([*lines, f"Answer: {solution.expression} = {TARGET}"])


def parse_puzzle(question: str) -> tuple[int, ...] | None:
    """The puzzle's numbers from a question such as ``"1 1 4 6"``; None unless exactly four."""
    numbers = tuple(int(n) for n in re.findall(r"\d+", question) if len(n) <= 3)
    return numbers if len(numbers) == 4 else None


def extract_expression(text: str) -> str | None:
    """The final expression of a model answer.

    Takes the first line that starts with ``Answer:`` (the format the task asks for; markdown
    emphasis allowed), else the last non-empty line; drops a trailing ``= 24``, markdown and
    sentence punctuation. The result is not yet validated: :func:`evaluate_expression` does
    that. An output over MAX_OUTPUT_CHARS is rejected before any scan (10M newlines took 1 s
    to split), an overlong line before any pattern runs on it.
    """
    if overlong(text):
        return None
    match = _ANSWER_LINE.search(text)
    if match:
        line = text[match.end() :].split("\n", 1)[0]
    else:
        lines = [line for line in text.splitlines() if line.strip()]
        if not lines:
            return None
        line = lines[-1]
    if len(line) > 2 * MAX_EXPRESSION_CHARS:
        return None
    line = line.strip(_MARKDOWN).rstrip(".").strip(_MARKDOWN)
    left, equals, right = line.rpartition("=")
    if equals and right.strip(_MARKDOWN + ".") == str(TARGET):
        line = left.strip(_MARKDOWN)
    return line or None


class _Whitelist:
    """Evaluates an AST of integer literals and + - * / only, in exact rationals."""

    def __init__(self) -> None:
        self.literals: list[int] = []

    def value(self, node: ast.AST, depth: int = 0) -> Fraction | None:
        if depth > 16:
            return None
        if isinstance(node, ast.Constant):
            if type(node.value) is not int or node.value > 10**6:
                return None
            self.literals.append(node.value)
            return Fraction(node.value)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            left = self.value(node.left, depth + 1)
            right = self.value(node.right, depth + 1)
            if left is None or right is None:
                return None
            return _apply(_OPERATORS[type(node.op)], left, right)
        return None  # names, calls, attributes, unary ops, **, comparisons, ...


def evaluate_expression(expression: str) -> tuple[Fraction, list[int]] | None:
    """Value and literals of a whitelisted expression, or None if it is not one.

    Rejects, before parsing: more than MAX_EXPRESSION_CHARS characters and any character
    outside digits, spaces, + - * / and parentheses. Rejects, while walking the AST: anything
    but integer literals and binary + - * /, literals above 10**6, nesting deeper than 16,
    division by zero.
    """
    if len(expression) > MAX_EXPRESSION_CHARS:
        return None
    expression = expression.translate(_SYMBOL_NORMALISATION)
    if not _ALLOWED_CHARS.fullmatch(expression) or "**" in expression or "//" in expression:
        return None
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    walker = _Whitelist()
    value = walker.value(tree.body)
    return None if value is None else (value, walker.literals)


def is_valid_solution(numbers: tuple[int, ...], expression: str) -> bool:
    """True iff ``expression`` uses exactly ``numbers`` once each and equals 24 exactly."""
    evaluated = evaluate_expression(expression)
    if evaluated is None:
        return False
    value, literals = evaluated
    return value == TARGET and Counter(literals) == Counter(numbers)


def is_correct(question: str, output: str) -> bool:
    """Whether a model ``output`` solves the puzzle stated in ``question``."""
    numbers = parse_puzzle(question)
    expression = extract_expression(output)
    return numbers is not None and expression is not None and is_valid_solution(numbers, expression)


def oracle_question(seed_question: str, rng: random.Random, max_tries: int = 200) -> str | None:
    """A new solvable puzzle near the seed: one or two of its numbers replaced.

    Returns None if the seed is not a puzzle or no solvable neighbour turned up.
    """
    seed = parse_puzzle(seed_question)
    if seed is None:
        return None
    for _ in range(max_tries):
        numbers = list(seed)
        for position in rng.sample(range(4), rng.choice((1, 2))):
            numbers[position] = rng.choice(CARD_VALUES)
        candidate = tuple(sorted(numbers))
        if candidate != tuple(sorted(seed)) and solve(candidate) is not None:
            return " ".join(map(str, candidate))
    return None


def oracle_answer(question: str) -> str | None:
    """A worked solution (see :func:`solution_text`), or None if unsolvable or not a puzzle."""
    numbers = parse_puzzle(question)
    solution = solve(numbers) if numbers is not None else None
    return None if solution is None else solution_text(solution)
