"""Win rates with seed-bootstrap intervals, and the A/A pair (two strategies that read
nothing from the student: the noise floor): pandas, numpy and scipy, on the curves table of
`ray_asd.report.analyses`."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ray_asd.report.analyses import PANEL, RESAMPLES, bootstrap

# Strategies that read nothing from the student, by name, for runs without the scorer and
# selector tags: random, static and their second random streams (random_s1).
BLIND_NAME = re.compile(r"^(random|static)(_s\d+)?$")


def _pair_counts(
    curves: pd.DataFrame, order: list[str] | None
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Per seed and ordered pair (i, j): i's wins over j (a tie counting half), the ties and
    the cells (task, student, budget) where both have an accuracy; arrays [seed, i, j]."""
    iterations = curves[curves["step"] >= 0].dropna(subset=["accuracy"])
    table = iterations.set_index([*PANEL, "step", "seed", "strategy"])["accuracy"].unstack()
    names = [n for n in (order or list(pd.unique(iterations["strategy"]))) if n in table.columns]
    seeds = list(pd.unique(table.index.get_level_values("seed")))
    shape = (len(seeds), len(names), len(names))
    wins, ties, cells = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    for a, i in enumerate(names):
        for b, j in enumerate(names):
            if a == b:
                continue
            both = table[[i, j]].dropna()
            by_seed = both.groupby(level="seed")
            won = (both[i] > both[j]).groupby(level="seed").sum()
            tied = (both[i] == both[j]).groupby(level="seed").sum()
            s = [seeds.index(seed) for seed in by_seed.size().index]
            wins[s, a, b] = won.to_numpy() + 0.5 * tied.to_numpy()
            ties[s, a, b] = tied.to_numpy()
            cells[s, a, b] = by_seed.size().to_numpy()
    return names, wins, ties, cells


def win_rates(
    curves: pd.DataFrame,
    order: list[str] | None = None,
    n_resamples: int = RESAMPLES,
    rng_seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The win-rate matrix over (task, student, budget, seed) cells.

    ``P[i][j]`` = the share of cells with an accuracy for both i and j where i's accuracy is
    higher, a tie counting half. A cell where either is missing (NaN, a trial not that far)
    is left out of that pair.

    Returns:
        ``(matrix, overall)``: the matrix (rows i, columns j, NaN on the diagonal and for pairs
        with no common cell) and per strategy its pooled win rate against all the others
        (``win_rate``) with a 95% seed-bootstrap interval (``win_rate_low``,
        ``win_rate_high``: seeds resampled, each with all its cells), the comparisons behind
        it (``cells``), how many of them were ties (``ties``) and its rank (1 = best; equal
        win rates share a rank). Ties per pair: :func:`tie_counts`.
    """
    names, wins, ties, cells = _pair_counts(curves, order)
    with np.errstate(invalid="ignore", divide="ignore"):
        matrix = pd.DataFrame(wins.sum(0) / cells.sum(0), index=names, columns=names)
    won, compared = wins.sum(axis=2), cells.sum(axis=2)  # [seed, strategy]
    low, high = _share_interval(won, compared, n_resamples, rng_seed)
    total = compared.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(total > 0, won.sum(0) / total, np.nan)
    overall = pd.DataFrame(
        {
            "strategy": names,
            "win_rate": rate,
            "win_rate_low": low,
            "win_rate_high": high,
            "cells": total.astype(int),
            "ties": ties.sum(axis=(0, 2)).astype(int),
            "seeds": len(wins),
        }
    )
    overall["rank"] = overall["win_rate"].rank(ascending=False, method="min").astype("Int64")
    return matrix, overall


def tie_counts(curves: pd.DataFrame, order: list[str] | None = None) -> pd.DataFrame:
    """Per pair (i, j): the cells where both have the same accuracy (symmetric)."""
    names, _, ties, _ = _pair_counts(curves, order)
    return pd.DataFrame(ties.sum(0).astype(int), index=names, columns=names)


def pair_win_rate(
    curves: pd.DataFrame, a: str, b: str, n_resamples: int = RESAMPLES, rng_seed: int = 0
) -> dict[str, float]:
    """``P[a][b]`` with its 95% seed-bootstrap interval, its cells and ties."""
    names, wins, ties, cells = _pair_counts(curves, [a, b])
    if names != [a, b]:
        return {"win_rate": np.nan, "low": np.nan, "high": np.nan, "cells": 0, "ties": 0}
    low, high = _share_interval(wins[:, 0, 1:], cells[:, 0, 1:], n_resamples, rng_seed)
    total = cells[:, 0, 1].sum()
    return {
        "win_rate": wins[:, 0, 1].sum() / total if total else np.nan,
        "low": float(low[0]),
        "high": float(high[0]),
        "cells": int(total),
        "ties": int(ties[:, 0, 1].sum()),
    }


def _share_interval(
    numerator: np.ndarray, denominator: np.ndarray, n_resamples: int, rng_seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap interval of sum(numerator) / sum(denominator) over resampled seeds (rows);
    one interval per column."""

    def statistic(index: np.ndarray, axis: int = -1) -> np.ndarray:
        index = index.astype(int)
        seed_axis = index.ndim - 1
        with np.errstate(invalid="ignore", divide="ignore"):
            share = numerator[index].sum(seed_axis) / denominator[index].sum(seed_axis)
        return np.moveaxis(share, -1, 0)  # scipy: one output per leading index

    return bootstrap(statistic, len(numerator), numerator.shape[1], n_resamples, rng_seed)


def blind_strategies(runs: pd.DataFrame) -> list[str]:
    """The strategies that read nothing from the student (in ``runs`` order): MLflow tags
    ``ray_asd.scorer`` none and ``ray_asd.selector`` uniform (``scorer``, ``selector``
    columns); where a strategy's runs lack the tags, its name: random, static, random_s<k>."""
    blind = []
    for name, group in runs.groupby("strategy", sort=False):
        scorer = group["scorer"].dropna() if "scorer" in group else pd.Series(dtype=object)
        selector = group["selector"].dropna() if "selector" in group else pd.Series(dtype=object)
        if len(scorer) and len(selector):
            if scorer.iloc[0] == "none" and selector.iloc[0] == "uniform":
                blind.append(name)
        elif BLIND_NAME.match(str(name)):
            blind.append(name)
    return blind


def aa_pair(runs: pd.DataFrame, order: list[str] | None = None) -> tuple[str, str] | None:
    """The A/A pair, ``(strategy, baseline)``: two blind strategies (:func:`blind_strategies`),
    whose difference is the noise floor. Preferred: two that differ only by random stream and
    are not upfront (random_s1 vs random); else a non-upfront one vs static (random vs
    static); else two static streams; None with fewer than two blind strategies."""
    blind = blind_strategies(runs)
    rank = {name: k for k, name in enumerate(order or [])}
    blind.sort(key=lambda name: rank.get(name, len(rank)))
    base = {name: re.sub(r"_s\d+$", "", name) for name in blind}
    upfront = [name for name in blind if base[name] == "static"]
    moving = [name for name in blind if name not in upfront]

    def twins(group: list[str]) -> tuple[str, str] | None:
        for k, first in enumerate(group):
            for other in group[k + 1 :]:
                if base[other] == base[first]:  # the same strategy on another stream
                    return other, first
        return None

    if pair := twins(moving):
        return pair
    if moving and upfront:
        return moving[0], upfront[0]
    return twins(upfront)
