"""BADGE's math: the output-layer gradient embedding of an answer, and its random sketch.

`Student.grad_embeddings` runs the model; these functions capture what its output layer sees
and turn those hidden states and logits into embeddings (see that method for the construction
and the sketch's error).
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch

# Probabilities held at once per chunk of positions: 2**22 floats (16 MB), 85 positions of a
# 49k vocabulary, whatever the batch size or answer length.
PROB_CHUNK = 2**22


def sketch_matrices(
    seed: int, vocab: int, hidden: int, r1: int, r2: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``A`` (r1 x vocab) ~ N(0, 1/r1) and ``B`` (hidden x r2) ~ N(0, 1/r2), on the CPU."""
    generator = torch.Generator().manual_seed(seed)
    a = torch.randn(r1, vocab, generator=generator) / r1**0.5
    b = torch.randn(hidden, r2, generator=generator) / r2**0.5
    return a, b


def badge_embedding(
    states: torch.Tensor,
    logits: torch.Tensor,
    positions: torch.Tensor,
    projections: tuple[torch.Tensor, torch.Tensor] | None,
) -> np.ndarray:
    """Mean of ``(p_t - onehot(argmax p_t)) h_t^T`` over ``positions``, sketched if asked.

    Args:
        states: One example's hidden states fed to the output layer, (positions, d).
        logits: Its logits, (positions, V).
        positions: Indices of the positions that count (at least one).
        projections: ``(A, B)`` to return ``vec(A G B)``, or None for ``vec(G)``.
    """
    chunk = max(1, PROB_CHUNK // logits.shape[-1])
    total = torch.zeros((), device=logits.device)
    for start in range(0, len(positions), chunk):
        index = positions[start : start + chunk]
        g = torch.softmax(logits[index].float(), dim=-1)
        # In place, so no second V-wide buffer: g = p - onehot(y) with y = argmax p.
        g[torch.arange(len(index), device=g.device), g.argmax(dim=-1)] -= 1
        h = states[index].float()
        if projections is not None:
            a, b = projections
            g, h = g @ a.T, h @ b
        total = total + g.T @ h
    return (total / len(positions)).flatten().cpu().numpy()


def head_inputs(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    mask: torch.Tensor,
    autocast: contextlib.AbstractContextManager[object],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Hidden states fed to the output layer and the logits, for position t predicting t + 1.

    A hook captures exactly what the output layer sees (after the final norm, whatever the
    architecture or adapter), without keeping every layer's states as
    ``output_hidden_states`` would. Only the forward runs under ``autocast``: the gradient
    maths stays float32.
    """
    captured: list[torch.Tensor] = []

    def capture(_: torch.nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        captured.append(args[0])

    hook = model.get_output_embeddings().register_forward_pre_hook(capture)
    try:
        with autocast:
            logits = model(input_ids=input_ids, attention_mask=mask).logits
    finally:
        hook.remove()
    return captured[0][:, :-1], logits[:, :-1]
