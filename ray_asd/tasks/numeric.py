"""Numeric final answers: extraction from free text and exact equality.

Used by `gsm8k` and by `generic` with the `numeric` checker. Numbers are compared as exact
fractions: "18", "18.00", "$18", "+18" and "36/2" are all 18, while malformed digit groups such
as "1234,567" are not read as a number at all (a wrong number would be worse than none).
"""

from __future__ import annotations

import re
from fractions import Fraction

# A number as people write it in answers: optional sign, optional currency symbol, digits with
# well-formed thousands separators or plain digits, optional decimals, optional "/ denominator".
_DIGITS = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+"
NUMBER = re.compile(
    r"(?P<sign>(?<![\w.)\]])[-+−]\s*)?"  # a sign only where it cannot be a binary minus
    r"(?:[$€£¥₹]\s*)?"
    r"(?<!\d)(?<!\d[.,])"  # never start inside a longer digit run
    r"(?P<num>" + _DIGITS + r")"
    r"(?:\s*/\s*(?P<den>" + _DIGITS + r"))?"
    r"(?![\d,]*\d)"  # never stop inside a malformed group such as 1,23,4
)
# <<48/2=24>> calculator annotations of GSM8K solutions.
_CALCULATOR = re.compile(r"<<[^<>]*>>")
_MARKER = "####"
# "the answer is 18", "Answer: 18", "final answer = 18": the number right after the phrase.
_ANSWER_PHRASE = re.compile(r"answer\s*(?:is\s*[:=]?|[:=])\s*", flags=re.IGNORECASE)


def parse_number(text: str) -> Fraction | None:
    """The exact value of a number string, or None if ``text`` holds no number.

    Tolerates currency symbols, thousands separators, a sign (ASCII or Unicode minus),
    decimals (trailing ``.0``), simple fractions ``a/b`` and trailing units or punctuation
    (``"18 dollars."``). Takes the first number in ``text``.
    """
    match = NUMBER.search(strip_calculator(text))
    return None if match is None else _value(match)


def _value(match: re.Match[str]) -> Fraction | None:
    value = Fraction(match.group("num").replace(",", ""))
    if match.group("den") is not None:
        denominator = Fraction(match.group("den").replace(",", ""))
        if denominator == 0:
            return None
        value /= denominator
    sign = (match.group("sign") or "").strip()
    return -value if sign in ("-", "−") else value


def strip_calculator(text: str) -> str:
    """Removes GSM8K's ``<<expression=result>>`` annotations."""
    return _CALCULATOR.sub("", text)


def extract_number(text: str) -> str | None:
    """The final numeric answer of a solution or model output, as written (not normalised).

    Order of precedence:
      1. the first number after the first ``####`` (GSM8K's format; later text is usually a
         model rambling on into a new question);
      2. with no ``####``: in the last non-empty line, the number right after "answer is",
         "answer:" or "answer =", else the last number of that line.
    """
    text = strip_calculator(text)
    if _MARKER in text:
        after = text.split(_MARKER, 1)[1]
        match = NUMBER.search(after.split("\n", 1)[0])
        return None if match is None else match.group(0).strip()
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return None
    last = lines[-1]
    phrases = list(_ANSWER_PHRASE.finditer(last))
    if phrases:
        phrase = phrases[-1]
        match = NUMBER.match(last, phrase.end())
        if match is not None:
            return match.group(0).strip()
    matches = list(NUMBER.finditer(last))
    return matches[-1].group(0).strip() if matches else None


def numbers_equal(predicted: str, reference: str) -> bool:
    """Exact rational equality of two number strings; False if either does not parse."""
    a, b = parse_number(predicted), parse_number(reference)
    return a is not None and b is not None and a == b
