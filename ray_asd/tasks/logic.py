"""`logic`: procedurally generated knights-and-knaves puzzles with a unique solution.

Knights always tell the truth, knaves always lie; each of n people makes one statement, and
exactly one assignment of roles makes every knight's statement true and every knave's false::

    Knights always tell the truth and knaves always lie. Alice says: "Bob is a knave."
    Bob says: "Alice is a knight and Bob is a knight." Who is a knight and who is a knave?

The reference answer checks each statement against the solution, then states it::

    Alice is a knight, so "Bob is a knave" is true.
    Bob is a knave, so "Alice is a knight and Bob is a knight" is false.
    Answer: Alice=knight, Bob=knave

Difficulty knobs: the number of people (the brute-force search doubles with each) and the
statement depth ("X is a knight" is 1, "A and (B or C)" 3). Statements are read by a
recursive-descent parser of a fixed grammar and evaluated on their syntax tree, within
MAX_QUESTION_CHARS, MAX_PEOPLE and MAX_DEPTH: model output is data, never executed.

References: Smullyan 1978, "What Is the Name of This Book?"; Xie et al. 2024, "On
Memorization of Large Language Models in Logical Reasoning" (a knights-and-knaves benchmark).
"""

from __future__ import annotations

import itertools
import random
import re
from dataclasses import dataclass
from functools import cache

import pandas as pd

from ray_asd.columns import DIFFICULTY
from ray_asd.errors import DataError
from ray_asd.tasks.base import TABLE_COLUMNS
from ray_asd.tasks.bounds import overlong
from ray_asd.tasks.game24 import ANSWER_LINE  # "Answer: ...", "**Answer:** ...", "> answer:"

# Bounds on what the parser and solver read: 12 people is 4096 assignments to try, depth 4 at
# most 8 atoms per statement, and a 12-person depth-4 puzzle fits in ~3,000 characters.
MAX_PEOPLE = 12
MAX_GENERATED_PEOPLE = 8  # generation redraws ~4 times: 4 x 256 assignments per puzzle
MAX_DEPTH = 4
MAX_QUESTION_CHARS = 6000
# Draws of a puzzle before giving up on a unique one (2-8 people, depth 2-4: ~2.5-4 on average).
MAX_TRIES = 500
# Single-word names with distinct initials; a puzzle's people are drawn from them.
_NAME_TEXT = (
    "Alice Bob Carol Dave Eve Frank Grace Hank Ivy Jack Kate Leo Mia "
    "Nick Olga Paul Quinn Rose Sam Tina Uma Victor Wendy Xena Yuri Zoe"
)
NAMES = tuple(_NAME_TEXT.split())
PREAMBLE = "Knights always tell the truth and knaves always lie."
QUESTION_END = "Who is a knight and who is a knave?"
ANSWER_FORMAT = (
    "End with a final line of the form 'Answer: <name>=<knight or knave>, ...' naming every person."
)
_ANSWER_LINE = re.compile(ANSWER_LINE + r"(.*)$", flags=re.IGNORECASE | re.MULTILINE)
_STATEMENT = re.compile(r"\b([A-Z][a-z]+) says: \"([^\"]*)\"")
_STATEMENT_CHARS = re.compile(r"[A-Za-z() ]*")
_TOKEN = re.compile(r"\(|\)|[A-Za-z]+")
_PAIR = re.compile(
    r"([A-Za-z][A-Za-z'-]*)\s*(?:=|:|\bis(?:\s+an?)?\b)\s*(knight|knave)", flags=re.IGNORECASE
)
_SEPARATOR = re.compile(r"\s*(?:,|;|\band\b)\s*", flags=re.IGNORECASE)
_BINARY = {"and": "and", "or": "or", "iff": "if and only if"}
ROLE = {True: "knight", False: "knave"}


@dataclass(frozen=True)
class Atom:
    """``person is a knight`` (or a knave, when ``knight`` is False)."""

    person: int
    knight: bool


@dataclass(frozen=True)
class Op:
    """A connective over two statements: ``and``, ``or``, ``if`` (if left then right), ``iff``."""

    op: str
    left: Expr
    right: Expr


Expr = Atom | Op


