"""The built-in tasks (gsm8k, math, game24, arith, logic, generic) and the registry naming them."""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd

from ray_asd.columns import DIFFICULTY
from ray_asd.errors import ConfigError, DataError
from ray_asd.registry import build, suggest
from ray_asd.tasks import arith, game24, logic
from ray_asd.tasks.base import (
    TABLE_COLUMNS,
    HubDataset,
    Oracle,
    Task,
    compare_finals,
)
from ray_asd.tasks.bounds import overlong
from ray_asd.tasks.latex import extract_boxed, latex_equal
from ray_asd.tasks.numeric import FINAL, extract_number, numbers_equal

_FINAL_MARKER = "####"
GSM8K_FINAL = FINAL.pattern  # "####" followed by a number
GENERIC_FINAL = r"####[ \t]*\S"
_ANSWER_PREFIX = re.compile(
    r"^(?:the\s+)?(?:final\s+)?answer\s*(?:is\s*[:=]?|[:=])\s*", flags=re.IGNORECASE
)


# What gsm8k and arith share: question/answer columns and `#### <number>` final answers.
NUMERIC_ANSWERS: dict[str, Any] = {
    "question_column": "question",
    "answer_column": "answer",
    "answer_format": "End with a final line of the form '#### <number>'.",
    "final_pattern": GSM8K_FINAL,
    "extract": extract_number,
    "is_correct": compare_finals(extract_number, numbers_equal),
}


def gsm8k_task() -> Task:
    """Grade-school math word problems; reference solutions end with ``#### <number>``."""
    return Task(
        name="gsm8k",
        version=1,
        **NUMERIC_ANSWERS,
        hub=HubDataset("openai/gsm8k", "main"),
        prompt_family="math_word",
    )


def math_task() -> Task:
    """MATH competition problems; the final answer is the last ``\\boxed{...}``."""
    return Task(
        name="math",
        version=2,  # 2: a 1 s budget per comparison (was 5 s, main thread only), depth refusal
        question_column="problem",
        answer_column="solution",
        answer_format="Put the final answer in \\boxed{}.",
        final_pattern=None,
        extract=extract_boxed,
        is_correct=compare_finals(extract_boxed, latex_equal),
        hub=HubDataset("DigitalLearningGmbH/MATH-lighteval", "default"),
        prompt_family="math",
    )


def arith_task(min_ops: int = 1, max_ops: int = 4, max_number: int = 50) -> Task:
    """Procedural multi-step arithmetic (`ray_asd.tasks.arith`); difficulty = operations.

    Args:
        min_ops: fewest operations in a built-in problem.
        max_ops: most operations in a built-in problem.
        max_number: largest start value and addend in a built-in problem.
    """
    if not 1 <= min_ops <= max_ops or max_number < 2:
        raise ConfigError(
            f"task arith: need 1 <= min_ops <= max_ops and max_number >= 2, "
            f"got min_ops={min_ops}, max_ops={max_ops}, max_number={max_number}"
        )
    knobs = {"min_ops": min_ops, "max_ops": max_ops, "max_number": max_number}
    return Task(
        name="arith",
        version=1,
        **NUMERIC_ANSWERS,
        builtin=lambda split: arith.builtin_table(split, **knobs),
        verify=arith.verify,
        oracle=Oracle(arith.oracle_question, arith.oracle_answer),
        prompt_family="math_word",
        difficulty=arith.difficulty,
    )


