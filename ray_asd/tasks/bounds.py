"""The length bound every extractor and checker applies to model output before reading it."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

# The longest output an extractor or checker reads (~25k tokens, far above the 96-256 new
# tokens the configs allow): past it, even linear scans cost milliseconds per answer, so a
# longer one has no final answer and counts as wrong, before any scan.
MAX_OUTPUT_CHARS = 100_000


def overlong(text: str) -> bool:
    """Whether ``text`` is over MAX_OUTPUT_CHARS; logs the reason it then counts as wrong."""
    if len(text) <= MAX_OUTPUT_CHARS:
        return False
    log.warning(
        "an output of %d characters, over %d, counts as having no final answer: %r...",
        len(text),
        MAX_OUTPUT_CHARS,
        text[:80],
    )
    return True
