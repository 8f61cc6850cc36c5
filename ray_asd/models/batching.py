"""Batching helpers: length-sorted batches and padding of ragged token-id rows."""

from __future__ import annotations

from collections.abc import Iterator

import torch

IGNORE = -100  # label value that cross-entropy skips


def length_batches(rows: list[list[int]], batch_size: int) -> Iterator[list[int]]:
    """Indices of ``rows`` in batches of similar length, longest first (memory peaks early)."""
    order = sorted(range(len(rows)), key=lambda i: -len(rows[i]))
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


def pad_rows(
    rows: list[list[int]], value: int, device: torch.device, *, left: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad ragged rows into a tensor; also return the attention mask (1 on real tokens)."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), value, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        span = slice(width - len(row), width) if left else slice(0, len(row))
        ids[i, span] = torch.tensor(row, dtype=torch.long)
        mask[i, span] = 1
    return ids.to(device), mask.to(device)
