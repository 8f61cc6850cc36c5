"""The child process behind `ray_asd.tasks.latex`: math-verify equivalence, one pair per line.

Run by path (``python math_verify_worker.py``), not as part of the package, so it imports only
math-verify. Reads ``[predicted, reference]`` JSON lines from stdin and answers each with
``true``, ``false`` or ``"expired"`` (the pair took over SECONDS). It runs on its own main
thread, so a timer signal can interrupt sympy's Python code; the parent's kill covers C code
(a huge integer power) that no signal interrupts.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
from functools import lru_cache
from typing import Any

# The parent kills us at its deadline (1.5 s); expiring first keeps this process warm.
SECONDS = 1.0


class Expired(BaseException):
    """Raised by the timer; a BaseException so that math-verify's ``except Exception``
    blocks, which turn errors into "does not parse", let it through."""


def _expire(signum: int, frame: object) -> None:
    raise Expired


@lru_cache(maxsize=65536)
def _parsed(answer: str) -> tuple[Any, ...]:
    from math_verify import parse

    return tuple(parse(f"$\\boxed{{{answer}}}$", parsing_timeout=None))  # type: ignore[arg-type]


def equal(predicted: str, reference: str) -> bool:
    """math-verify equivalence (reference first: it is asymmetric); False if either side
    does not parse."""
    from math_verify import verify

    gold, answer = _parsed(reference), _parsed(predicted)
    if not gold or not answer:
        return False
    return bool(verify(list(gold), list(answer), timeout_seconds=None))


def _verdict(line: str) -> bool | str:
    predicted, reference = json.loads(line)
    signal.setitimer(signal.ITIMER_REAL, SECONDS)
    try:
        return equal(predicted, reference)
    except Expired:
        return "expired"
    except Exception:  # a pair that breaks math-verify is not equal
        return False
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def main() -> None:
    """Answers pairs until stdin closes (the parent exited or dropped us)."""
    # Replies alone go to stdout: anything a library prints goes to stderr instead.
    replies, sys.stdout = sys.stdout, sys.stderr
    logging.getLogger("math_verify").setLevel(logging.CRITICAL)  # parse failures are normal
    signal.signal(signal.SIGALRM, _expire)
    equal("1", "1")  # the imports (~0.5 s) happen before we say we are ready
    replies.write("ready\n")
    replies.flush()
    for line in sys.stdin:
        try:
            reply = _verdict(line)
        except Expired:  # the timer fired between the try and its cancellation
            reply = "expired"
        replies.write(json.dumps(reply) + "\n")
        replies.flush()


if __name__ == "__main__":
    main()
