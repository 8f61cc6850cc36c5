"""A pre-registered comparison of two arms paired by seed: the statistic bench/data_efficiency.py
reports for ``loss`` vs ``random`` (and its controls), and the power of such a design.

Arms A and B ran the same seeds: each seed's trials share the warm-up, the test items and the
LoRA initialisation, so the per-seed difference removes what they share. The statistic is the
mean over the budget points of the paired accuracy difference,

    d_s = mean_t (acc_A(s, t) - acc_B(s, t)),

turned into an efficiency through the baseline's slope b in log2(items) (accuracy per doubling
of the items, least squares on its seed-mean curve at the budget points): at items n, A's
accuracy is B's at n * E when d = b * log2(E), so E = 2^(mean d / b). Tests over the seeds: a
paired t (``scipy.stats.ttest_rel``), the exact sign-flip permutation p
(``scipy.stats.permutation_test``, all 2^n flips) and a seed-bootstrap interval on E
(``scipy.stats.bootstrap``, paired, percentile).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

FLAT = 1e-9  # accuracy per doubling below which a curve counts as flat


@dataclass(frozen=True)
class Paired:
    """Arm A against arm B over the seeds both finished."""

    seeds: int
    mean_difference: float  # mean over seeds of d_s (accuracy, 0-1)
    sd_difference: float  # sd over seeds of d_s
    slope: float  # B's accuracy per doubling of items at the budget points
    efficiency: float  # 2^(mean d / slope); nan where the slope is not positive
    interval: tuple[float, float]  # 95% seed-bootstrap interval of the efficiency
    flat_resamples: float  # share of resamples whose baseline slope was not positive (left out)
    t: float
    p_t: float  # paired t, two-sided
    p_sign_flip: float  # exact sign-flip permutation, two-sided
    wins: int  # seeds where A's d_s > 0
    ties: int


def per_seed(curves: pd.DataFrame, arm: str, steps: list[int]) -> pd.DataFrame:
    """Accuracy of ``arm``, one row per seed, one column per budget step (seeds that
    reached every step only)."""
    rows = curves[(curves["strategy"] == arm) & curves["step"].isin(steps)]
    table = rows.pivot_table(index="seed", columns="step", values="accuracy")
    return table.reindex(columns=steps).dropna()


def log2_slope(items: np.ndarray, accuracy: np.ndarray) -> float:
    """Least-squares slope of accuracy against log2(items): accuracy per doubling (0 for a
    curve flat to rounding, whose fit leaves a slope of ~1e-17)."""
    slope = float(np.polyfit(np.log2(items), accuracy, 1)[0])
    return 0.0 if abs(slope) < FLAT else slope


def compare(
    curves: pd.DataFrame, arm: str, baseline: str, steps: list[int], resamples: int = 9999
) -> Paired:
    """``arm`` vs ``baseline`` over their common seeds at budget ``steps`` (fixed
    generators: the same data give the same interval)."""
    a, b = per_seed(curves, arm, steps), per_seed(curves, baseline, steps)
    common = a.index.intersection(b.index)
    a, b = a.loc[common], b.loc[common]
    if len(common) < 2:
        raise ValueError(f"{arm} vs {baseline}: {len(common)} common seed(s); need 2 or more")
    items = (
        curves[(curves["strategy"] == baseline) & curves["step"].isin(steps)]
        .groupby("step")["n_synthetic"]
        .median()
        .reindex(steps)
        .to_numpy()
    )
    d = (a - b).mean(axis=1).to_numpy()
    b_curves = b.to_numpy()

    def efficiency(seeds: np.ndarray) -> float:
        """E on a resample of the seeds (row positions): d and B's slope resampled together."""
        rows = seeds.astype(int)
        slope = log2_slope(items, b_curves[rows].mean(axis=0))
        return float(2.0 ** (d[rows].mean() / slope)) if slope > 0 else float("nan")

    slope = log2_slope(items, b_curves.mean(axis=0))
    everyone = np.arange(len(d))
    interval, flat = (float("nan"), float("nan")), float("nan")
    if slope > 0:
        # One sample of seed positions: each resample keeps a seed's d and its baseline curve
        # together (the pairing), as scipy's paired bootstrap resamples observations.
        result = stats.bootstrap(
            (everyone,),
            efficiency,
            vectorized=False,
            n_resamples=resamples,
            method="percentile",
            random_state=np.random.default_rng(0),
        )
        # A resample whose baseline curve does not rise has no efficiency (NaN): the interval
        # is over the others, and their share is reported beside it.
        values = result.bootstrap_distribution
        flat = float(np.isnan(values).mean())
        low, high = np.nanpercentile(values, [2.5, 97.5])
        interval = (float(low), float(high))
    mean_a, mean_b = a.mean(axis=1).to_numpy(), b.mean(axis=1).to_numpy()
    t = stats.ttest_rel(mean_a, mean_b)
    # Swapping A and B within a seed flips the sign of d_s: all 2^seeds flips, exactly.
    flips = stats.permutation_test(
        (mean_a, mean_b),
        lambda x, y, axis: np.mean(x - y, axis=axis),
        permutation_type="samples",
        vectorized=True,
        n_resamples=np.inf,
        alternative="two-sided",
    )
    return Paired(
        seeds=len(common),
        mean_difference=float(d.mean()),
        sd_difference=float(d.std(ddof=1)),
        slope=slope,
        efficiency=efficiency(everyone),
        interval=interval,
        flat_resamples=flat,
        t=float(t.statistic),
        p_t=float(t.pvalue),
        p_sign_flip=float(flips.pvalue),
        wins=int((d > 0).sum()),
        ties=int((d == 0).sum()),
    )


def power(effect: float, slope: float, sd: float, seeds: int, alpha: float = 0.05) -> float:
    """The chance a two-sided paired t at ``alpha`` over ``seeds`` detects a true efficiency
    ``effect`` (e.g. 1.3), given the baseline's slope per doubling and the sd over seeds of
    the per-seed difference d_s (noncentral t)."""
    delta = slope * np.log2(effect)
    df = seeds - 1
    noncentrality = delta / (sd / np.sqrt(seeds))
    critical = stats.t.ppf(1 - alpha / 2, df)
    return float(
        stats.nct.sf(critical, df, noncentrality) + stats.nct.cdf(-critical, df, noncentrality)
    )
