"""Numeric final answers: extraction from free text and exact equality.

Used by `gsm8k`, `arith` and by `generic` with the `numeric` checker. Numbers are compared as
exact fractions: "18", "18.00", "$18", "+18" and "36/2" are all 18, while malformed digit groups
such as "1234,567" or "1.000.000" are not read as a number at all (a wrong number would be worse
than none).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from fractions import Fraction

from ray_asd.tasks.bounds import overlong

# A number as people write it in answers: optional sign, optional currency symbol, digits with
# well-formed thousands separators or plain digits, optional decimals, optional "/ denominator".
_DIGITS = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+"
_SIGNS = "-+−–"  # ASCII, Unicode minus, en dash (typeset minus)
NUMBER = re.compile(
    r"(?P<sign>[" + _SIGNS + r"]\s*)?"
    r"(?:[$€£¥₹]\s*)?"
    r"(?<![\d.,])"  # never start inside a longer digit run
    r"(?P<num>" + _DIGITS + r")"
    r"(?:\s*/\s*(?P<den>" + _DIGITS + r"))?"
    r"(?![\d,.]*\d)"  # never stop inside a malformed group such as 1,23,4 or 1.000.000
)
# Longer numbers are no answer a checker should take; Fraction would also refuse > 4300 digits.
MAX_DIGITS = 50
# <<48/2=24>> calculator annotations of GSM8K solutions.
_CALCULATOR = re.compile(r"<<[^<>]*>>")
# "#### 18": the marker followed by a number (a markdown heading "#### Step 1" is no answer).
FINAL = re.compile(r"####[ \t]*\n?[ \t]*(?=[" + _SIGNS + r"$€£¥₹.\d])")
# "the answer is 18", "Answer: 18", "final answer = 18".
_ANSWER_PHRASE = re.compile(r"answer\s*(?:is\s*[:=]?|[:=])\s*", flags=re.IGNORECASE)
# Where a model stops answering and starts writing the next question. The indent excludes
# newlines: ``^\s*`` rescanned every following blank line from each line start (20k newlines:
# 7 s).
NEW_QUESTION = re.compile(
    r"^[^\S\n]*(?:question|problem)\s*\d*\s*[:.]", flags=re.IGNORECASE | re.MULTILINE
)


def _numbers(text: str) -> Iterator[tuple[str, Fraction]]:
    """Every number in ``text`` as (its text, its value), in order.

    A sign counts only where it cannot be a binary operator: ``"10 - 5"`` holds 10 and 5,
    ``"x = -5"`` holds -5.
    """
    for match in NUMBER.finditer(text):
        value = _value(match)
        if value is None:
            continue
        start = match.start()
        if match.group("sign"):
            # The character before the sign, skipping spaces (not text[:start].rstrip(), which
            # copies the whole prefix per number: 100k numbers took 2.5 s).
            before = start - 1
            while before >= 0 and text[before].isspace():
                before -= 1
            if before >= 0 and (text[before].isdigit() or text[before] in ").]%"):
                start = match.start("sign") + len(match.group("sign"))
                value = abs(value) if match.group("sign").strip() in "-−–" else value
        yield text[start : match.end()].strip(), value


def _value(match: re.Match[str]) -> Fraction | None:
    digits = sum(c.isdigit() for c in match.group(0))
    if digits > MAX_DIGITS:
        return None
    value = Fraction(match.group("num").replace(",", ""))
    if match.group("den") is not None:
        denominator = Fraction(match.group("den").replace(",", ""))
        if denominator == 0:
            return None
        value /= denominator
    sign = (match.group("sign") or "").strip()
    return -value if sign in ("-", "−", "–") else value


def parse_number(text: str) -> Fraction | None:
    """The exact value of the first number in ``text``, or None if it holds no number.

    Tolerates currency symbols, thousands separators, a sign (ASCII, Unicode minus, en dash),
    decimals (trailing ``.0``), simple fractions ``a/b`` and trailing units or punctuation
    (``"18 dollars."``).
    """
    return next((value for _, value in _numbers(strip_calculator(text))), None)


def strip_calculator(text: str) -> str:
    """Removes GSM8K's ``<<expression=result>>`` annotations."""
    return _CALCULATOR.sub("", text)


def extract_number(text: str) -> str | None:
    """The final numeric answer of a solution or model output, as written (not normalised).

    Order of precedence:
      1. the number after the first ``####`` that is followed by one (GSM8K's format; later
         text is usually a model rambling on into a new question), also on the next line;
      2. else, in the last non-empty line before any "Question:" a model went on to write:
         the result after an "answer is" / "answer:" phrase (the number after its last ``=``
         when it states a computation, ``answer is 3 * 6 = 18``), else the line's last number.

    None for an output over MAX_OUTPUT_CHARS.
    """
    if overlong(text):
        return None
    text = strip_calculator(text)
    final = FINAL.search(text)
    if final is not None:
        line = text[final.end() :].split("\n", 1)[0]
        return next((number for number, _ in _numbers(line)), None)
    rambling = NEW_QUESTION.search(text)
    lines = [
        line for line in text[: rambling.start() if rambling else None].splitlines() if line.strip()
    ]
    if not lines:
        return None
    last = lines[-1]
    phrases = list(_ANSWER_PHRASE.finditer(last))
    if phrases:
        stated = last[phrases[-1].end() :]
        stated = stated.rsplit("=", 1)[-1] if "=" in stated else stated
        number = next((number for number, _ in _numbers(stated)), None)
        if number is not None:
            return number
    numbers = list(_numbers(last))
    return numbers[-1][0] if numbers else None


def numbers_equal(predicted: str, reference: str) -> bool:
    """Exact rational equality of two number strings; False if either does not parse."""
    a, b = parse_number(predicted), parse_number(reference)
    return a is not None and b is not None and a == b
