"""The paper's analyses of the synthetic items (Figures 2 and 3): pandas, numpy, scipy.

Input (built from MLflow by `ray_asd.report.data`): ``items``, one row per accepted synthetic
item of an iteration, with the trial's keys (``task``, ``student``, ``strategy``, ``seed``),
``iteration``, ``seed_score`` (its seed's score when it was picked), ``score`` (the item's,
same scorer, same student), ``student_correct``, and for the ordering ``seed_score_first`` /
``correct_first`` and ``seed_score_final`` / ``correct_final``: its seed's score under the
student of the trial's first / final iteration and that student's correctness on the item.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy import stats

from ray_asd.report.analyses import PANEL, RESAMPLES

STRATEGY = [*PANEL, "strategy"]
MIN_POINTS = 5  # dataset-level rho on fewer (seed, iteration) points is not shown
# Ordering: whose scores and answers, as (column suffix, words).
JUDGES = {"first": "first-iteration student", "final": "final-iteration student"}
POOLED = "pooled"  # the iteration label of the curves over all iterations


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


def fidelity(
    items: pd.DataFrame, n_resamples: int = RESAMPLES, rng_seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Score fidelity: does a synthetic item keep its seed's score (Figure 2)?

    Returns:
        ``(summary, groups, medians)``:

        - ``groups``: Spearman's rho (and p, n) of item score vs seed score per (task,
          student, strategy, iteration, seed): one student each;
        - ``summary``, per (task, student, strategy): the headline, the ``rho_median`` of
          those groups with ``rho_min``, ``rho_max`` and the number of groups with a rho
          (``groups``); ``items``; ``pooled_rho``/``pooled_p`` over all its items (which mixes
          students); the dataset level over the ``points`` of ``medians``: ``dataset_rho``
          (NaN below ``MIN_POINTS`` points) and ``null_p``, its p-value under
          :func:`within_iteration_null`;
        - ``medians``: one point per (task, student, strategy, seed, iteration), the median
          score of the picked seeds (``seed_median``, over the items, as each came from one)
          and of the items (``item_median``).
    """
    scored = scored_items(items)
    groups = _apply(scored, [*STRATEGY, "iteration", "seed"], _correlate)
    pooled = _apply(scored, STRATEGY, _correlate).set_index(STRATEGY)
    medians = (
        scored.groupby([*STRATEGY, "seed", "iteration"], sort=False)
        .agg(seed_median=("seed_score", "median"), item_median=("score", "median"))
        .reset_index()
    )
    rows = []
    for key, points in medians.groupby(STRATEGY, sort=False):
        rho = groups.set_index(STRATEGY).loc[[key], "rho"].dropna()
        level, null_p = float("nan"), float("nan")
        if len(points) >= MIN_POINTS:
            level, null_p = within_iteration_null(
                points["seed_median"].to_numpy(float),
                points["item_median"].to_numpy(float),
                points["iteration"].to_numpy(),
                n_resamples,
                rng_seed,
            )
        rows.append(
            {
                **dict(zip(STRATEGY, key, strict=True)),
                "rho_median": rho.median(),
                "rho_min": rho.min(),
                "rho_max": rho.max(),
                "groups": len(rho),
                "items": int(pooled.loc[key, "n"]),
                "pooled_rho": pooled.loc[key, "rho"],
                "pooled_p": pooled.loc[key, "p"],
                "points": len(points),
                "dataset_rho": level,
                "null_p": null_p,
            }
        )
    return pd.DataFrame(rows), groups, medians


def _correlate(group: pd.DataFrame) -> dict[str, float]:
    rho, p = spearman(group["seed_score"].to_numpy(float), group["score"].to_numpy(float))
    return {"rho": rho, "p": p, "n": len(group)}


def _apply(
    table: pd.DataFrame, keys: list[str], function: Callable[[pd.DataFrame], dict[str, float]]
) -> pd.DataFrame:
    columns = [*keys, "rho", "p", "n"]
    rows = [
        {**dict(zip(keys, key, strict=True)), **function(group)}
        for key, group in table.groupby(keys, sort=False)
    ]
    result = pd.DataFrame(rows, columns=columns)
    result["n"] = result["n"].astype(int)
    return result


def within_iteration_null(
    seed_median: np.ndarray,
    item_median: np.ndarray,
    iteration: np.ndarray,
    n_resamples: int = RESAMPLES,
    rng_seed: int = 0,
) -> tuple[float, float]:
    """Spearman's rho of the dataset points and its two-sided p-value (scipy's
    ``permutation_test``) under the null that within an iteration it does not matter which
    item median goes with which seed median: the seed links are shuffled within each
    iteration, so a trend common to all seeds (scores drifting as the students learn) is
    kept by the null and cannot make rho significant on its own.

    scipy's ``pairings`` permutes every sample on its own, so each iteration is one sample
    (the item medians' ranks); iterations with fewer seeds are padded with NaN to the same
    length and the statistic drops the NaNs, keeping the order of the rest: a uniform
    permutation of the padded sample leaves a uniform permutation of the real values.
    """
    if np.ptp(seed_median) == 0 or np.ptp(item_median) == 0:
        return float("nan"), float("nan")
    strata = [np.flatnonzero(iteration == t) for t in pd.unique(iteration)]
    sizes, width = [len(s) for s in strata], max(len(s) for s in strata)
    ranks = stats.rankdata(item_median)  # permuting the values permutes their ranks
    fixed = np.concatenate([stats.rankdata(seed_median)[s] for s in strata])
    samples = [np.pad(ranks[s], (0, width - len(s)), constant_values=np.nan) for s in strata]

    def statistic(*permuted: np.ndarray, axis: int = -1) -> np.ndarray:
        parts = [
            v[~np.isnan(v)].reshape(*v.shape[:-1], n) for v, n in zip(permuted, sizes, strict=True)
        ]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return stats.pearsonr(fixed, np.concatenate(parts, axis=-1), axis=-1).statistic

    result = stats.permutation_test(
        samples,
        statistic,
        permutation_type="pairings",
        vectorized=True,
        n_resamples=n_resamples,
        rng=np.random.default_rng(rng_seed),
    )
    return float(result.statistic), float(result.pvalue)


