"""The report's figures (matplotlib, headless): each function takes analysis tables and
returns a Figure; `ray_asd.report` saves them as PNG."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")  # no display: CLI, CI, cluster nodes

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ray_asd.report.analyses import PANEL

AXIS_LABELS = {
    "n_synthetic": "synthetic items trained on",
    "teacher_tokens": "teacher tokens spent",
}
# Baselines dashed, in grey tones, so the active strategies stand out.
BASELINE_STYLE = {"random": ("#555555", "--"), "static": ("#999999", ":")}


def colours(order: list[str]) -> dict[str, tuple[str, str]]:
    """A (colour, line style) per strategy, stable across figures."""
    palette = plt.get_cmap("tab10").colors
    styles, k = {}, 0
    for name in order:
        if name in BASELINE_STYLE:
            styles[name] = BASELINE_STYLE[name]
        else:
            styles[name] = (matplotlib.colors.to_hex(palette[k % len(palette)]), "-")
            k += 1
    return styles


def _grid(n: int, columns: int, width: float = 5.0, height: float = 3.8) -> tuple[Figure, list]:
    columns = max(1, min(columns, n))
    rows = math.ceil(n / columns)
    figure, axes = plt.subplots(
        rows, columns, figsize=(max(7.0, width * columns), height * rows), squeeze=False
    )
    flat = list(axes.flat)
    for unused in flat[n:]:
        unused.set_visible(False)
    return figure, flat[:n]


def learning_curves(
    mean: pd.DataFrame,
    x: str,
    order: list[str],
    markers: dict[tuple[str, str], dict[str, float | str | bool]] | None = None,
    stopped: dict[tuple[str, str, str], int] | None = None,
) -> Figure:
    """Test accuracy vs ``x`` per strategy: seed means with a +-1 std band, one panel per
    (task, student). ``markers`` (items curves): per panel the "random would need" line.
    ``stopped``: per (task, student, strategy) its trials stopped early, named in the legend."""
    panels = list(mean.groupby(PANEL, sort=False))
    figure, axes = _grid(len(panels), 2, width=8.0, height=4.8)
    styles = colours(order)
    for ax, ((task, student), panel) in zip(axes, panels, strict=True):
        for name in [s for s in order if s in set(panel["strategy"])]:
            line = panel[panel["strategy"] == name].sort_values("step")
            colour, style = styles[name]
            seeds = int(line["seeds"].max())
            cut = (stopped or {}).get((task, student, name), 0)
            ax.plot(
                line[x],
                line["accuracy"],
                style,
                marker="o",
                ms=4,
                color=colour,
                label=f"{name} ({seeds} seed{'s' if seeds != 1 else ''}"
                + (f", {cut} stopped early)" if cut else ")"),
            )
            partial = line[line["seeds"] < seeds]  # steps not every seed has reached yet
            ax.plot(partial[x], partial["accuracy"], "o", ms=7, mfc="white", color=colour)
            spread = line["accuracy_std"].fillna(0.0)
            if (spread > 0).any():
                ax.fill_between(
                    line[x],
                    line["accuracy"] - spread,
                    line["accuracy"] + spread,
                    color=colour,
                    alpha=0.15,
                    linewidth=0,
                )
        marker = (markers or {}).get((task, student))
        if marker:
            _need_marker(ax, marker)
        ax.set_title(f"{task} · {student}")
        ax.set_xlabel(AXIS_LABELS[x])
        ax.set_ylabel("test accuracy")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="strategy")
    figure.suptitle(f"Test accuracy vs {AXIS_LABELS[x]}\n(mean over seeds, band: ±1 std)")
    figure.tight_layout()
    return figure


def _need_marker(ax: plt.Axes, marker: dict[str, float | str | bool]) -> None:
    """The paper's Figure 4 line: from the strategy's point, level, to where random gets."""
    x, y, needed = float(marker["x"]), float(marker["accuracy"]), float(marker["baseline_x"])
    reached = bool(marker["reached"])
    end = needed if reached else ax.get_xlim()[1]
    ax.hlines(y, min(x, end), max(x, end), colors="black", linestyles="dashed", linewidth=1)
    ax.plot([end], [y], marker="|" if reached else ">", color="black", ms=10)
    # The words go in the lower right corner, clear of the lines.
    ax.text(
        0.98,
        0.03,
        f"— — {marker['text']}",
        transform=ax.transAxes,
        ha="right",
        va="bottom",
        fontsize=8,
        bbox={"facecolor": "white", "alpha": 0.8, "linewidth": 0},
    )


def win_rate_heatmap(matrix: pd.DataFrame, overall: pd.DataFrame) -> Figure:
    """P[row beats column] with an "overall" row: each column strategy's win rate against
    all the others, and its rank."""
    names = list(matrix.index)
    values = np.vstack([matrix.to_numpy(float), overall["win_rate"].to_numpy(float)[None, :]])
    size = max(4.5, 0.9 * len(names) + 2.5)
    figure, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(values, cmap="RdBu", vmin=0, vmax=1)
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            if np.isnan(values[i, j]):
                text = "–"
            elif i == len(names):
                text = f"{values[i, j]:.2f}\n{_span(overall.iloc[j])}\n#{overall['rank'].iloc[j]}"
            else:
                text = f"{values[i, j]:.2f}"
            dark = not np.isnan(values[i, j]) and abs(values[i, j] - 0.5) > 0.3
            ax.text(
                j, i, text, ha="center", va="center", fontsize=9, color="white" if dark else "black"
            )
    ax.axhline(len(names) - 0.5, color="black", linewidth=2)
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_yticks(range(len(names) + 1), [*names, "overall\n(column, 95%, rank)"])
    ax.set_xlabel("column strategy")
    ax.set_ylabel("row strategy")
    ax.set_title(
        "Win rate: share of (task, student, budget, seed) cells\n"
        "where the row beats the column (ties ½)"
    )
    figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="win rate")
    figure.tight_layout()
    return figure


def _span(row: pd.Series) -> str:
    """The overall win rate's bootstrap interval, ``[0.40, 0.60]``."""
    low, high = row.get("win_rate_low", np.nan), row.get("win_rate_high", np.nan)
    return "" if pd.isna(low) or pd.isna(high) else f"[{low:.2f}, {high:.2f}]"


