"""The paper's analyses on tidy tables (DESIGN section 5): pandas, numpy and scipy, no MLflow.

Inputs (built from MLflow by `ray_asd.report.data`):

- ``curves``: one row per (trial, step) with ``task``, ``student``, ``strategy``, ``seed``,
  ``step`` (-2 the base model, -1 the warm-up, t >= 0 iteration t), ``n_synthetic``,
  ``teacher_tokens`` and ``accuracy`` (NaN where a value is missing);
- ``items``: one row per accepted synthetic item of an iteration, with the trial's keys,
  ``iteration``, ``seed_score`` (its seed's score when it was picked), ``score`` (the item's,
  same scorer, same student) and ``student_correct``.

A budget is an iteration index t: every strategy of a (task, student, seed) cell has trained
on the same number of items by then (the shared warm-up plus m per iteration) unless the
teacher's items were rejected; curves are drawn against the items actually trained on.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats

PANEL = ["task", "student"]
TRIAL = [*PANEL, "strategy", "seed"]
BASELINES = ("random", "static")


def mean_curves(curves: pd.DataFrame) -> pd.DataFrame:
    """Per (task, student, strategy, step): the means over seeds of ``n_synthetic``,
    ``teacher_tokens`` and ``accuracy``, the standard deviation of accuracy (``accuracy_std``,
    NaN for one seed) and the number of seeds with a value (``seeds``)."""
    finite = curves.dropna(subset=["accuracy"])
    return (
        finite.groupby([*PANEL, "strategy", "step"], sort=False)
        .agg(
            n_synthetic=("n_synthetic", "mean"),
            teacher_tokens=("teacher_tokens", "mean"),
            accuracy=("accuracy", "mean"),
            accuracy_std=("accuracy", "std"),
            seeds=("accuracy", "size"),
        )
        .reset_index()
        .sort_values([*PANEL, "strategy", "step"], kind="stable")
        .reset_index(drop=True)
    )


def first_reach(x: np.ndarray, y: np.ndarray, target: float) -> float:
    """The smallest ``x`` at which the piecewise-linear curve through the points (in order)
    reaches ``target``: ``x[0]`` when it starts at or above it, ``inf`` when it never gets
    there, NaN for a NaN target or an empty curve."""
    if np.isnan(target) or len(x) == 0:
        return float("nan")
    if y[0] >= target:
        return float(x[0])
    for k in range(len(x) - 1):
        if y[k] < target <= y[k + 1]:
            share = (target - y[k]) / (y[k + 1] - y[k])
            return float(x[k] + share * (x[k + 1] - x[k]))
    return float("inf")


def efficiency(curves: pd.DataFrame, baseline: str, x: str = "n_synthetic") -> pd.DataFrame:
    """For each strategy and budget: what ``baseline`` needs (in ``x``: items or teacher
    tokens) to reach the strategy's accuracy, over what the strategy used.

    Computed on the seed-mean curves (``ratio``; ``reached`` False means the baseline never
    got there and ``ratio`` is then ``inf``, with ``bound`` = the baseline's largest ``x`` over
    the strategy's: "> bound"; ``seeds``: the strategy's seeds at that step), and per seed
    against the baseline's trial of the same seed (``seed_median``, ``seed_min``, ``seed_max``
    over seeds, ``inf`` where unreached; ``seed_pairs`` seeds compared).

    Returns:
        One row per (task, student, strategy, step >= 0), strategies other than the baseline;
        empty when the baseline has no runs.
    """
    table = _ratios(mean_curves(curves), PANEL, baseline, x)
    if table.empty:
        return table
    per_seed = _ratios(curves.dropna(subset=["accuracy"]), [*PANEL, "seed"], baseline, x)
    spread = (
        per_seed.groupby([*PANEL, "strategy", "step"], sort=False)["ratio"]
        .agg(seed_median="median", seed_min="min", seed_max="max", seed_pairs="size")
        .reset_index()
    )
    return table.merge(spread, on=[*PANEL, "strategy", "step"], how="left")


def _ratios(curves: pd.DataFrame, keys: list[str], baseline: str, x: str) -> pd.DataFrame:
    """Within each group of ``keys``: the baseline's curve against every other strategy's
    points of the iterations (see :func:`efficiency`)."""
    rows = []
    for key, group in curves.dropna(subset=[x]).groupby(keys, sort=False):
        base = group[group["strategy"] == baseline].sort_values("step")
        if base.empty:
            continue
        base_x, base_y = base[x].to_numpy(float), base["accuracy"].to_numpy(float)
        others = group[(group["strategy"] != baseline) & (group["step"] >= 0)]
        for row in others.itertuples(index=False):
            used = float(getattr(row, x))
            needed = first_reach(base_x, base_y, row.accuracy)
            rows.append(
                {
                    **dict(zip(keys, key, strict=True)),
                    "strategy": row.strategy,
                    "step": row.step,
                    "x": used,
                    "accuracy": row.accuracy,
                    "seeds": getattr(row, "seeds", 1),
                    "baseline_x": needed,
                    "ratio": needed / used if used > 0 else float("nan"),
                    "reached": bool(np.isfinite(needed)),
                    "bound": base_x.max() / used if used > 0 else float("nan"),
                }
            )
    return pd.DataFrame(rows)


def win_rates(
    curves: pd.DataFrame, order: list[str] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The win-rate matrix over (task, student, budget, seed) cells.

    ``P[i][j]`` = the share of cells with an accuracy for both i and j where i's accuracy is
    higher, a tie counting half. A cell where either is missing (NaN, a trial not that far)
    is left out of that pair.

    Returns:
        ``(matrix, overall)``: the matrix (rows i, columns j, NaN on the diagonal and for pairs
        with no common cell) and per strategy its pooled win rate against all the others
        (``win_rate``), the comparisons behind it (``cells``) and its rank (1 = best; equal
        win rates share a rank).
    """
    iterations = curves[curves["step"] >= 0].dropna(subset=["accuracy"])
    table = iterations.set_index([*PANEL, "step", "seed", "strategy"])["accuracy"].unstack()
    names = order or list(pd.unique(iterations["strategy"]))
    names = [name for name in names if name in table.columns]
    matrix = pd.DataFrame(np.nan, index=names, columns=names)
    won, compared = dict.fromkeys(names, 0.0), dict.fromkeys(names, 0)
    for i in names:
        for j in names:
            if i == j:
                continue
            both = table[[i, j]].dropna()
            if both.empty:
                continue
            wins = float((both[i] > both[j]).sum() + 0.5 * (both[i] == both[j]).sum())
            matrix.loc[i, j] = wins / len(both)
            won[i] += wins
            compared[i] += len(both)
    overall = pd.DataFrame(
        {
            "strategy": names,
            "win_rate": [won[n] / compared[n] if compared[n] else np.nan for n in names],
            "cells": [compared[n] for n in names],
        }
    )
    overall["rank"] = overall["win_rate"].rank(ascending=False, method="min").astype("Int64")
    return matrix, overall


