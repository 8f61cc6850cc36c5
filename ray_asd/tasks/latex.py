"""MATH-style answers: ``\\boxed{...}`` extraction and equivalence through math-verify.

The comparison itself is math-verify's (sympy-backed, handles fractions, intervals, sets,
units and many LaTeX spellings); nothing here compares LaTeX by hand.
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache

_BOX_COMMANDS = ("\\boxed", "\\fbox")
# sympy can take very long on adversarial LaTeX; a real final answer is far shorter.
MAX_ANSWER_CHARS = 500
# math-verify's per-call limit; it works through SIGALRM and so only in the main thread.
TIMEOUT_SECONDS = 5


def extract_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` (or ``\\fbox{...}``) in ``text``, braces balanced.

    MATH solutions and chain-of-thought outputs box the final answer once, at the end; the
    last box is the answer when a model boxes intermediate results too. Also accepts the
    brace-less ``\\boxed 5`` some models write.
    """
    start = max(text.rfind(command) for command in _BOX_COMMANDS)
    if start < 0:
        return None
    position = text.index("\\", start) + (6 if text.startswith("\\boxed", start) else 5)
    rest = text[position:]
    if not rest.startswith("{"):
        token = rest.strip().split(maxsplit=1)
        content = token[0].rstrip("$.") if token and rest[:1].isspace() else ""
        return content or None
    depth = 0
    for i, char in enumerate(rest):
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                content = rest[1:i].strip()
                return content or None
    return None  # unbalanced: the output was cut off inside the box


# Shapes that make sympy work for minutes on a dozen characters (9^{9^{9^{9}}}, 100000000!):
# off the main thread no timeout can stop it, so they are refused up front. No MATH answer
# has a power tower or the factorial of a four-digit number.
_FACTORIAL_OF_LARGE = re.compile(r"\d{4,}\s*!")
_LARGE_EXPONENT = re.compile(r"\^\s*\{?\s*\d{7,}")


def _exponent_argument(text: str, caret: int) -> str:
    """The argument of the ``^`` at ``caret``: a braced group or a single token."""
    rest = text[caret + 1 :].lstrip()
    if not rest.startswith("{"):
        return rest[:1]
    depth = 0
    for i, char in enumerate(rest):
        depth += char == "{"
        depth -= char == "}"
        if depth == 0:
            return rest[: i + 1]
    return rest


def is_pathological(answer: str) -> bool:
    """Whether ``answer`` has a shape known to stall sympy (see above)."""
    if _FACTORIAL_OF_LARGE.search(answer) or _LARGE_EXPONENT.search(answer):
        return True
    return any("^" in _exponent_argument(answer, i) for i, char in enumerate(answer) if char == "^")


def _timeout() -> int | None:
    # Ray actors and thread pools call from other threads, where SIGALRM cannot be used;
    # there MAX_ANSWER_CHARS is the only bound.
    return TIMEOUT_SECONDS if threading.current_thread() is threading.main_thread() else None


@lru_cache(maxsize=65536)
def _parsed(answer: str) -> tuple:
    from math_verify import parse

    return tuple(parse(f"$\\boxed{{{answer}}}$", parsing_timeout=_timeout()))


def latex_equal(predicted: str, reference: str) -> bool:
    """math-verify equivalence of two extracted final answers (reference first: it is asymmetric).

    Returns False if either side does not parse.
    """
    from math_verify import verify

    for answer in (predicted, reference):
        if len(answer) > MAX_ANSWER_CHARS or is_pathological(answer):
            return False
    gold, answer = _parsed(reference), _parsed(predicted)
    if not gold or not answer:
        return False
    return bool(verify(list(gold), list(answer), timeout_seconds=_timeout()))
