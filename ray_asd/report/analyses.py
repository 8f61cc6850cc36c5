"""The paper's analyses of the curves (DESIGN section 5): pandas, numpy and scipy, no MLflow.

Input (built from MLflow by `ray_asd.report.data`): ``curves``, one row per (trial, step) with
``task``, ``student``, ``strategy``, ``seed``, ``step`` (-2 the base model, -1 the warm-up,
t >= 0 iteration t), ``n_synthetic``, ``teacher_tokens``, ``accuracy`` (NaN where missing) and
optionally ``accuracy_difficulty_<k>``. The item analyses (fidelity, ordering) are in
`ray_asd.report.items`, win rates and the A/A pair in `ray_asd.report.wins`.

A budget is an iteration index t: every strategy of a (task, student, seed) cell has trained
on the same number of items by then (the shared warm-up plus m per iteration) unless the
teacher's items were rejected; curves are drawn against the items actually trained on.

Uncertainty is over seeds (the experiment's replicates): scipy's bootstrap, resampling seeds,
with a fixed generator (``rng_seed``) so that a report is reproducible.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy import stats

PANEL = ["task", "student"]
TRIAL = [*PANEL, "strategy", "seed"]
BASELINES = ("random", "static")
RESAMPLES = 9999  # bootstrap and permutation resamples
LEVEL = 0.95  # bootstrap confidence level
DIFFICULTY = "accuracy_difficulty_"  # metric prefix: test accuracy on items of difficulty k


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
    needed, _, _ = reach(np.asarray(x, float)[None], np.asarray(y, float)[None], np.array([target]))
    return float(needed[0])


def reach(
    x: np.ndarray, y: np.ndarray, target: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`first_reach` for a batch of curves (rows of ``x``, ``y``) and targets.

    Returns:
        ``(needed, segment, crossed)``: the ``x`` of the first crossing; the index k of the
        segment (k, k + 1) it lies on; whether it is a crossing (False where the curve starts
        at or above the target or never gets there).
    """
    # A repeated last point is a flat segment nothing crosses: curves of one point work too.
    x, y = np.column_stack([x, x[:, -1]]), np.column_stack([y, y[:, -1]])
    t = target[:, None]
    cross = (y[:, :-1] < t) & (t <= y[:, 1:])
    segment, rows = cross.argmax(axis=1), np.arange(len(y))
    y0, y1 = y[rows, segment], y[rows, segment + 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        at = x[rows, segment] + (target - y0) / (y1 - y0) * (
            x[rows, segment + 1] - x[rows, segment]
        )
    start = y[:, 0] >= target
    crossed = cross.any(axis=1) & ~start
    needed = np.where(start, x[:, 0], np.where(crossed, at, np.inf))
    return np.where(np.isnan(target), np.nan, needed), segment, crossed


def efficiency(
    curves: pd.DataFrame,
    baseline: str,
    x: str = "n_synthetic",
    n_resamples: int = RESAMPLES,
    rng_seed: int = 0,
) -> pd.DataFrame:
    """For each strategy and budget: what ``baseline`` needs (in ``x``: items or teacher
    tokens) to reach the strategy's accuracy, over what the strategy used.

    Computed on the seed-mean curves: ``ratio`` (``reached`` False: the baseline never got
    there, ``ratio`` inf, ``bound`` = the baseline's largest ``x`` over the strategy's);
    ``seeds``: the strategy's seeds at that step. ``warmup`` W = the baseline's ``x`` at the
    warm-up (step -1; 0 if none) and ``marginal`` = (needed - W) / (x - W): the same ratio on
    what came after the shared warm-up. ``undetermined``: the baseline's seed-mean rises less
    than its standard error (sd over seeds / sqrt(seeds), the larger of the segment's two
    ends) across the segment where it reaches the target, so the crossing point is noise.
    ``ratio_low``/``ratio_high`` and ``marginal_low``/``marginal_high``: 95% seed-bootstrap
    intervals (see :func:`efficiency_intervals`; ``interval_seeds`` seeds paired). Per seed,
    against the baseline's trial of the same seed: ``seed_median``, ``seed_min``,
    ``seed_max`` (inf where unreached) over ``seed_pairs`` seeds.

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
    intervals = efficiency_intervals(curves, table, baseline, x, n_resamples, rng_seed)
    keys = [*PANEL, "strategy", "step"]
    return table.merge(spread, on=keys, how="left").merge(intervals, on=keys, how="left")


def _ratios(curves: pd.DataFrame, keys: list[str], baseline: str, x: str) -> pd.DataFrame:
    """Within each group of ``keys``: the baseline's curve against every other strategy's
    points of the iterations (see :func:`efficiency`)."""
    frames = []
    for key, group in curves.dropna(subset=[x]).groupby(keys, sort=False):
        base = group[group["strategy"] == baseline].sort_values("step")
        others = group[(group["strategy"] != baseline) & (group["step"] >= 0)]
        if base.empty or others.empty:
            continue
        base_x, base_y = base[x].to_numpy(float), base["accuracy"].to_numpy(float)
        used, target = others[x].to_numpy(float), others["accuracy"].to_numpy(float)
        n = len(others)
        needed, segment, crossed = reach(np.tile(base_x, (n, 1)), np.tile(base_y, (n, 1)), target)
        # The baseline's standard error per point; none for one seed (or per-seed curves).
        spread = base["accuracy_std"] if "accuracy_std" in base else pd.Series(np.nan, base.index)
        noise = np.nan_to_num(spread.to_numpy(float) / np.sqrt(base.get("seeds", 1)), nan=0.0)
        noise = np.append(noise, noise[-1])  # as reach's repeated last point
        rise = np.diff(np.append(base_y, base_y[-1]))[segment]
        warm = base.loc[base["step"] == -1, x]
        warmup = float(warm.iloc[0]) if len(warm) else 0.0
        with np.errstate(divide="ignore", invalid="ignore"):
            frame = pd.DataFrame(
                {
                    **dict(zip(keys, key, strict=True)),
                    "strategy": others["strategy"].to_numpy(),
                    "step": others["step"].to_numpy(),
                    "x": used,
                    "accuracy": target,
                    "seeds": others["seeds"].to_numpy() if "seeds" in others else 1,
                    "baseline_x": needed,
                    "ratio": np.where(used > 0, needed / used, np.nan),
                    "reached": np.isfinite(needed),
                    "bound": np.where(used > 0, base_x.max() / used, np.nan),
                    "undetermined": crossed
                    & (rise < np.maximum(noise[segment], noise[segment + 1])),
                    "warmup": warmup,
                    "marginal": np.where(
                        used > warmup, (needed - warmup) / (used - warmup), np.nan
                    ),
                }
            )
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def efficiency_intervals(
    curves: pd.DataFrame,
    table: pd.DataFrame,
    baseline: str,
    x: str,
    n_resamples: int = RESAMPLES,
    rng_seed: int = 0,
) -> pd.DataFrame:
    """95% seed-bootstrap intervals (scipy, percentile method) on ``ratio`` and ``marginal``
    for each row of an :func:`efficiency` table.

    Paired: a resample draws seeds with replacement, each bringing its strategy trial and its
    baseline trial (the same seed); the statistic is the efficiency on the resampled
    seed-mean curves. Seeds without both are left out (``interval_seeds``: those in); fewer
    than two give NaN. Every row restarts ``np.random.default_rng(rng_seed)``.
    """
    rows = []
    trials = curves.dropna(subset=["accuracy", x])
    for key, panel in trials.groupby(PANEL, sort=False):
        base = panel[panel["strategy"] == baseline]
        base_y = base.pivot(index="seed", columns="step", values="accuracy")
        base_x = base.pivot(index="seed", columns="step", values=x)
        warm = list(base_y.columns).index(-1) if -1 in base_y.columns else None
        for row in table[(table["task"] == key[0]) & (table["student"] == key[1])].itertuples():
            at = panel[(panel["strategy"] == row.strategy) & (panel["step"] == row.step)]
            at = at.set_index("seed").reindex([s for s in at["seed"] if s in base_y.index])
            curve = (base_x.loc[at.index].to_numpy(), base_y.loc[at.index].to_numpy())
            point = (at[x].to_numpy(float), at["accuracy"].to_numpy(float))
            low, high = bootstrap(
                _efficiency_statistic(curve, point, warm), len(at), 2, n_resamples, rng_seed
            )
            # The statistic is in arctan space (bounded: "never" is pi/2): back to ratios.
            low, high = _untan(low), _untan(high)
            rows.append(
                {
                    **dict(zip(PANEL, key, strict=True)),
                    "strategy": row.strategy,
                    "step": row.step,
                    "ratio_low": low[0],
                    "ratio_high": high[0],
                    "marginal_low": low[1],
                    "marginal_high": high[1],
                    "interval_seeds": len(at),
                }
            )
    return pd.DataFrame(
        rows,
        columns=[
            *PANEL,
            "strategy",
            "step",
            "ratio_low",
            "ratio_high",
            "marginal_low",
            "marginal_high",
            "interval_seeds",
        ],
    )


def _efficiency_statistic(
    curve: tuple[np.ndarray, np.ndarray], point: tuple[np.ndarray, np.ndarray], warm: int | None
) -> Callable[..., np.ndarray]:
    """The bootstrap statistic on seed indices: arctan of (ratio, marginal) on the mean curves
    of the resampled seeds. arctan keeps "never" (inf) finite, so the percentiles interpolate
    (np.percentile gives NaN between inf and inf), and is monotone, so they mean the same."""
    (base_x, base_y), (used, target) = curve, point

    def statistic(index: np.ndarray, axis: int = -1) -> np.ndarray:
        index = index.astype(int)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a step no resampled seed reached
            mean_x = np.nanmean(base_x[index], axis=-2)
            mean_y = np.nanmean(base_y[index], axis=-2)
        steps, shape = mean_x.shape[-1], index.shape[:-1]
        needed, _, _ = reach(
            mean_x.reshape(-1, steps), mean_y.reshape(-1, steps), target[index].mean(-1).ravel()
        )
        spent = used[index].mean(-1).ravel()
        w = mean_x.reshape(-1, steps)[:, warm] if warm is not None else 0.0
        with np.errstate(divide="ignore", invalid="ignore"):
            values = np.stack([needed / spent, (needed - w) / (spent - w)])
        return np.arctan(values).reshape(2, *shape)

    return statistic


def _untan(values: np.ndarray) -> np.ndarray:
    return np.where(values >= np.pi / 2, np.inf, np.tan(values))


def bootstrap(
    statistic: Callable[..., np.ndarray], seeds: int, outputs: int, n_resamples: int, rng_seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """scipy's bootstrap (percentile: with a handful of seeds BCa's jackknife is degenerate)
    of ``statistic`` (``outputs`` values) over the indices of ``seeds`` seeds: the 95%
    interval's ends, NaN for fewer than two seeds."""
    if seeds < 2:
        return np.full(outputs, np.nan), np.full(outputs, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # degenerate resamples (every seed alike) are fine
        result = stats.bootstrap(
            (np.arange(seeds, dtype=float),),
            statistic,
            n_resamples=n_resamples,
            vectorized=True,
            confidence_level=LEVEL,
            method="percentile",
            rng=np.random.default_rng(rng_seed),
        )
    return np.asarray(result.confidence_interval.low), np.asarray(result.confidence_interval.high)


def difficulty_accuracy(curves: pd.DataFrame) -> pd.DataFrame:
    """Test accuracy per difficulty (metrics ``accuracy_difficulty_<k>``) at each strategy's
    last step with such values: per (task, student, strategy, difficulty), the mean over the
    seeds there (``seeds``). Empty when no run logs them."""
    columns = [c for c in curves.columns if c.startswith(DIFFICULTY)]
    if not columns:
        return pd.DataFrame()
    long = curves.melt(
        id_vars=[*TRIAL, "step"], value_vars=columns, var_name="difficulty", value_name="value"
    ).dropna(subset=["value"])
    long["difficulty"] = long["difficulty"].str.removeprefix(DIFFICULTY)
    last = long.groupby([*PANEL, "strategy"], sort=False)["step"].transform("max")
    return (
        long[long["step"] == last]
        .groupby([*PANEL, "strategy", "step", "difficulty"], sort=False)["value"]
        .agg(accuracy="mean", seeds="size")
        .reset_index()
    )
