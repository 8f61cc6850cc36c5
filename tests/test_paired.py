"""The pre-registered paired comparison (`ray_asd.paired`) on numbers worked out by hand."""

from itertools import product

import numpy as np
import pandas as pd
import pytest

from ray_asd.paired import compare, log2_slope, power

ITEMS = {0: 32, 1: 64}
# (arm, seed) -> accuracy at steps 0 and 1 (32 and 64 items: one doubling apart)
ACCURACY = {
    ("random", 0): [0.10, 0.20],
    ("random", 1): [0.20, 0.30],
    ("random", 2): [0.30, 0.40],
    ("loss", 0): [0.15, 0.25],  # d_0 = 0.05
    ("loss", 1): [0.20, 0.34],  # d_1 = (0.00 + 0.04) / 2 = 0.02
    ("loss", 2): [0.35, 0.47],  # d_2 = (0.05 + 0.07) / 2 = 0.06
}


def curves() -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "strategy": arm,
                "seed": str(seed),
                "step": step,
                "n_synthetic": ITEMS[step],
                "accuracy": a,
            }
            for (arm, seed), values in ACCURACY.items()
            for step, a in enumerate(values)
        ]
    )


def test_paired_comparison_by_hand() -> None:
    result = compare(curves(), "loss", "random", [0, 1])
    assert result.seeds == 3
    # mean d = 0.13 / 3; random's mean curve 0.2 -> 0.3 over one doubling: slope 0.1
    assert result.mean_difference == pytest.approx(0.13 / 3)
    assert result.slope == pytest.approx(0.1)
    assert result.efficiency == pytest.approx(2 ** (0.13 / 3 / 0.1))  # 1.350
    # sd of (0.05, 0.02, 0.06) = sqrt(8.667e-4 / 2); t = mean / (sd / sqrt 3) = 3.606
    assert result.sd_difference == pytest.approx(
        np.sqrt((0.02 / 3) ** 2 + (0.07 / 3) ** 2 + (0.05 / 3) ** 2) / np.sqrt(2)
    )
    assert result.t == pytest.approx(3.6056, abs=1e-3)
    # 2^3 sign flips; only all-plus and all-minus reach |mean d|: p = 2 / 8
    assert result.p_sign_flip == pytest.approx(0.25)
    assert (result.wins, result.ties) == (3, 0)


def test_the_bootstrap_interval_lies_within_the_resamples() -> None:
    table, result = curves(), compare(curves(), "loss", "random", [0, 1])
    d = np.array([0.05, 0.02, 0.06])
    random = np.array([ACCURACY[("random", s)] for s in range(3)])
    values = []
    for rows in product(range(3), repeat=3):  # every resample of 3 seeds
        slope = random[list(rows)].mean(axis=0) @ [-1, 1]
        values.append(2 ** (d[list(rows)].mean() / slope))
    low, high = result.interval
    assert min(values) - 1e-9 <= low <= result.efficiency <= high <= max(values) + 1e-9
    assert compare(table, "loss", "random", [0, 1]).interval == result.interval  # fixed generator


def test_a_flat_baseline_gives_no_efficiency() -> None:
    flat = curves()
    flat.loc[flat["strategy"] == "random", "accuracy"] = 0.2
    result = compare(flat, "loss", "random", [0, 1])
    assert np.isnan(result.efficiency) and np.isnan(result.interval[0])


def test_log2_slope() -> None:
    assert log2_slope(np.array([16, 32, 64]), np.array([0.1, 0.2, 0.3])) == pytest.approx(0.1)


def test_power() -> None:
    # No effect: a level-0.05 test rejects 5% of the time.
    assert power(1.0, 0.1, 0.03, 8) == pytest.approx(0.05)
    # More seeds, more power; effect 1.3 at slope 0.1 is 3.8 points.
    assert power(1.3, 0.1, 0.03, 8) < power(1.3, 0.1, 0.03, 16)
    assert 0.8 < power(1.3, 0.1, 0.03, 8) < 0.95
