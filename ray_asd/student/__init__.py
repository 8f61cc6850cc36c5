"""The student model: load it, let it answer and score, and LoRA-finetune it."""

from ray_asd.student.loading import (
    EMBEDDED_PREFIX,
    TINY_PREFIX,
    check_model_spec,
    default_cache_dir,
    load_model_and_tokenizer,
    pick_device,
    resolve_model,
)
from ray_asd.student.model import Generation, Student
from ray_asd.student.training import TrainSettings, TrainStats

__all__ = [
    "EMBEDDED_PREFIX",
    "TINY_PREFIX",
    "Generation",
    "Student",
    "TrainSettings",
    "TrainStats",
    "check_model_spec",
    "default_cache_dir",
    "load_model_and_tokenizer",
    "pick_device",
    "resolve_model",
]