@cache
def _knights(people: int) -> tuple[int, ...]:
    """Per person, the truth table of "is a knight": bit a is set iff assignment a has no bit
    (people - 1 - i) set (so assignment 0 is all knights, 1 makes the last person a knave)."""
    return tuple(
        sum(1 << a for a in range(1 << people) if not a >> (people - 1 - i) & 1)
        for i in range(people)
    )


def truth_table(expr: Expr, people: int) -> int:
    """``expr``'s truth under all 2^people assignments, as bits (_knights): 6x faster than
    evaluating it once per assignment (generating the built-in 2-6 people, depth 3 data)."""
    everything = (1 << (1 << people)) - 1
    if isinstance(expr, Atom):
        knight = _knights(people)[expr.person]
        return knight if expr.knight else everything ^ knight
    left, right = truth_table(expr.left, people), truth_table(expr.right, people)
    return {
        "and": left & right,
        "or": left | right,
        "if": (everything ^ left) | right,
        "iff": everything ^ left ^ right,
    }[expr.op]


def depth(expr: Expr) -> int:
    """1 for an atom, else one more than the deeper side."""
    return 1 if isinstance(expr, Atom) else 1 + max(depth(expr.left), depth(expr.right))


def render(expr: Expr, names: tuple[str, ...]) -> str:
    """The statement in English; compound parts in parentheses, so it parses back exactly."""
    if isinstance(expr, Atom):
        return f"{names[expr.person]} is a {ROLE[expr.knight]}"

    def part(side: Expr) -> str:
        text = render(side, names)
        return text if isinstance(side, Atom) else f"({text})"

    if expr.op == "if":
        return f"if {part(expr.left)} then {part(expr.right)}"
    return f"{part(expr.left)} {_BINARY[expr.op]} {part(expr.right)}"


@dataclass(frozen=True)
class Puzzle:
    """People (by name, in speaking order) and the statement each one makes."""

    names: tuple[str, ...]
    statements: tuple[Expr, ...]

    def question(self) -> str:
        said = " ".join(
            f'{name} says: "{render(s, self.names)}."'
            for name, s in zip(self.names, self.statements, strict=True)
        )
        return f"{PREAMBLE} {said} {QUESTION_END}"

    def solutions(self) -> list[tuple[bool, ...]]:
        """Every assignment (True = knight) where knights say true things and knaves false."""
        n = len(self.names)
        everything = consistent = (1 << (1 << n)) - 1
        for knight, statement in zip(_knights(n), self.statements, strict=True):
            consistent &= everything ^ knight ^ truth_table(statement, n)  # knight iff true
        return [
            tuple(not a >> (n - 1 - i) & 1 for i in range(n))
            for a in range(1 << n)
            if consistent >> a & 1
        ]

    def unique_solution(self) -> tuple[bool, ...] | None:
        """The one solution, or None when there are none or several."""
        solutions = self.solutions()
        return solutions[0] if len(solutions) == 1 else None

    def solution_text(self, knights: tuple[bool, ...]) -> str:
        """The reference answer: each statement checked against ``knights``, then the answer."""
        lines = [
            f'{name} is a {ROLE[k]}, so "{render(s, self.names)}" is {str(k).lower()}.'
            for name, s, k in zip(self.names, self.statements, knights, strict=True)
        ]
        pairs = ", ".join(f"{n}={ROLE[k]}" for n, k in zip(self.names, knights, strict=True))
        return "\n".join([*lines, f"Answer: {pairs}"])


def random_statement(rng: random.Random, people: int, target: int) -> Expr:
    """A random statement of exactly depth ``target`` about ``people`` people."""
    if target == 1:
        return Atom(rng.randrange(people), rng.random() < 0.5)
    deep = other = random_statement(rng, people, target - 1)
    while other == deep:  # "Bob is a knave or Bob is a knave" says nothing new
        other = random_statement(rng, people, rng.randint(1, target - 1))
    left, right = (deep, other) if rng.random() < 0.5 else (other, deep)
    return Op(rng.choice(("and", "or", "if", "iff")), left, right)


def unique_puzzle(
    rng: random.Random, names: tuple[str, ...], depths: tuple[int, ...]
) -> Puzzle | None:
    """A puzzle whose statements have ``depths`` and exactly one solution, redrawn until it
    has one (at most MAX_TRIES times); None if none was found."""
    for _ in range(MAX_TRIES):
        puzzle = Puzzle(names, tuple(random_statement(rng, len(names), d) for d in depths))
        if puzzle.unique_solution() is not None:
            return puzzle
    return None