def spearman(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Spearman's rho and its two-sided p-value; NaN for fewer than 3 pairs or a constant
    side (no ranking to correlate)."""
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan"), float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = stats.spearmanr(a, b)
    return float(result.statistic), float(result.pvalue)


def scored_items(items: pd.DataFrame) -> pd.DataFrame:
    """The items that carry both their own score and their seed's (finite)."""
    if items.empty or "score" not in items:
        return items.iloc[0:0]
    values = items[["seed_score", "score"]].apply(pd.to_numeric, errors="coerce")
    return items[np.isfinite(values).all(axis=1)]


def fidelity(items: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Score fidelity: does a synthetic item keep its seed's score (Figure 2)?

    Returns:
        ``(per_item, per_iteration, medians)``:

        - ``per_item``: per (task, student, strategy), Spearman's rho (and p) between each
          item's score and its seed's, over all its items (every seed and iteration);
        - ``per_iteration``: the same per iteration;
        - ``medians``: the dataset level: one point per (task, student, strategy, seed,
          iteration), the median score of the picked seeds (``seed_median``, over the items,
          as each item came from one) and of the items (``item_median``); rho and p over
          those points per strategy are in ``medians.attrs["rho"]``.
    """
    scored = scored_items(items)
    keys = [*PANEL, "strategy"]

    def correlate(group: pd.DataFrame) -> pd.Series:
        rho, p = spearman(group["seed_score"].to_numpy(float), group["score"].to_numpy(float))
        return pd.Series({"rho": rho, "p": p, "n": len(group)})

    per_item = _apply(scored, keys, correlate)
    per_iteration = _apply(scored, [*keys, "iteration"], correlate)
    medians = (
        scored.groupby([*keys, "seed", "iteration"], sort=False)
        .agg(seed_median=("seed_score", "median"), item_median=("score", "median"))
        .reset_index()
    )
    summary = {}
    for key, group in medians.groupby(keys, sort=False):
        rho, p = spearman(
            group["seed_median"].to_numpy(float), group["item_median"].to_numpy(float)
        )
        summary[key] = {"rho": rho, "p": p, "n": len(group)}
    medians.attrs["rho"] = summary
    return per_item, per_iteration, medians


def _apply(table: pd.DataFrame, keys: list[str], function) -> pd.DataFrame:
    columns = [*keys, "rho", "p", "n"]
    if table.empty:
        return pd.DataFrame(columns=columns)
    rows = [
        {**dict(zip(keys, key, strict=True)), **function(group).to_dict()}
        for key, group in table.groupby(keys, sort=False)
    ]
    result = pd.DataFrame(rows, columns=columns)
    result["n"] = result["n"].astype(int)
    return result


def ordering(items: pd.DataFrame, band: float = 0.9) -> pd.DataFrame:
    """Cumulative accuracy of the student on the synthetic items, taken in score order
    (highest score first, the order a top-k selector picks in) vs in random order (Figure 3).

    If the scores say which items the student gets wrong, the ordered curve starts below the
    overall accuracy and climbs to it; in random order the cumulative accuracy of the first k
    items is hypergeometric, with mean the overall accuracy at every k (``shuffled``) and the
    central ``band`` interval given exactly (``shuffled_low``, ``shuffled_high``).

    Returns:
        One row per (task, student, strategy, k): ``fraction`` = k / n, ``ordered``,
        ``shuffled``, ``shuffled_low``, ``shuffled_high``. Ties in score keep item id order.
    """
    scored = scored_items(items).dropna(subset=["student_correct"])
    frames = []
    for key, group in scored.groupby([*PANEL, "strategy"], sort=False):
        ranked = group.assign(neg=-group["score"].astype(float)).sort_values(
            ["neg", "id"], kind="stable"
        )
        correct = ranked["student_correct"].astype(bool).to_numpy()
        n, right = len(correct), int(correct.sum())
        k = np.arange(1, n + 1)
        tail = (1 - band) / 2
        frames.append(
            pd.DataFrame(
                {
                    **dict(zip([*PANEL, "strategy"], key, strict=True)),
                    "k": k,
                    "fraction": k / n,
                    "ordered": np.cumsum(correct) / k,
                    "shuffled": np.full(n, right / n),
                    "shuffled_low": stats.hypergeom.ppf(tail, n, right, k) / k,
                    "shuffled_high": stats.hypergeom.ppf(1 - tail, n, right, k) / k,
                }
            )
        )
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def ordering_summary(curve: pd.DataFrame, share: float = 0.25) -> pd.DataFrame:
    """Per (task, student, strategy): items, the overall accuracy on them and the accuracy on
    the first ``share`` of them by score (the hardest by the scorer's account)."""
    rows = []
    for key, group in curve.groupby([*PANEL, "strategy"], sort=False):
        n = len(group)
        first = max(1, int(np.ceil(share * n)))
        rows.append(
            {
                **dict(zip([*PANEL, "strategy"], key, strict=True)),
                "items": n,
                "accuracy": float(group["ordered"].iloc[-1]),
                "first_share_accuracy": float(group["ordered"].iloc[first - 1]),
            }
        )
    return pd.DataFrame(rows)
