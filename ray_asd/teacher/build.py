"""A ``teacher`` config made a Teacher: the oracle (a task's generator) or an LLM teacher over a
completion backend. Which constructor applies is the kind's ``llm`` capability
(`ray_asd.kinds`), never a backend name; the LLM backends themselves are built by
`ray_asd.teacher.backends`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from ray_asd.config import JudgeConfig, TeacherConfig
from ray_asd.errors import ConfigError
from ray_asd.kinds import TEACHER_KINDS, teacher_kind
from ray_asd.teacher.backends import make_backend
from ray_asd.teacher.base import CompletionBackend, Teacher
from ray_asd.teacher.cache import CachedBackend
from ray_asd.teacher.llm import LLMTeacher
from ray_asd.teacher.oracle import OracleTeacher
from ray_asd.teacher.prompts import STEPS, Prompts


class TeacherMaker(Protocol):
    """Builds the teacher of one kind; see :func:`make_teacher` for the arguments."""

    def __call__(
        self,
        config: TeacherConfig,
        prompts: Prompts,
        cache_dir: Path | None,
        completions: CompletionBackend | None,
        teacher_cache: Path | None,
    ) -> Teacher: ...


def build_prompts(config: TeacherConfig) -> Prompts:
    """The templates the teacher renders: its family's, any step replaced by a file.

    Raises:
        ConfigError: an unknown family or a bad template file.
    """
    files = config.prompts
    return Prompts.load(files.family, {step: getattr(files, step) for step in STEPS})


def make_completions(
    config: TeacherConfig, cache_dir: Path | None, teacher_cache: Path, writer: str = "local"
) -> CompletionBackend:
    """An LLM config's completion backend built in this process, its completions kept in the
    teacher cache under ``writer`` (the runner's pools build theirs in their engines).

    Args:
        config: an LLM teacher or judge config.
        cache_dir: where embedded and tiny models are materialised.
        teacher_cache: the teacher cache folder.
        writer: the name of this process's cache file (``local``, ``local-judge``).
    """
    return CachedBackend(make_backend(config, cache_dir), teacher_cache, writer)


def make_teacher(
    config: TeacherConfig,
    cache_dir: Path | None = None,
    *,
    completions: CompletionBackend | None = None,
    teacher_cache: Path | None = None,
) -> Teacher:
    """The teacher a config names.

    Args:
        config: the teacher config.
        cache_dir: where embedded and tiny models (an LLM's, the oracle's tokenizer) are
            materialised.
        completions: the backend of an LLM teacher (the runner passes its shared pool); by
            default one is built here, its completions cached in ``teacher_cache``. The
            oracle calls none and ignores it.
        teacher_cache: the folder of the teacher cache (required for an LLM teacher built
            here).

    Raises:
        ConfigError: an unknown backend, prompt family or bad template file.
        ValueError: an LLM teacher with neither ``completions`` nor ``teacher_cache``.
    """
    maker = MAKERS[teacher_kind(config.backend).name]
    return maker(config, build_prompts(config), cache_dir, completions, teacher_cache)


def judge_backend(
    judge: JudgeConfig,
    teacher: Teacher,
    cache_dir: Path | None = None,
    teacher_cache: Path | None = None,
) -> CompletionBackend:
    """The completion backend an in-process judge rates with: ``judge.llm``'s own, else the
    teacher's (an LLM teacher judges with the model it writes with).

    Raises:
        ConfigError: no ``judge.llm`` and a teacher without a model (the oracle).
        ValueError: a ``judge.llm`` to build without a ``teacher_cache`` folder.
    """
    if judge.llm is not None:
        if teacher_cache is None:
            raise ValueError("a judge built in-process needs a teacher_cache folder")
        return make_completions(judge.llm, cache_dir, teacher_cache, "local-judge")
    if teacher.completions is None:
        raise ConfigError(
            f"judge.llm: the {teacher.model} teacher cannot judge; set judge.llm (backend, model)"
        )
    return teacher.completions


def _oracle(
    config: TeacherConfig,
    prompts: Prompts,
    cache_dir: Path | None,
    completions: CompletionBackend | None,
    teacher_cache: Path | None,
) -> Teacher:
    if config.tokenizer is None:
        return OracleTeacher(prompts=prompts)
    return OracleTeacher(count_tokens=_token_counter(config.tokenizer, cache_dir), prompts=prompts)


def _token_counter(spec: str, cache_dir: Path | None) -> Callable[[str], int]:
    """Tokens as a model of ``spec``'s family counts them (its tokenizer, special tokens
    included, as an LLM teacher's backend would be charged)."""
    # Imported here: AutoTokenizer imports torch (~5 s on 2 cores), which the default oracle
    # and a config's validation do without.
    from transformers import AutoTokenizer

    from ray_asd.models import resolve_model

    tokenizer = AutoTokenizer.from_pretrained(resolve_model(spec, cache_dir))
    return lambda text: len(tokenizer(text)["input_ids"])


def _llm(
    config: TeacherConfig,
    prompts: Prompts,
    cache_dir: Path | None,
    completions: CompletionBackend | None,
    teacher_cache: Path | None,
) -> Teacher:
    if completions is None:
        if teacher_cache is None:
            raise ValueError("an LLM teacher built in-process needs a teacher_cache folder")
        completions = make_completions(config, cache_dir, teacher_cache)
    return LLMTeacher(completions, prompts, config.prompts.mode)


# By kind, from its capability: a new LLM backend in `ray_asd.kinds` needs no line here.
MAKERS: dict[str, TeacherMaker] = {
    kind.name: _llm if kind.llm else _oracle for kind in TEACHER_KINDS.values()
}