def _parse_statement(text: str, names: dict[str, int]) -> Expr | None:
    """Parses the grammar `render` writes; None for anything else (or deeper than MAX_DEPTH).

    expr    := "if" operand "then" operand | operand [("and" | "or" | "if and only if") operand]
    operand := "(" expr ")" | NAME "is" "a" ("knight" | "knave")
    """
    nesting = max(itertools.accumulate({"(": 1, ")": -1}.get(c, 0) for c in text), default=0)
    if not _STATEMENT_CHARS.fullmatch(text) or nesting > MAX_DEPTH - 2:
        return None  # a compound statement is 2 deeper than its nested parentheses
    words = _TOKEN.findall(text)
    position = 0

    def take(*expected: str) -> bool:
        nonlocal position
        if [w.lower() for w in words[position : position + len(expected)]] != list(expected):
            return False
        position += len(expected)
        return True

    def operand() -> Expr | None:
        nonlocal position
        if take("("):
            inner = expr()
            return inner if inner is not None and take(")") else None
        if position < len(words) and words[position] in names:
            person = names[words[position]]
            position += 1
            for knight, role in ROLE.items():
                if take("is", "a", role):
                    return Atom(person, knight)
        return None

    def expr() -> Expr | None:
        if take("if"):
            left = operand()
            right = operand() if left is not None and take("then") else None
            return None if right is None else Op("if", left, right)
        left = operand()
        for op, phrase in (("iff", "if and only if"), ("and", "and"), ("or", "or")):
            if left is not None and take(*phrase.split()):
                right = operand()
                return None if right is None else Op(op, left, right)
        return left

    parsed = expr()
    return parsed if parsed is not None and position == len(words) else None


def parse_question(question: str) -> Puzzle | None:
    """The puzzle a question states (``NAME says: "..."`` per person, each speaking once), or
    None if it is not in the task's format or over the bounds."""
    if len(question) > MAX_QUESTION_CHARS:
        return None
    said = _STATEMENT.findall(question)
    names = tuple(name for name, _ in said)
    if not 1 <= len(names) <= MAX_PEOPLE or len(set(names)) != len(names):
        return None
    index = {name: i for i, name in enumerate(names)}
    statements = [_parse_statement(text.rstrip(". "), index) for _, text in said]
    if any(s is None for s in statements):
        return None
    return Puzzle(names, tuple(s for s in statements if s is not None))


def _parse_assignment(text: str) -> dict[str, str] | None:
    """``{name (case-folded): role}`` of one answer line; None if any part is not a
    ``name=role`` pair, a name gets two roles, or it names more than MAX_PEOPLE people."""
    text = text.strip().strip("*_`$ \t").rstrip(".").strip()
    parts = [p for p in _SEPARATOR.split(text) if p]
    if not parts or len(parts) > MAX_PEOPLE:
        return None
    assignment: dict[str, str] = {}
    for part in parts:
        pair = _PAIR.fullmatch(part.strip("*_` "))
        if pair is None:
            return None
        name, role = pair.group(1).casefold(), pair.group(2).casefold()
        if assignment.setdefault(name, role) != role:
            return None  # "Alice=knight, Alice=knave": conflicting
    return assignment


def extract_assignment(text: str) -> dict[str, str] | None:
    """The assignment an output states on its ``Answer:`` line(s), else on its last line.

    None when there is none, when two answer lines state different assignments, or when a
    line is garbled; None for an output over MAX_OUTPUT_CHARS.
    """
    if overlong(text):
        return None
    lines = [m.group(1) for m in _ANSWER_LINE.finditer(text)]
    lines = lines or [line for line in text.splitlines() if line.strip()][-1:]
    stated = [a for a in map(_parse_assignment, lines) if a is not None]
    if not stated or any(a != stated[0] for a in stated):
        return None
    return stated[0]


def extract(text: str) -> str | None:
    """The final assignment as text, ``alice=knight, bob=knave`` (names case-folded, sorted)."""
    stated = extract_assignment(text)
    return None if stated is None else ", ".join(f"{n}={r}" for n, r in sorted(stated.items()))


