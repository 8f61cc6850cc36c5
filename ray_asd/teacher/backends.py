"""The completion backends by config name, with the settings section each reads; each is
imported only when a config names it (vllm and the openai client are heavy, and vllm is absent
where it cannot install). What a backend *can do* (judge, load a model, run in the runner's
engines) is its kind's, in `ray_asd.kinds`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ray_asd.config import OpenAIConfig, TeacherConfig, VllmConfig
from ray_asd.teacher.base import CompletionBackend


@dataclass(frozen=True)
class Backend:
    """An LLM backend.

    Attributes:
        build: its constructor.
        reads_vllm: it runs a vLLM engine: the config's ``vllm`` settings apply
            (``tensor_parallel_size``, ``engine_kwargs``, ...).
        reads_openai: it is an OpenAI-wire client: the config's ``openai`` settings apply
            (``base_url``, ``api_key_env``, ...).
    """

    build: Callable[[TeacherConfig, Path | None], CompletionBackend]
    reads_vllm: bool = False
    reads_openai: bool = False


def _transformers(config: TeacherConfig, cache_dir: Path | None) -> CompletionBackend:
    from ray_asd.teacher.transformers import TransformersBackend

    return TransformersBackend(config, cache_dir)


def _vllm(config: TeacherConfig, cache_dir: Path | None) -> CompletionBackend:
    from ray_asd.teacher.vllm import VllmBackend

    return VllmBackend(config, cache_dir)


def _openai(config: TeacherConfig, cache_dir: Path | None) -> CompletionBackend:
    from ray_asd.teacher.openai_api import OpenAIBackend

    return OpenAIBackend(config)


BACKENDS: dict[str, Backend] = {
    "transformers": Backend(_transformers),
    "vllm": Backend(_vllm, reads_vllm=True),
    "openai": Backend(_openai, reads_openai=True),
}


def make_backend(config: TeacherConfig, cache_dir: Path | None = None) -> CompletionBackend:
    """The backend of an LLM teacher config (``backend`` is validated by TeacherConfig)."""
    return BACKENDS[config.backend].build(config, cache_dir)


def vllm_settings(config: TeacherConfig) -> VllmConfig | None:
    """The vLLM engine settings ``config`` runs with; None where its backend runs no vLLM
    engine (the oracle, transformers, openai: their ``vllm`` section is ignored)."""
    backend = BACKENDS.get(config.backend)  # the oracle has none
    return config.vllm if backend is not None and backend.reads_vllm else None


def openai_settings(config: TeacherConfig) -> OpenAIConfig | None:
    """The OpenAI-wire client settings ``config`` runs with; None where its backend is no
    such client."""
    backend = BACKENDS.get(config.backend)
    return config.openai if backend is not None and backend.reads_openai else None


def engine_shards(config: TeacherConfig) -> int:
    """GPU bundles one engine spans: vLLM's ``tensor_parallel_size``, else 1."""
    settings = vllm_settings(config)
    return settings.tensor_parallel_size if settings is not None else 1
