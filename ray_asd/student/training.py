"""The LoRA training loop: statistics and a plain loop (no trainer framework).

Shuffled mini-batches, AdamW on the trainable (adapter) parameters, linear warmup then linear
decay to zero, gradient clipping; every knob comes from the trial's ``train`` section
(:class:`ray_asd.config.TrainConfig`, the single home of their defaults). The model computes
the loss through a callable, so this file knows nothing about tokenizers or padding.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ray_asd.config import TrainConfig

# (input ids, labels) of one batch -> (mean loss over its counted tokens, number of them)
BatchLoss = Callable[[list[list[int]], list[list[int]]], tuple[torch.Tensor, int]]


@dataclass(frozen=True)
class TrainStats:
    """What one training call did.

    Attributes:
        steps: Optimizer steps taken.
        first_epoch_loss: Token-weighted mean loss over the first epoch.
        last_epoch_loss: Token-weighted mean loss over the last epoch.
        seconds: Wall time of the loop.
    """

    steps: int
    first_epoch_loss: float
    last_epoch_loss: float
    seconds: float


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warmup over ``warmup`` steps to 1, then linear decay to 0 at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    return max(0.0, (total - step) / max(1, total - warmup))


def run_training(
    model: torch.nn.Module,
    inputs: list[list[int]],
    labels: list[list[int]],
    loss_fn: BatchLoss,
    settings: TrainConfig,
    seed: int,
) -> TrainStats:
    """Train ``model``'s trainable parameters on (inputs, labels) and report the losses.

    Args:
        model: The model; only parameters with ``requires_grad`` are optimized.
        inputs: Token ids per example.
        labels: Labels per example (ignored positions marked by the loss function).
        loss_fn: Computes one batch's mean loss and its counted-token total.
        settings: Learning rate, epochs, batch size, warm-up, weight decay and clipping.
        seed: Seeds the shuffling.

    Returns:
        The :class:`TrainStats` of the run.
    """
    start = time.perf_counter()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        params, lr=settings.learning_rate, weight_decay=settings.weight_decay
    )
    per_epoch = math.ceil(len(inputs) / settings.batch_size)
    total = per_epoch * settings.epochs
    warmup = math.ceil(settings.warmup_ratio * total)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, warmup, total)
    )
    rng = np.random.default_rng(seed)
    epoch_losses: list[float] = []
    model.train()
    for _ in range(settings.epochs):
        order = rng.permutation(len(inputs))
        loss_sum, token_sum = 0.0, 0
        for first in range(0, len(order), settings.batch_size):
            batch = order[first : first + settings.batch_size]
            loss, n_tokens = loss_fn([inputs[i] for i in batch], [labels[i] for i in batch])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, settings.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            loss_sum += float(loss.detach()) * n_tokens
            token_sum += n_tokens
        epoch_losses.append(loss_sum / max(token_sum, 1))
    return TrainStats(
        steps=total,
        first_epoch_loss=epoch_losses[0],
        last_epoch_loss=epoch_losses[-1],
        seconds=time.perf_counter() - start,
    )
