"""MATH-style answers: ``\\boxed{...}`` extraction and equivalence through math-verify.

The comparison itself is math-verify's (sympy-backed, handles fractions, intervals, sets,
units and many LaTeX spellings); nothing here compares LaTeX by hand. It runs in a child
process under a hard deadline (`ray_asd.tasks.deadline`), after answers of the shapes known
to stall sympy are refused here; either way, an answer that gets no verdict counts as wrong
and the reason is logged.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from ray_asd.tasks.bounds import overlong
from ray_asd.tasks.deadline import DeadlineWorker
from ray_asd.tasks.math_verify_worker import SECONDS

log = logging.getLogger(__name__)

_BOX_COMMANDS = ("\\boxed", "\\fbox")
# sympy can take very long on adversarial LaTeX; a real final answer is far shorter.
MAX_ANSWER_CHARS = 500
# Redundant parentheses cost math-verify's parser ~0.1-0.3 s per level (2 busy cores: 8
# levels ~1 s, 30: 11 s, 200: over 30 s); MATH answers nest three or four deep.
MAX_DEPTH = 10
# The hard bound on one comparison. The child gives up by itself after SECONDS (1 s) and stays
# warm; this kill is for C code no signal interrupts, and costs a restart that the next call
# waits for (1.6-3 s of imports measured on 2 busy cores).
DEADLINE_SECONDS = 1.5
_WORKER = DeadlineWorker(Path(__file__).with_name("math_verify_worker.py"), DEADLINE_SECONDS)


def extract_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` (or ``\\fbox{...}``) in ``text``, braces balanced.

    MATH solutions and chain-of-thought outputs box the final answer once, at the end; the
    last box is the answer when a model boxes intermediate results too. Also accepts the
    brace-less ``\\boxed 5`` some models write. None for an output over MAX_OUTPUT_CHARS.
    """
    if overlong(text):
        return None
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


# Shapes that make sympy work for minutes on a dozen characters (9^{9^{9^{9}}}, 100000000!,
# (((...)))) are refused up front: the deadline would stop them too, but only after a second
# each. No MATH answer has a power tower or the factorial of a four-digit number.
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


def refusal(answer: str) -> str | None:
    """Why ``answer`` is not handed to sympy (a shape known to stall it), or None."""
    if len(answer) > MAX_ANSWER_CHARS:
        return f"{len(answer)} characters, over {MAX_ANSWER_CHARS}"
    if _FACTORIAL_OF_LARGE.search(answer):
        return "the factorial of a number of four or more digits"
    if _LARGE_EXPONENT.search(answer):
        return "an exponent of seven or more digits"
    if any("^" in _exponent_argument(answer, i) for i, char in enumerate(answer) if char == "^"):
        return "a power tower"
    depth = deepest = 0
    for char in answer:
        depth = max(0, depth + (char in "([{") - (char in ")]}"))
        deepest = max(deepest, depth)
    if deepest > MAX_DEPTH:
        return f"brackets nested {deepest} deep, over {MAX_DEPTH}"
    return None


def latex_verdict(predicted: str, reference: str) -> tuple[bool, str | None]:
    """math-verify equivalence of two extracted final answers, and why there is no verdict.

    Returns:
        ``(equal, None)`` when math-verify compared them (False also if either side does not
        parse); ``(False, reason)`` when it could not: an answer refused before parsing, or
        a comparison past its deadline.
    """
    for side, answer in (("answer", predicted), ("reference", reference)):
        why = refusal(answer)
        if why is not None:
            return False, f"the {side} is not parsed: {why}"
    reply, problem = _WORKER.ask([predicted, reference])
    if problem is not None:
        return False, f"math-verify: {problem}"
    if reply == "expired":
        return False, f"math-verify took over {SECONDS:g} s"
    return bool(reply), None


def latex_equal(predicted: str, reference: str) -> bool:
    """math-verify equivalence of two extracted final answers (reference first: it is
    asymmetric). False if either side does not parse, is refused or overruns the deadline;
    the last two are logged with their reason."""
    equal, reason = latex_verdict(predicted, reference)
    if reason is not None:
        log.warning("math answer %r counted as wrong: %s", predicted[:80], reason)
    return equal
