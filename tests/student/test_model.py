"""Student on the tiny random model: LoRA training, its knobs, and adapters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ray_asd.config import TrainConfig
from ray_asd.student.model import Student

pytestmark = pytest.mark.slow

ITEMS = [(a, b) for a in (3, 14, 25, 41) for b in (2, 7, 19, 30)]
TRAIN_PROMPTS = [f"Question: What is {a} + {b}?\nAnswer:" for a, b in ITEMS]
TRAIN_COMPLETIONS = [f" {a} + {b} = {a + b}.\n#### {a + b}" for a, b in ITEMS]


def test_lora_training_adapters_and_reset(
    tiny_student: Student, model_cache: Path, tmp_path: Path
) -> None:
    student = tiny_student
    score = lambda: student.nll(TRAIN_PROMPTS, TRAIN_COMPLETIONS, batch_size=16)  # noqa: E731
    base = score()
    settings = TrainConfig(learning_rate=1e-2, epochs=4, batch_size=8)
    stats = student.train(TRAIN_PROMPTS, TRAIN_COMPLETIONS, settings, seed=0)
    trained = score()
    assert stats.steps == 8
    assert stats.last_epoch_loss < stats.first_epoch_loss
    assert student.has_adapter
    assert trained.mean() < base.mean() - 1.0, (base.mean(), trained.mean())

    # Save, then load into a fresh student: identical NLLs.
    student.save_adapter(tmp_path / "adapter")
    fresh = Student.load("tiny:", cache_dir=model_cache, device="cpu")
    fresh.load_adapter(tmp_path / "adapter")
    np.testing.assert_allclose(
        fresh.nll(TRAIN_PROMPTS, TRAIN_COMPLETIONS, batch_size=16), trained, atol=1e-6
    )

    # "continue" mode: a second call trains the same adapter further.
    student.train(TRAIN_PROMPTS, TRAIN_COMPLETIONS, settings, seed=0)
    assert score().mean() < trained.mean()

    # reset: the base model, bit for bit; saving now is an error.
    student.reset_adapter()
    assert not student.has_adapter
    np.testing.assert_allclose(score(), base, atol=1e-6)
    with pytest.raises(ValueError, match="no adapter"):
        student.save_adapter(tmp_path / "none")

    # "retrain" mode: after a reset, training starts a fresh adapter; same seed, same run.
    again = student.train(TRAIN_PROMPTS, TRAIN_COMPLETIONS, settings, seed=0)
    assert again.first_epoch_loss == pytest.approx(stats.first_epoch_loss, abs=1e-5)
    assert again.last_epoch_loss == pytest.approx(stats.last_epoch_loss, abs=1e-4)


def test_lora_knobs_of_the_train_section_shape_the_adapter(tiny_student: Student) -> None:
    settings = TrainConfig(
        lora_r=4, lora_alpha=8, lora_dropout=0.0, lora_target_modules=["q_proj"], epochs=1
    )
    tiny_student.train(TRAIN_PROMPTS[:4], TRAIN_COMPLETIONS[:4], settings, seed=0)
    config = tiny_student.model.peft_config["default"]
    assert (config.r, config.lora_alpha, config.lora_dropout) == (4, 8, 0.0)
    lora_a = {
        name.split(".lora_A")[0].split(".")[-1]: param.shape[0]
        for name, param in tiny_student.model.named_parameters()
        if ".lora_A" in name
    }
    assert set(lora_a) == {"q_proj"} and set(lora_a.values()) == {4}  # rank 4, q_proj only