def ordering(items: pd.DataFrame, band: float = 0.9) -> pd.DataFrame:
    """Cumulative accuracy of a student on the synthetic items taken highest SEED score first
    (the order a top-k selector picks their seeds in) vs in random order (Figure 3), once for
    the trial's first-iteration student and once for its final one (``judge``: first, final;
    ``seed_score_<judge>``, ``correct_<judge>``).

    Per (task, student, strategy, judge) and iteration (trial seeds pooled), plus all
    iterations pooled (``iteration`` = "pooled"). If the scores say which items the student
    gets wrong, the ordered curve starts below the overall accuracy and climbs to it; in
    random order the cumulative accuracy of the first k items is hypergeometric, with mean
    the overall accuracy at every k (``shuffled``) and the central ``band`` interval exact
    (``shuffled_low``, ``shuffled_high``). A block of items with equal seed scores counts as
    the expectation over its random orders: each of its places gets the block's mean
    correctness, so a scorer that ties everything gives the random-order mean exactly.

    Returns:
        One row per curve point: keys, ``judge``, ``iteration``, ``k``, ``fraction`` = k / n,
        ``ordered``, ``shuffled``, ``shuffled_low``, ``shuffled_high``; ``attrs["left_out"]``:
        per judge, the items without that student's seed score or correctness.
    """
    frames, left_out = [], {}
    for judge in JUDGES:
        usable = _judged(items, judge)
        left_out[judge] = len(items) - len(usable)
        for key, group in usable.groupby(STRATEGY, sort=False):
            parts = [*group.groupby("iteration", sort=True), (POOLED, group)]
            for iteration, part in parts:
                curve = _cumulative(
                    part["judge_score"].to_numpy(), part["judge_correct"].to_numpy(), band
                )
                frames.append(
                    curve.assign(
                        **dict(zip(STRATEGY, key, strict=True)), judge=judge, iteration=iteration
                    )
                )
    curve = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    curve.attrs["left_out"] = left_out
    return curve


def _judged(items: pd.DataFrame, judge: str) -> pd.DataFrame:
    """The items with a finite seed score and a correctness under ``judge``'s student."""
    score, correct = f"seed_score_{judge}", f"correct_{judge}"
    if items.empty or score not in items or correct not in items:
        return pd.DataFrame(columns=[*STRATEGY, "iteration", "judge_score", "judge_correct"])
    values = pd.DataFrame(
        {
            "judge_score": pd.to_numeric(items[score], errors="coerce"),
            "judge_correct": pd.to_numeric(items[correct].astype(object), errors="coerce"),
        }
    )
    keep = np.isfinite(values).all(axis=1)
    return pd.concat([items.loc[keep, [*STRATEGY, "iteration"]], values[keep]], axis=1)


def _cumulative(score: np.ndarray, correct: np.ndarray, band: float) -> pd.DataFrame:
    order = np.argsort(-score.astype(float), kind="stable")
    score, correct = score[order].astype(float), correct[order].astype(float)
    # Ties: the expected correctness at each place of a block over the block's random orders.
    expected = pd.Series(correct).groupby(score).transform("mean").to_numpy()
    n, right = len(correct), int(correct.sum())
    k = np.arange(1, n + 1)
    tail = (1 - band) / 2
    return pd.DataFrame(
        {
            "k": k,
            "fraction": k / n,
            "ordered": np.cumsum(expected) / k,
            "shuffled": np.full(n, right / n),
            "shuffled_low": stats.hypergeom.ppf(tail, n, right, k) / k,
            "shuffled_high": stats.hypergeom.ppf(1 - tail, n, right, k) / k,
        }
    )


def ordering_summary(curve: pd.DataFrame, share: float = 0.25) -> pd.DataFrame:
    """Per (task, student, strategy, judge, iteration or "pooled"): items, the accuracy on
    them and on the first ``share`` of them by seed score (the hardest by the scorer's
    account; tie blocks as in :func:`ordering`)."""
    rows = []
    for key, group in curve.groupby([*STRATEGY, "judge", "iteration"], sort=False):
        n = len(group)
        first = max(1, int(np.ceil(share * n)))
        rows.append(
            {
                **dict(zip([*STRATEGY, "judge", "iteration"], key, strict=True)),
                "items": n,
                "accuracy": float(group["ordered"].iloc[-1]),
                "first_share_accuracy": float(group["ordered"].iloc[first - 1]),
            }
        )
    return pd.DataFrame(rows)
