"""The training loop on a one-weight model: the schedule, and every knob of TrainConfig that
the loop reads (the LoRA knobs are tested on the tiny model in test_model.py)."""

from __future__ import annotations

import pytest
import torch

from ray_asd.config import TrainConfig
from ray_asd.student.training import lr_factor, run_training


def test_lr_warms_up_linearly_then_decays_to_zero() -> None:
    factors = [lr_factor(step, warmup=2, total=6) for step in range(6)]
    assert factors == pytest.approx([0.5, 1.0, 1.0, 0.75, 0.5, 0.25])
    assert [lr_factor(s, warmup=0, total=2) for s in range(2)] == [1.0, 0.5]


def fit(settings: TrainConfig, seed: int, n: int = 10) -> tuple[list[float], list[list[int]]]:
    """Train w (from 0) on the loss (w - 1)^2 over ``n`` one-token examples; return w before
    every step and the example indices of every batch."""
    model = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.zeros_(model.weight)
    weights: list[float] = []
    batches: list[list[int]] = []

    def loss(inputs: list[list[int]], labels: list[list[int]]) -> tuple[torch.Tensor, int]:
        weights.append(model.weight.item())
        batches.append([row[0] for row in inputs])
        return (model.weight.sum() - 1) ** 2, len(inputs)

    rows = [[i] for i in range(n)]
    stats = run_training(model, rows, rows, loss, settings, seed)
    weights.append(model.weight.item())
    assert stats.steps == len(batches)
    return weights, batches


def test_steps_batches_and_seeded_shuffling() -> None:
    settings = TrainConfig(batch_size=4, epochs=3)
    _, batches = fit(settings, seed=5)
    assert [len(b) for b in batches] == [4, 4, 2] * 3  # ceil(10 / 4) steps per epoch
    for epoch in range(3):
        assert sorted(i for b in batches[3 * epoch : 3 * epoch + 3] for i in b) == list(range(10))
    assert fit(settings, seed=5)[1] == batches
    assert fit(settings, seed=6)[1] != batches


def test_learning_rate_warmup_and_decay_reach_the_optimizer() -> None:
    # Adam's first step is lr_t * sign(g) (m / sqrt(v) = 1 at step one): here lr * 1 / warmup.
    settings = TrainConfig(learning_rate=0.01, batch_size=1, epochs=1, warmup_ratio=0.2)
    weights, _ = fit(settings, seed=0)  # 10 steps, ceil(0.2 * 10) = 2 of warm-up
    assert weights[1] - weights[0] == pytest.approx(0.01 * lr_factor(0, 2, 10), rel=1e-3)
    no_warmup = TrainConfig(learning_rate=0.01, batch_size=1, epochs=1, warmup_ratio=0.0)
    assert fit(no_warmup, seed=0)[0][1] == pytest.approx(0.01, rel=1e-3)


def test_weight_decay_and_clipping_change_the_run() -> None:
    base = TrainConfig(learning_rate=0.1, batch_size=1, epochs=1)
    plain = fit(base, seed=0)[0]
    decayed = fit(base.model_copy(update={"weight_decay": 0.5}), seed=0)[0]
    assert decayed[-1] < plain[-1]  # AdamW shrinks w toward 0, against the pull to 1
    # Adam normalises the gradient's scale away except against its eps (1e-8): clipped to a
    # norm of 1e-9, the first step is lr * 1e-9 / (1e-9 + 1e-8) = lr / 11.
    clipped = fit(base.model_copy(update={"max_grad_norm": 1e-9}), seed=0)[0]
    assert clipped[1] - clipped[0] == pytest.approx(0.1 / 11, rel=1e-3)