def fidelity_scatter(items: pd.DataFrame, summary: pd.DataFrame, medians: pd.DataFrame) -> Figure:
    """Per (task, student, strategy): each item's score vs its seed's (top) coloured by
    iteration, titled with the per-(iteration, seed) rho, and the dataset medians per (seed,
    iteration) (bottom) with their rho and within-iteration null p."""
    groups = list(items.groupby([*PANEL, "strategy"], sort=False))
    columns = min(4, len(groups))
    rows = math.ceil(len(groups) / columns)  # each group: a per-item and a medians panel
    figure, axes = plt.subplots(
        2 * rows, columns, figsize=(max(7.0, 4.6 * columns), 8.4 * rows), squeeze=False
    )
    for k in range(len(groups), rows * columns):  # the unused places of the last row
        axes[2 * (k // columns)][k % columns].set_visible(False)
        axes[2 * (k // columns) + 1][k % columns].set_visible(False)
    stats = summary.set_index([*PANEL, "strategy"])
    for k, (key, group) in enumerate(groups):
        top, bottom = (
            axes[2 * (k // columns)][k % columns],
            axes[2 * (k // columns) + 1][k % columns],
        )
        stat = stats.loc[key]
        scatter = top.scatter(
            group["seed_score"].astype(float),
            group["score"].astype(float),
            c=group["iteration"].astype(float),
            cmap="viridis",
            s=12,
            alpha=0.7,
        )
        if group["iteration"].nunique() > 1:
            figure.colorbar(scatter, ax=top, label="iteration", fraction=0.05, pad=0.02)
        top.set_title(
            f"{key[2]} · {key[0]} · {key[1]}\nρ per (iteration, seed): median "
            f"{_number(stat['rho_median'])} [{_number(stat['rho_min'])}, "
            f"{_number(stat['rho_max'])}], {int(stat['groups'])} groups\n"
            f"pooled (mixes students): {_number(stat['pooled_rho'])}, n={int(stat['items'])}",
            fontsize=8,
        )
        top.set_xlabel("seed's score")
        top.set_ylabel("synthetic item's score")
        level = medians[
            (medians["task"] == key[0])
            & (medians["student"] == key[1])
            & (medians["strategy"] == key[2])
        ]
        bottom.scatter(level["seed_median"], level["item_median"], s=30, color="tab:orange")
        _fit_line(
            bottom, level["seed_median"].to_numpy(float), level["item_median"].to_numpy(float)
        )
        if stat["points"] < 5:
            words = f"too few points ({int(stat['points'])})"
        else:
            words = (
                f"ρ={_number(stat['dataset_rho'])}, null p={stat['null_p']:.2g} "
                f"(links shuffled within iterations), {int(stat['points'])} points"
            )
        bottom.set_title(f"dataset medians per (seed, iteration):\n{words}", fontsize=8)
        bottom.set_xlabel("median score of the picked seeds")
        bottom.set_ylabel("median score of their items")
        for ax in (top, bottom):
            ax.grid(alpha=0.3)
    figure.suptitle("Score fidelity:\nsynthetic items vs the seeds they were written from")
    figure.tight_layout(rect=(0, 0, 1, 0.97))  # room for the two-line title
    return figure


def _number(value: float) -> str:
    return "n/a" if pd.isna(value) else f"{value:.2f}"


def _fit_line(ax: plt.Axes, x: np.ndarray, y: np.ndarray) -> None:
    if len(x) < 2 or np.ptp(x) == 0:
        return
    slope, intercept = np.polyfit(x, y, 1)
    ends = np.array([x.min(), x.max()])
    ax.plot(ends, slope * ends + intercept, color="black", linewidth=1, label="least squares")
    ax.legend(fontsize=7, loc="best")


JUDGE_ROWS = {"first": "first-iteration student", "final": "final-iteration student"}


def ordering_curves(curve: pd.DataFrame) -> Figure:
    """Two rows of panels (the first-iteration student's, the final one's), one column per
    (task, student, strategy): the student's cumulative accuracy on the synthetic items taken
    highest seed score first, all iterations pooled (thick) and per iteration (thin), vs
    random order (the pooled items' mean and central 90%)."""
    groups = list(pd.unique(curve[[*PANEL, "strategy"]].apply(tuple, axis=1)))
    columns = len(groups)
    figure, axes = plt.subplots(2, columns, figsize=(max(7.0, 4.2 * columns), 7.6), squeeze=False)
    for row, judge in enumerate(JUDGE_ROWS):
        for column, key in enumerate(groups):
            ax = axes[row][column]
            mine = curve[
                (curve["judge"] == judge)
                & (curve["task"] == key[0])
                & (curve["student"] == key[1])
                & (curve["strategy"] == key[2])
            ]
            _ordering_panel(ax, mine, legend=column == 0)  # the same lines in every panel
            ax.set_title(f"{key[2]} · {key[0]} · {key[1]}\n{JUDGE_ROWS[judge]}", fontsize=9)
            ax.set_xlabel("share of items taken (highest seed score first)")
            if column == 0:
                ax.set_ylabel(f"{JUDGE_ROWS[judge]}:\ncumulative accuracy")
    figure.suptitle(
        "Ordering: the student's cumulative accuracy on the synthetic items,\n"
        "by their seeds' scores vs shuffled"
    )
    figure.tight_layout()
    return figure


def _ordering_panel(ax: plt.Axes, curve: pd.DataFrame, legend: bool) -> None:
    if curve.empty:
        ax.text(0.5, 0.5, "no scores from this student", ha="center", va="center")
        ax.set_ylim(-0.02, 1.02)
        return
    per_iteration = [(t, g) for t, g in curve.groupby("iteration", sort=False) if t != "pooled"]
    shades = plt.get_cmap("viridis")(np.linspace(0.15, 0.85, max(1, len(per_iteration))))
    for shade, (t, group) in zip(shades, per_iteration, strict=True):
        ax.plot(group["fraction"], group["ordered"], color=shade, lw=0.9, alpha=0.8, label=f"t={t}")
    pooled = curve[curve["iteration"] == "pooled"]
    ax.plot(
        pooled["fraction"],
        pooled["ordered"],
        color="tab:blue",
        lw=2.2,
        label=f"all iterations ({len(pooled)} items)",
    )
    ax.plot(pooled["fraction"], pooled["shuffled"], "--", color="#555555", label="random order")
    ax.fill_between(
        pooled["fraction"],
        pooled["shuffled_low"],
        pooled["shuffled_high"],
        color="#999999",
        alpha=0.25,
        linewidth=0,
        label="random order, 90%",
    )
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    if legend:
        ax.legend(fontsize=7, loc="best")
