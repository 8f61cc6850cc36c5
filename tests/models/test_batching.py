"""Batching helpers: length-sorted batches and padding of ragged rows."""

from __future__ import annotations

import torch

from ray_asd.models.batching import length_batches, pad_rows


def test_pad_rows_left_and_right() -> None:
    rows = [[1, 2, 3], [4]]
    ids, mask = pad_rows(rows, 0, torch.device("cpu"), left=True)
    assert ids.tolist() == [[1, 2, 3], [0, 0, 4]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1]]
    ids, mask = pad_rows(rows, -100, torch.device("cpu"), left=False)
    assert ids.tolist() == [[1, 2, 3], [4, -100, -100]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0]]


def test_length_batches_group_similar_lengths_and_cover_everything() -> None:
    rows = [[0] * n for n in (1, 5, 2, 4, 3)]
    batches = list(length_batches(rows, 2))
    assert batches == [[1, 3], [4, 2], [0]]