def logic_task(min_people: int = 2, max_people: int = 4, max_depth: int = 2) -> Task:
    """Knights-and-knaves puzzles (`ray_asd.tasks.logic`); difficulty = number of people.

    Args:
        min_people: fewest people in a built-in puzzle.
        max_people: most people in a built-in puzzle.
        max_depth: deepest statement in a built-in puzzle (each has one this deep).
    """
    # Depth 1 has no unique puzzle: flipping everyone's role flips the truth of every "Y is a
    # knight/knave" too, so each solution of such a puzzle has a mirror image.
    if not 1 <= min_people <= max_people <= logic.MAX_GENERATED_PEOPLE or not (
        2 <= max_depth <= logic.MAX_DEPTH
    ):
        raise ConfigError(
            f"task logic: need 1 <= min_people <= max_people <= {logic.MAX_GENERATED_PEOPLE} "
            f"and 2 <= max_depth <= {logic.MAX_DEPTH}, got min_people={min_people}, "
            f"max_people={max_people}, max_depth={max_depth}"
        )
    knobs = {"min_people": min_people, "max_people": max_people, "max_depth": max_depth}
    return Task(
        name="logic",
        version=1,
        question_column="question",
        answer_column="answer",
        answer_format=logic.ANSWER_FORMAT,
        final_pattern=logic.ANSWER_LINE,
        extract=logic.extract,
        is_correct=logic.is_correct,
        builtin=lambda split: logic.builtin_table(split, **knobs),
        verify=logic.verify,
        oracle=Oracle(logic.oracle_question, logic.oracle_answer),
        prompt_family="logic",
        difficulty=logic.difficulty,
    )


def _game24_correct(question: str, output: str, reference: str) -> bool:
    return game24.is_correct(question, output)  # any valid solution counts, not just the reference


def game24_task() -> Task:
    """Game of 24: make 24 from four numbers with + - * /; checked by the exact verifier."""
    return Task(
        name="game24",
        version=1,
        question_column="question",
        answer_column="answer",
        answer_format="End with a final line of the form 'Answer: <expression> = 24'.",
        final_pattern=game24.ANSWER_LINE,
        extract=game24.extract_expression,
        is_correct=_game24_correct,
        builtin=game24_builtin,
        read_file=read_game24_csv,
        verify=game24.is_correct,
        oracle=Oracle(game24.oracle_question, game24.oracle_answer),
        prompt_family="game24",
    )


def game24_builtin(split: str) -> pd.DataFrame:
    """All 1362 solvable puzzles, one solution each; every fifth one (by sorted order) is test."""
    splits = {"all": lambda i: True, "train": lambda i: i % 5 != 4, "test": lambda i: i % 5 == 4}
    if split not in splits:
        raise DataError(
            f"game24 built-in data: unknown split {split!r}; use one of {sorted(splits)}"
        )
    keep = splits[split]
    records = [
        {
            "id": "24:" + "-".join(map(str, numbers)),
            "source_row": index + 1,
            "question": " ".join(map(str, numbers)),
            "answer": game24.solution_text(solution),
        }
        for index, (numbers, solution) in enumerate(_solvable())
        if keep(index)
    ]
    return pd.DataFrame.from_records(records, columns=list(TABLE_COLUMNS))


@cache
def _solvable() -> tuple[tuple[tuple[int, int, int, int], game24.Solution], ...]:
    return tuple(game24.all_solvable_puzzles())


def read_game24_csv(path: Path) -> pd.DataFrame | None:
    """Reads the Tree-of-Thoughts ``24.csv`` (``Rank,Puzzles,...``), keeping its difficulty
    order: ``difficulty`` is the rank (the puzzles are ranked by how long people took).

    The file has no solutions: each reference answer comes from the project's solver, and an
    unsolvable puzzle is a DataError. Returns None for any other file, which then goes to the
    generic readers.
    """
    if path.suffix.lower() != ".csv":
        return None
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        if "Puzzles" not in (reader.fieldnames or []):
            return None
        records = []
        for number, row in enumerate(reader, start=1):
            numbers = game24.parse_puzzle(row.get("Puzzles") or "")
            if numbers is None or not all(n in game24.CARD_VALUES for n in numbers):
                raise DataError(
                    f"{path}: row {number}: column 'Puzzles' must hold four numbers in 1..13, "
                    f"got {row.get('Puzzles')!r}"
                )
            solution = game24.solve(numbers)
            if solution is None:
                raise DataError(
                    f"{path}: row {number}: puzzle {row['Puzzles']!r} has no solution; remove it"
                )
            records.append(
                {
                    "id": row.get("Rank") or str(number),
                    "source_row": number,
                    "question": " ".join(
                        map(str, sorted(numbers))
                    ),  # a multiset: sorted is canonical
                    "answer": game24.solution_text(solution),
                    DIFFICULTY: int(row["Rank"]) if (row.get("Rank") or "").isdigit() else number,
                }
            )
    return pd.DataFrame.from_records(records, columns=[*TABLE_COLUMNS, DIFFICULTY])


