"""The rating an LLM judge gives a student's answer, read from the judge's free text.

The judge prompt asks for a last line "Rating: N", but real judges (API models, instruct models,
tiny models) decorate it, paraphrase it, restate the scale, correct themselves or stop early.
`parse_rating` reads, in this order, and stops at the first kind that holds a valid value:

1. Labelled verdicts; the last one in the text wins, as judges restate or correct themselves:
   - a label and a separator: "Rating: 7", "rating - 7", "Score = 8.5", "Grade:9",
     "Final verdict: [[6]]", "Rating (1-10): 7", "Rating:" with the value alone on the next line;
     the labels are rating, score, grade and verdict;
   - a stated verdict after my/our/final/overall: "My rating is 7", "Overall score would be 8";
   - a first-person verb: "I would rate this answer 6 out of 10", "I'd give it a 4/10",
     "I would give it a score of 8", "I'd rate it 7."; the value needs an article ("a 7"), a
     fraction, or to end the clause, as in "I give 5 apples" or "I rate the 3 steps" it is maths;
   - MT-Bench "[[7]]" and Prometheus "[RESULT] 4".
   Values after a label or a stated verdict may be number words ("Rating: seven").
2. Else the last bare fraction "N/10" or "N out of 10", unless it sits in arithmetic
   ("x = 3/10", "3/10 + 1") or measures something ("7/10 of the tank").
3. Else a last non-empty line that is only a number: "7", "**7**.".

Everywhere: a value outside [low, high] is skipped (so another valid one may count); a fraction
counts only when its denominator equals ``high``; a range ("1-10", "1 to 10", "7 or 8") is no
value; markdown (``**``, ``__``, backticks), the full-width colon and case are ignored.
"""

from __future__ import annotations

import re

_WORDS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
}
# Markdown emphasis becomes space, not nothing, so that "3*4" never reads as 34. "#" stays:
# "#### 7" is a GSM8K final answer, not a verdict.
_NORMALISE = str.maketrans({"*": " ", "_": " ", "`": " ", "：": ":", "／": "/", "’": "'"})

_NUMBER = r"\d+(?:\.\d+)?"
_NUMBER_OR_WORD = _NUMBER + "|" + "|".join(_WORDS)
# A value never runs on into a longer number, a word ("2-step"), a percentage or a date, and is
# never one end of a range.
_END = r"(?!\.?\d|[-–]\w|[\w%/]|[ \t]*(?:[-–—]|to\b|or\b|and\b)[ \t]*\d)"


def _value(number: str, fraction: str = "?") -> str:
    """A value pattern with groups ``num`` and ``den``; ``fraction`` quantifies the "/ den" part."""
    return (
        rf"(?<![\d.\-])(?P<num>{number})"
        rf"(?:[ \t]*(?:/|out[ \t]+of)[ \t]*(?P<den>{_NUMBER})){fraction}{_END}"
    )


_RANGE = r"\d+[ \t]*(?:[-–]|to)[ \t]*\d+"
# The scale a judge may put between label and separator: "Rating (1-10): 7", "Score out of 10:
# 8", "Rating on a scale of 1 to 10: 7".
_SCALE_NOTE = (
    rf"(?:[ \t]*\(?(?:{_RANGE}|out[ \t]+of[ \t]+\d+"
    rf"|(?:on[ \t]+a[ \t]+scale[ \t]+)?(?:of|from)[ \t]+{_RANGE})\)?)?"
)
# The value stays on its label's line unless the next line holds it alone: "Score:" followed by
# a numbered list must not read as 1.
_TO_VALUE = r"[ \t]*(?:\n\s*(?=\S+[ \t]*(?:\n|$)))?(?:an?[ \t]+)?(?:\[\[?[ \t]*)?"
_LABEL = r"(?:rating|score|grade|verdict)"