def is_correct(question: str, output: str, reference: str) -> bool:
    """True iff the output states the puzzle's one solution (`verify`), naming every person;
    for a question not in the task's format, iff it states the reference's assignment. The
    puzzle outranks the reference: a wrong reference cannot mark a right output wrong, and
    `ray-asd data check` (each reference checked against itself) finds it."""
    if parse_question(question) is not None:
        return verify(question, output)
    predicted = extract_assignment(output)
    return predicted is not None and predicted == extract_assignment(reference)


def verify(question: str, answer: str) -> bool:
    """True iff the question parses, has exactly one solution and the answer states it."""
    puzzle, stated = parse_question(question), extract_assignment(answer)
    knights = None if puzzle is None else puzzle.unique_solution()
    return (
        puzzle is not None
        and knights is not None
        and stated == {n.casefold(): ROLE[k] for n, k in zip(puzzle.names, knights, strict=True)}
    )


@cache  # the built-in splits are drawn once per process (~0.3 s for 1,200 puzzles)
def generate(
    n: int, *, seed: int, min_people: int = 2, max_people: int = 4, max_depth: int = 2
) -> tuple[Puzzle, ...]:
    """``n`` distinct puzzles, people cycling min_people..max_people so each is equally common."""
    rng = random.Random(seed)
    puzzles: list[Puzzle] = []
    seen: set[str] = set()
    while len(puzzles) < n:
        people = min_people + len(puzzles) % (max_people - min_people + 1)
        names = tuple(rng.sample(NAMES, people))
        depths = [rng.randint(1, max_depth) for _ in range(people)]
        depths[rng.randrange(people)] = max_depth  # the puzzle's depth is max_depth
        puzzle = unique_puzzle(rng, names, tuple(depths))
        if puzzle is not None and puzzle.question() not in seen:
            seen.add(puzzle.question())
            puzzles.append(puzzle)
    return tuple(puzzles)


# Train and test are drawn from different seeds and made disjoint, so no test puzzle is a seed.
SPLIT_SEEDS = {"train": 0, "test": 1}
SPLIT_SIZES = {"train": 1000, "test": 200}


def builtin_table(
    split: str, *, min_people: int = 2, max_people: int = 4, max_depth: int = 2
) -> pd.DataFrame:
    """The built-in data of a split (``train``, ``test`` or ``all``, both) as a table
    (TABLE_COLUMNS) plus its ``difficulty`` (the number of people)."""
    knobs = {"min_people": min_people, "max_people": max_people, "max_depth": max_depth}
    if split == "all":
        return pd.concat([builtin_table(s, **knobs) for s in SPLIT_SEEDS], ignore_index=True)
    if split not in SPLIT_SEEDS:
        raise DataError(f"logic built-in data: unknown split {split!r}; use train, test or all")
    held_out = set() if split == "test" else set(generate(SPLIT_SIZES["test"], seed=1, **knobs))
    drawn = generate(SPLIT_SIZES[split], seed=SPLIT_SEEDS[split], **knobs)
    puzzles = [p for p in drawn if p not in held_out]
    records = [
        {
            "id": f"logic-{split}-{i}",
            "source_row": i + 1,
            "question": p.question(),
            "answer": p.solution_text(p.solutions()[0]),  # unique by construction
            DIFFICULTY: len(p.names),
        }
        for i, p in enumerate(puzzles)
    ]
    return pd.DataFrame.from_records(records, columns=[*TABLE_COLUMNS, DIFFICULTY])


def difficulty(question: str) -> int | None:
    """A question's number of people, or None if it is not in the task's format."""
    puzzle = parse_question(question)
    return None if puzzle is None else len(puzzle.names)


def oracle_question(seed_question: str, rng: random.Random) -> str | None:
    """A new puzzle of the seed's structure: as many people (new names), each statement of the
    seed's depth, new statements, one solution. None for a seed not in the format, or when no
    unique puzzle was found."""
    seed = parse_question(seed_question)
    if seed is None:
        return None
    names = tuple(rng.sample(NAMES, len(seed.names)))  # MAX_PEOPLE <= len(NAMES)
    puzzle = unique_puzzle(rng, names, tuple(map(depth, seed.statements)))
    return None if puzzle is None else puzzle.question()


def oracle_answer(question: str) -> str | None:
    """The reference answer of a puzzle in the task's format; None unless it has one solution."""
    puzzle = parse_question(question)
    knights = None if puzzle is None else puzzle.unique_solution()
    return None if puzzle is None or knights is None else puzzle.solution_text(knights)