def extract_final_line(text: str) -> str | None:
    """The text after the first ``####``, else the last non-empty line less an "Answer:" prefix.

    None for an output over MAX_OUTPUT_CHARS.
    """
    if overlong(text):
        return None
    if _FINAL_MARKER in text:
        final = text.split(_FINAL_MARKER, 1)[1].split("\n", 1)[0]
    else:
        lines = [line for line in text.splitlines() if line.strip()]
        final = _ANSWER_PREFIX.sub("", lines[-1].strip()) if lines else ""
    final = final.strip()
    return final or None


def _normalise_text(text: str) -> str:
    return " ".join(text.casefold().strip().strip("$").rstrip(".").split())


def exact_equal(predicted: str, reference: str) -> bool:
    """Equality up to case, surrounding whitespace, ``$`` and a final full stop."""
    return _normalise_text(predicted) == _normalise_text(reference)


# "(c)" or a standalone capital; a bare "I" is the pronoun ("I hope it is correct"), not a choice.
_CHOICE = re.compile(r"\(([A-Ja-j])\)|(?<![\w'])([A-HJ])(?![\w'])")
_CHOICE_PHRASE = re.compile(r"answer\s*(?:is\s*[:=]?|[:=])", flags=re.IGNORECASE)


def extract_choice(text: str) -> str | None:
    """The multiple-choice letter (A-J) of an answer.

    The letter after ``####``; else the first letter after the last "answer is" / "answer:"
    phrase of the text (and on its line); else the last ``(x)`` or standalone capital of the
    final line. A bare ``I`` counts only in parentheses.
    """
    final = extract_final_line(text)
    if final is None:
        return None
    scope = final if _FINAL_MARKER in text else text
    phrases = list(_CHOICE_PHRASE.finditer(scope))
    if phrases:
        line = scope[phrases[-1].end() :].split("\n", 1)[0]
        after = _CHOICE.search(line)
        if after is not None:
            return (after.group(1) or after.group(2)).upper()
    letters = [m.group(1) or m.group(2) for m in _CHOICE.finditer(final)]
    return letters[-1].upper() if letters else None


def _math_final(text: str) -> str | None:
    return None if overlong(text) else extract_boxed(text) or extract_final_line(text)


GENERIC_CHECKERS: dict[str, tuple[Callable[[str], str | None], Callable[[str, str], bool]]] = {
    "exact": (extract_final_line, exact_equal),
    "numeric": (extract_number, numbers_equal),
    "math": (_math_final, latex_equal),
    "choice": (extract_choice, str.__eq__),
}


def generic_task(checker: str = "exact") -> Task:
    """Any question/answer data; the answer column holds the final answer itself.

    Args:
        checker: one of GENERIC_CHECKERS: ``exact`` text, ``numeric`` value, ``math``
            (math-verify) or ``choice`` (a letter A-J).
    """
    if checker not in GENERIC_CHECKERS:
        raise ConfigError(
            f"task generic: unknown checker {checker!r}{suggest(checker, GENERIC_CHECKERS)}"
        )
    extract, equal = GENERIC_CHECKERS[checker]
    return Task(
        name="generic",
        version=1,
        question_column="question",
        answer_column="answer",
        answer_format="End with a final line of the form '#### <answer>'.",
        final_pattern=GENERIC_FINAL,
        extract=extract,
        is_correct=compare_finals(extract, equal),
    )


TASKS: dict[str, Callable[..., Task]] = {
    "gsm8k": gsm8k_task,
    "math": math_task,
    "game24": game24_task,
    "arith": arith_task,
    "logic": logic_task,
    "generic": generic_task,
}


def make_task(name: str, **params: object) -> Task:
    """The registered task ``name`` built with ``params``.

    Raises:
        ConfigError: unknown task name (with close matches) or a parameter it does not take.
    """
    return build("task", TASKS, name, params)
