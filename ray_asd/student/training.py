"""The LoRA training loop: settings, statistics and a plain loop (no trainer framework).

Shuffled mini-batches, AdamW on the trainable (adapter) parameters, linear warmup then linear
decay to zero, gradient clipping. The model computes the loss through a callable, so this
file knows nothing about tokenizers or padding.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ray_asd.errors import ConfigError

# (input ids, labels) of one batch -> (mean loss over its counted tokens, number of them)
BatchLoss = Callable[[list[list[int]], list[list[int]]], tuple[torch.Tensor, int]]


@dataclass(frozen=True)
class TrainSettings:
    """Knobs of one LoRA training call. Defaults are the ones calibrated in STACK-NOTES.

    Attributes:
        r: LoRA rank.
        alpha: LoRA scaling numerator (the update is scaled by alpha / r).
        dropout: Dropout on the LoRA input.
        target_modules: Module names that get adapters (attention projections by default).
        lr: Peak learning rate.
        epochs: Passes over the data.
        batch_size: Examples per optimizer step.
        warmup_ratio: Fraction of steps spent warming the learning rate up from zero.
        max_grad_norm: Gradient clipping threshold (global L2 norm).
        weight_decay: AdamW weight decay.
        seed: Seeds the shuffling and the adapter's initialisation.
        autocast: bf16 autocast for forward/backward while keeping fp32 master weights.
    """

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    lr: float = 1e-3
    epochs: int = 2
    batch_size: int = 8
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    weight_decay: float = 0.0
    seed: int = 0
    autocast: bool = True

    def __post_init__(self) -> None:
        problems = [
            msg
            for bad, msg in [
                (self.r < 1, f"r must be >= 1, got {self.r}"),
                (self.alpha <= 0, f"alpha must be > 0, got {self.alpha}"),
                (not 0 <= self.dropout < 1, f"dropout must be in [0, 1), got {self.dropout}"),
                (not self.target_modules, "target_modules must name at least one module"),
                (self.lr <= 0, f"lr must be > 0, got {self.lr}"),
                (self.epochs < 1, f"epochs must be >= 1, got {self.epochs}"),
                (self.batch_size < 1, f"batch_size must be >= 1, got {self.batch_size}"),
                (not 0 <= self.warmup_ratio < 1, "warmup_ratio must be in [0, 1)"),
                (self.max_grad_norm <= 0, "max_grad_norm must be > 0"),
                (self.weight_decay < 0, "weight_decay must be >= 0"),
            ]
            if bad
        ]
        if problems:
            raise ConfigError("invalid TrainSettings:\n" + "\n".join(problems))


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
    config: TrainSettings,
) -> TrainStats:
    """Train ``model``'s trainable parameters on (inputs, labels) and report the losses.

    Args:
        model: The model; only parameters with ``requires_grad`` are optimized.
        inputs: Token ids per example.
        labels: Labels per example (ignored positions marked by the loss function).
        loss_fn: Computes one batch's mean loss and its counted-token total.
        config: Training knobs.

    Returns:
        The :class:`TrainStats` of the run.
    """
    start = time.perf_counter()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    per_epoch = math.ceil(len(inputs) / config.batch_size)
    total = per_epoch * config.epochs
    warmup = math.ceil(config.warmup_ratio * total)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, warmup, total)
    )
    rng = np.random.default_rng(config.seed)
    epoch_losses: list[float] = []
    model.train()
    for _ in range(config.epochs):
        order = rng.permutation(len(inputs))
        loss_sum, token_sum = 0.0, 0
        for first in range(0, len(order), config.batch_size):
            batch = order[first : first + config.batch_size]
            loss, n_tokens = loss_fn([inputs[i] for i in batch], [labels[i] for i in batch])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
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
