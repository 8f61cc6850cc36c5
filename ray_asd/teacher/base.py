"""The teacher protocol, and the completion backends that LLM teachers send prompts to.

A teacher turns picked seed questions into new (question, answer) items (DESIGN section 2,
step 4). The oracle does it with a task's generator; an LLM teacher renders prompts, sends
them to a completion backend (transformers, vLLM, any OpenAI-compatible server) and parses the
completions. Every item carries the tokens its calls cost: the paper compares strategies at
equal teacher compute.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ray_asd.redact import redact_text
from ray_asd.tasks import Task

if TYPE_CHECKING:
    from ray_asd.config import TeacherConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Generated:
    """What the teacher made of one picked seed.

    Attributes:
        question: the new question, None when the completion could not be parsed.
        answer: its answer, None when unparsable or not asked for (no question).
        prompt_tokens, completion_tokens: the cost of the calls behind this item.
        calls: requests sent for it (a two-step item whose question failed makes one).
        retries: transient failures retried on the way (rate limits, 5xx, timeouts).
        cached: calls answered from the teacher cache instead of the model.
        error: why a request failed for good (after its retries); the item is rejected.
    """

    question: str | None
    answer: str | None
    prompt_tokens: int
    completion_tokens: int
    calls: int = 0
    retries: int = 0
    cached: int = 0
    error: str | None = None


class Teacher(Protocol):
    """Writes one new item per seed question.

    ``seeds`` holds one integer per request: sampling is reproducible per request, and the
    cache keys on it, so a resumed trial asks for exactly what the uninterrupted one asked for.
    """

    @property
    def model(self) -> str:
        """The teacher's model name, recorded in every synthetic item's provenance."""
        ...

    @property
    def completions(self) -> CompletionBackend | None:
        """The completion backend the teacher writes with: it judges with it too (judge,
        lion) and its ``stats()`` are the trial's teacher counters. None: the oracle, which
        calls no model."""
        ...

    def generate(
        self, task: Task, seed_questions: Sequence[str], seeds: Sequence[int]
    ) -> list[Generated]: ...

    def answer(self, task: Task, questions: Sequence[str], seeds: Sequence[int]) -> list[Generated]:
        """Answers the given questions (``lion`` compares them with the student's answers);
        each Generated holds its question as given."""
        ...


@dataclass(frozen=True)
class Completion:
    """One completion of a backend.

    Attributes:
        text: the completion ("" when the request failed).
        prompt_tokens, completion_tokens: as the backend counted them.
        retries: transient failures retried before this result.
        cached: served from the teacher cache, the model was not called.
        error: the request failed for good; ``text`` is empty and no tokens were spent.
    """

    text: str
    prompt_tokens: int
    completion_tokens: int
    retries: int = 0
    cached: bool = False
    error: str | None = None


class CompletionBackend(Protocol):
    """A model behind a batch completion call, sampling fixed by its config.

    ``identity`` is everything besides the prompt and the seed that decides a completion
    (model, sampling parameters, chat or plain completion): the cache keys on it. A request
    that fails must not fail its batch: it comes back as a Completion with ``error`` set.
    """

    @property
    def identity(self) -> dict[str, Any]: ...

    def complete(self, prompts: Sequence[str], seeds: Sequence[int]) -> list[Completion]: ...

    def stats(self) -> dict[str, int]:
        """Cumulative counters (requests, retries by cause, failures, ...)."""
        ...


def sampling_identity(config: TeacherConfig, folder: Path | None = None) -> dict[str, Any]:
    """What decides a completion besides prompt and seed, for a backend built from ``config``.

    Args:
        config: the teacher (or judge) config the backend was built from.
        folder: the local folder the model was loaded from (a folder spec, ``embedded:``,
            ``tiny:``); its :func:`model_fingerprint` joins the identity, so a folder whose
            files changed under the same name gets no completion of the old model.

    Returns:
        A JSON-able mapping. ``revision`` and ``model_fingerprint`` appear only when they carry
        something: a hub model on its default branch keeps the identity (and the cache
        records) it had before revisions existed.
    """
    identity: dict[str, Any] = {
        "backend": config.backend,
        "model": config.model,
        "chat": config.chat,
        "temperature": config.temperature,
        "top_p": config.top_p,
        "max_new_tokens": config.max_new_tokens,
    }
    if config.revision is not None:
        identity["revision"] = config.revision
    if folder is not None:
        identity["model_fingerprint"] = model_fingerprint(folder)
    return identity


# Files up to 1 MiB (configs, tokenizer, chat template) are hashed whole; larger ones (weights)
# by their size and 16 windows of 64 KiB spread from first to last byte: 1 MiB read per shard,
# 6 ms for the embedded SmolLM2 (513 MiB), where hashing it whole costs 0.4 s of CPU and 1.8 s
# (about 1 min for a 15 GB model). A retrained or re-quantized model changes the bytes under
# the windows; only a same-size edit that misses all 16 windows would go unseen. Content, not
# mtimes: the copies of one model on several nodes agree.
_WHOLE_FILE = 1 << 20
_WINDOWS = 16
_WINDOW = 64 << 10


def model_fingerprint(folder: Path) -> str:
    """A digest of the model files in ``folder`` (its top-level files, hidden ones and
    ray-asd's build marker left out), cheap enough for every engine start."""
    # Imported here: loading imports torch, which the openai backend does without.
    from ray_asd.models import MARKER_FILE

    digest = hashlib.sha256()
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.name == MARKER_FILE or not path.is_file():
            continue
        size = path.stat().st_size
        digest.update(f"{path.name}\0{size}\0".encode())
        with path.open("rb") as file:
            if size <= _WHOLE_FILE:
                digest.update(file.read())
                continue
            for i in range(_WINDOWS):
                file.seek((size - _WINDOW) * i // (_WINDOWS - 1))
                digest.update(file.read(_WINDOW))
    return digest.hexdigest()[:16]


def isolate_failures(
    generate: Callable[[list[str], list[int]], list[Completion]],
    prompts: list[str],
    seeds: list[int],
    attempts: int,
    counts: dict[str, int],
    fatal: tuple[type[BaseException], ...] = (),
) -> list[Completion]:
    """``generate`` on the batch; if the batch fails, each request alone, up to ``attempts``
    tries, so one bad request (too long, a tokenizer error) fails only itself.

    ``counts`` gets ``retries`` (tries after a failure) and ``failed`` (requests given up on).
    Errors of the ``fatal`` types (a dead engine) are not a request's fault: they propagate.
    """
    if not prompts:
        return []
    try:
        return generate(prompts, seeds)
    except fatal:
        raise
    except Exception as error:  # any engine error: isolate the bad request
        log.warning(
            "teacher batch of %d failed (%s): trying each request alone",
            len(prompts),
            redact_text(str(error)),
        )
    results = []
    for prompt, seed in zip(prompts, seeds, strict=True):
        for attempt in range(1, attempts + 1):
            try:
                results.append(replace(generate([prompt], [seed])[0], retries=attempt - 1))
                break
            except fatal:
                raise
            except Exception as error:
                if attempt == attempts:
                    counts["failed"] = counts.get("failed", 0) + 1
                    error_text = redact_text(repr(error))[:500]  # masked before it is cut
                    results.append(Completion("", 0, 0, attempt - 1, error=error_text))
                else:
                    counts["retries"] = counts.get("retries", 0) + 1
    return results


_TOKEN = re.compile(r"\w+|[^\w\s]")


def approximate_tokens(text: str) -> int:
    """Words plus punctuation marks: a tokenizer-free stand-in where no tokenizer applies."""
    return len(_TOKEN.findall(text))
