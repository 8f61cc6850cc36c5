"""`arith`: procedurally generated multi-step arithmetic problems with a difficulty knob.

The laptop benchmark for the paper's claim: SmolLM2-135M starts near 0% and climbs to 39%
after 256 random LoRA examples (20% after 64; 100 test problems, 2 epochs, r 16), and
difficulty (the number of operations) separates what a student gets right from what it gets
wrong, so a strategy that focuses on its errors *can* beat random.

A problem chains ``ops`` operations on a start number::

    Start with 12. Add 7, then subtract 5, then multiply by 3. What is the result?

and its reference answer works step by step, one token per digit, GSM8K style::

    12 + 7 = 19. 19 - 5 = 14. 14 * 3 = 42.
    #### 42

Every problem is parseable back into its operations, which gives the task an exact verifier
and lets the oracle teacher write new problems of a seed's structure and difficulty.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

import pandas as pd

from ray_asd.columns import DIFFICULTY
from ray_asd.errors import DataError
from ray_asd.tasks.base import TABLE_COLUMNS
from ray_asd.tasks.numeric import extract_number, parse_number

OPERATIONS = {"+": "add {n}", "-": "subtract {n}", "*": "multiply by {n}"}
_PHRASE = re.compile(r"(add|subtract|multiply by) (\d+)")
_START = re.compile(r"^Start with (\d+)\.")
_VERBS = {"add": "+", "subtract": "-", "multiply by": "*"}
# Multipliers stay small so that values grow with difficulty but stay a few digits long.
MAX_MULTIPLIER = 9


@dataclass(frozen=True)
class Problem:
    """A start value and a chain of (operator, operand) steps."""

    start: int
    steps: tuple[tuple[str, int], ...]

    @property
    def ops(self) -> int:
        return len(self.steps)

    def question(self) -> str:
        phrases = [OPERATIONS[op].format(n=n) for op, n in self.steps]
        chain = ", then ".join(phrases)
        return f"Start with {self.start}. {chain[0].upper()}{chain[1:]}. What is the result?"

    def solution(self) -> str:
        value, parts = self.start, []
        for op, n in self.steps:
            result = _apply(op, value, n)
            parts.append(f"{value} {op} {n} = {result}.")
            value = result
        return " ".join(parts) + f"\n#### {value}"

    def result(self) -> int:
        value = self.start
        for op, n in self.steps:
            value = _apply(op, value, n)
        return value


def _apply(op: str, a: int, b: int) -> int:
    return a + b if op == "+" else a - b if op == "-" else a * b


def random_problem(
    rng: random.Random, ops: int, max_number: int = 50, like: Problem | None = None
) -> Problem:
    """A random problem with ``ops`` operations whose running value never goes negative.

    Args:
        rng: the source of randomness (reproducible under its seed).
        ops: number of operations (the difficulty).
        max_number: largest start value and addend/subtrahend.
        like: keep this problem's operator sequence (the oracle's "same structure") and draw
            new numbers only.
    """
    operators = [op for op, _ in like.steps] if like else [rng.choice("+-*") for _ in range(ops)]
    value = start = rng.randint(2, max_number)
    steps = []
    for op in operators:
        if op == "*":
            n = rng.randint(2, MAX_MULTIPLIER)
        elif op == "-":
            if value < 2:  # nothing sensible to subtract: keep the step count, switch operator
                op, n = "+", rng.randint(2, max_number)
            else:
                n = rng.randint(1, min(value, max_number))
        else:
            n = rng.randint(2, max_number)
        steps.append((op, n))
        value = _apply(op, value, n)
    return Problem(start, tuple(steps))


def parse_problem(question: str) -> Problem | None:
    """The problem a question states, or None if it is not in the task's format."""
    start = _START.match(question.strip())
    steps = tuple((_VERBS[verb.lower()], int(n)) for verb, n in _PHRASE.findall(question.lower()))
    if start is None or not steps:
        return None
    return Problem(int(start.group(1)), steps)


def verify(question: str, answer: str) -> bool:
    """True iff the answer's final number is the result of the problem the question states."""
    problem, final = parse_problem(question), extract_number(answer)
    if problem is None or final is None:
        return False
    return parse_number(final) == problem.result()


def generate(
    n: int, *, seed: int, min_ops: int = 1, max_ops: int = 4, max_number: int = 50
) -> list[Problem]:
    """``n`` distinct problems, difficulties cycling min_ops..max_ops so each is equally common."""
    rng = random.Random(seed)
    problems: list[Problem] = []
    seen: set[Problem] = set()
    while len(problems) < n:
        ops = min_ops + len(problems) % (max_ops - min_ops + 1)
        problem = random_problem(rng, ops, max_number)
        if problem not in seen:
            seen.add(problem)
            problems.append(problem)
    return problems


# Train and test are drawn from different seeds and made disjoint, so no test problem is a seed.
SPLIT_SEEDS = {"train": 0, "test": 1}
SPLIT_SIZES = {"train": 1000, "test": 200}


def builtin_table(
    split: str, *, min_ops: int = 1, max_ops: int = 4, max_number: int = 50
) -> pd.DataFrame:
    """The built-in data of a split (``train``, ``test`` or ``all``, both: what `ray-asd data
    check` compares a file with) as a table (TABLE_COLUMNS), plus its ``difficulty`` (the
    number of operations)."""
    knobs = {"min_ops": min_ops, "max_ops": max_ops, "max_number": max_number}
    if split == "all":
        return pd.concat([builtin_table(s, **knobs) for s in SPLIT_SEEDS], ignore_index=True)
    if split not in SPLIT_SEEDS:
        raise DataError(
            f"arith built-in data: unknown split {split!r}; use one of {[*SPLIT_SEEDS, 'all']}"
        )
    problems = generate(SPLIT_SIZES[split], seed=SPLIT_SEEDS[split], **knobs)
    if split == "train":
        held_out = set(generate(SPLIT_SIZES["test"], seed=SPLIT_SEEDS["test"], **knobs))
        problems = [p for p in problems if p not in held_out]
    records = [
        {
            "id": f"arith-{split}-{i}",
            "source_row": i + 1,
            "question": p.question(),
            "answer": p.solution(),
            DIFFICULTY: p.ops,
        }
        for i, p in enumerate(problems)
    ]
    return pd.DataFrame.from_records(records, columns=[*TABLE_COLUMNS, DIFFICULTY])


def difficulty(question: str) -> int | None:
    """A question's number of operations, or None if it is not in the task's format."""
    problem = parse_problem(question)
    return None if problem is None else problem.ops


def oracle_question(seed_question: str, rng: random.Random) -> str | None:
    """A new problem with the seed's operator sequence (structure and difficulty), new numbers."""
    seed = parse_problem(seed_question)
    if seed is None:
        return None
    numbers = [seed.start, *(n for op, n in seed.steps if op != "*")]
    return random_problem(rng, seed.ops, max(50, *numbers), like=seed).question()


def oracle_answer(question: str) -> str | None:
    """The step-by-step reference answer of a problem in the task's format."""
    problem = parse_problem(question)
    return None if problem is None else problem.solution()
