"""The completion backends by config name; each is imported only when a config names it
(vllm and the openai client are heavy, and vllm is absent where it cannot install)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ray_asd.config import TeacherConfig
from ray_asd.teacher.base import CompletionBackend


def _transformers(config: TeacherConfig, cache_dir: Path | None) -> CompletionBackend:
    from ray_asd.teacher.transformers import TransformersBackend

    return TransformersBackend(config, cache_dir)


def _vllm(config: TeacherConfig, cache_dir: Path | None) -> CompletionBackend:
    from ray_asd.teacher.vllm import VllmBackend

    return VllmBackend(config, cache_dir)


def _openai(config: TeacherConfig, cache_dir: Path | None) -> CompletionBackend:
    from ray_asd.teacher.openai_api import OpenAIBackend

    return OpenAIBackend(config)


BACKENDS: dict[str, Callable[[TeacherConfig, Path | None], CompletionBackend]] = {
    "transformers": _transformers,
    "vllm": _vllm,
    "openai": _openai,
}


def make_backend(config: TeacherConfig, cache_dir: Path | None = None) -> CompletionBackend:
    """The backend of an LLM teacher config (``backend`` is validated by TeacherConfig)."""
    return BACKENDS[config.backend](config, cache_dir)