_LABELLED = re.compile(
    rf"\b{_LABEL}{_SCALE_NOTE}(?:[ \t]*[:=]|[ \t]+[-–—](?=[ \t])){_TO_VALUE}"
    + _value(_NUMBER_OR_WORD),
    re.IGNORECASE,
)
# Only after my/our/final/overall: "the score is 7" is as likely a word problem's sentence.
_STATED = re.compile(
    rf"\b(?:my|our|final|overall)[ \t]+(?:\w+[ \t]+)?{_LABEL}"
    rf"[ \t]+(?:is|would[ \t]+be|will[ \t]+be)[ \t]*:?{_TO_VALUE}" + _value(_NUMBER_OR_WORD),
    re.IGNORECASE,
)
# A subject is required: "rate" alone is as often a noun of the maths ("a rate of 5 km/h"). The
# words before the value may not mention the scale ("I will rate it on a scale of 1 to 10").
_FIRST_PERSON = re.compile(
    r"\b(?:i|we)(?:'d|'ll|[ \t]+(?:would|will|can|shall|must))?(?:[ \t]+\w+)?[ \t]+"
    r"(?:rat(?:e|es|ed|ing)|giv(?:e|es|ing)|gave|(?:assign|award)(?:s|ed|ing)?)\b"
    r"(?:(?!scale|from|between|range)[^\d\n.!?]){0,40}?"
    r"(?P<article>\ban?[ \t]+)?(?:(?:rating|score|grade)[ \t]+of[ \t]+)?(?:\[\[?[ \t]*)?"
    + _value(_NUMBER),
    re.IGNORECASE,
)
_DOUBLE_BRACKETS = re.compile(r"\[\[[ \t]*" + _value(_NUMBER) + r"[ \t]*\]\]")
_RESULT = re.compile(r"\[result\][ \t]*:?[ \t]*" + _value(_NUMBER), re.IGNORECASE)

# A fraction next to an operator ("x = 3/10", "3/10 + 1") or followed by "of" ("7/10 of the tank")
# belongs to the maths, not to a verdict.
_FRACTION = re.compile(
    r"(?<![=+×÷^][ \t])(?<![=+×÷^])" + _value(_NUMBER, fraction="") + r"(?![ \t]*(?:[=+×÷^]|of\b))",
    re.IGNORECASE,
)
_CLAUSE_END = re.compile(r"[ \t]*(?:[.!,;)]|\n|$)")
_LONE_NUMBER = re.compile(rf"[ \t]*(?P<num>{_NUMBER})[ \t]*\.?[ \t]*")


def parse_rating(text: str, low: float = 1.0, high: float = 10.0) -> float | None:
    """The judge's rating in a completion, or None when it has none in [low, high].

    Args:
        text: the judge's completion.
        low: the lowest rating on the scale.
        high: the highest rating on the scale; also the only denominator a fraction may have.

    Returns:
        The rating as a float, by the rules of the module docstring, or None.
    """
    text = text.translate(_NORMALISE)
    labelled = [
        match
        for pattern in (_LABELLED, _STATED, _FIRST_PERSON, _DOUBLE_BRACKETS, _RESULT)
        for match in pattern.finditer(text)
        # "I give it a 5", "I give it 5/10" and "I'd give it 5." are verdicts; "I give 5 apples"
        # and "I rate the 3 steps as sound" are not.
        if match.re is not _FIRST_PERSON
        or match["article"]
        or match["den"]
        or _CLAUSE_END.match(text, match.end())
    ]
    lines = text.strip().splitlines()
    last_line = _LONE_NUMBER.fullmatch(lines[-1]) if lines else None
    for matches in (labelled, list(_FRACTION.finditer(text)), [last_line] if last_line else []):
        valid = [
            (match.start("num"), value)
            for match in matches
            if (value := _rating(match, low, high)) is not None
        ]
        if valid:
            return max(valid)[1]
    return None


def _rating(match: re.Match[str], low: float, high: float) -> float | None:
    """The value a match holds, or None when it is off the scale or has another denominator."""
    num = match["num"].lower()
    value = float(_WORDS[num]) if num in _WORDS else float(num)
    den = match.groupdict().get("den")
    if den is not None and float(den) != high:
        return None
    return value if low <= value <= high else None
