"""Pure pieces of training: the learning-rate schedule, settings validation, padding."""

from __future__ import annotations

import pytest
import torch

from ray_asd.errors import ConfigError
from ray_asd.student import TrainSettings
from ray_asd.student.batching import length_batches, pad_rows
from ray_asd.student.training import lr_factor


def test_lr_warms_up_linearly_then_decays_to_zero() -> None:
    factors = [lr_factor(step, warmup=2, total=6) for step in range(6)]
    assert factors == pytest.approx([0.5, 1.0, 1.0, 0.75, 0.5, 0.25])
    assert [lr_factor(s, warmup=0, total=2) for s in range(2)] == [1.0, 0.5]


def test_train_settings_list_every_problem() -> None:
    with pytest.raises(ConfigError) as err:
        TrainSettings(r=0, lr=-1.0, epochs=0, warmup_ratio=1.5)
    lines = str(err.value).splitlines()[1:]
    assert len(lines) == 4
    assert any(line.startswith("r must be") for line in lines)
    assert TrainSettings().target_modules == ("q_proj", "k_proj", "v_proj", "o_proj")


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
