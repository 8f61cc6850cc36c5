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
) -> Figure:
    """Test accuracy vs ``x`` per strategy: seed means with a +-1 std band, one panel per
    (task, student). ``markers`` (items curves): per panel the "random would need" line."""
    panels = list(mean.groupby(PANEL, sort=False))
    figure, axes = _grid(len(panels), 2, width=8.0, height=4.8)
    styles = colours(order)
    for ax, ((task, student), panel) in zip(axes, panels, strict=True):
        for name in [s for s in order if s in set(panel["strategy"])]:
            line = panel[panel["strategy"] == name].sort_values("step")
            colour, style = styles[name]
            seeds = int(line["seeds"].max())
            ax.plot(
                line[x],
                line["accuracy"],
                style,
                marker="o",
                ms=4,
                color=colour,
                label=f"{name} ({seeds} seed{'s' if seeds != 1 else ''})",
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
                text = f"{values[i, j]:.2f}\n#{overall['rank'].iloc[j]}"
            else:
                text = f"{values[i, j]:.2f}"
            dark = not np.isnan(values[i, j]) and abs(values[i, j] - 0.5) > 0.3
            ax.text(
                j, i, text, ha="center", va="center", fontsize=9, color="white" if dark else "black"
            )
    ax.axhline(len(names) - 0.5, color="black", linewidth=2)
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_yticks(range(len(names) + 1), [*names, "overall\n(column, rank)"])
    ax.set_xlabel("column strategy")
    ax.set_ylabel("row strategy")
    ax.set_title(
        "Win rate: share of (task, student, budget, seed) cells\n"
        "where the row beats the column (ties ½)"
    )
    figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="win rate")
    figure.tight_layout()
    return figure


def fidelity_scatter(items: pd.DataFrame, per_item: pd.DataFrame, medians: pd.DataFrame) -> Figure:
    """Per (task, student, strategy): each item's score vs its seed's (top) with a least
    squares line, and the dataset medians per (seed, iteration) (bottom)."""
    groups = list(items.groupby([*PANEL, "strategy"], sort=False))
    columns = min(4, len(groups))
    rows = math.ceil(len(groups) / columns)  # each group: a per-item and a medians panel
    figure, axes = plt.subplots(
        2 * rows, columns, figsize=(max(7.0, 4.6 * columns), 8.2 * rows), squeeze=False
    )
    for k in range(len(groups), rows * columns):  # the unused places of the last row
        axes[2 * (k // columns)][k % columns].set_visible(False)
        axes[2 * (k // columns) + 1][k % columns].set_visible(False)
    summary = medians.attrs.get("rho", {})
    for k, (key, group) in enumerate(groups):
        task, student, strategy = key
        top, bottom = (
            axes[2 * (k // columns)][k % columns],
            axes[2 * (k // columns) + 1][k % columns],
        )
        x, y = group["seed_score"].to_numpy(float), group["score"].to_numpy(float)
        top.scatter(x, y, s=12, alpha=0.6)
        _fit_line(top, x, y)
        stat = per_item[
            (per_item["task"] == task)
            & (per_item["student"] == student)
            & (per_item["strategy"] == strategy)
        ].iloc[0]
        top.set_title(f"{strategy} · {task} · {student}\nper item: {_rho_text(stat)}", fontsize=9)
        top.set_xlabel("seed's score")
        top.set_ylabel("synthetic item's score")
        level = medians[
            (medians["task"] == task)
            & (medians["student"] == student)
            & (medians["strategy"] == strategy)
        ]
        bottom.scatter(level["seed_median"], level["item_median"], s=30, color="tab:orange")
        _fit_line(
            bottom, level["seed_median"].to_numpy(float), level["item_median"].to_numpy(float)
        )
        bottom.set_title(f"dataset medians: {_rho_text(summary.get(key, {}))}", fontsize=9)
        bottom.set_xlabel("median score of the picked seeds")
        bottom.set_ylabel("median score of their items")
        for ax in (top, bottom):
            ax.grid(alpha=0.3)
    figure.suptitle("Score fidelity:\nsynthetic items vs the seeds they were written from")
    figure.tight_layout()
    return figure


def _rho_text(stat: pd.Series | dict) -> str:
    rho, p, n = stat.get("rho", np.nan), stat.get("p", np.nan), int(stat.get("n", 0))
    if np.isnan(rho):
        return f"ρ n/a (n={n})"
    return f"ρ={rho:.2f}, p={p:.2g}, n={n}"


def _fit_line(ax: plt.Axes, x: np.ndarray, y: np.ndarray) -> None:
    if len(x) < 2 or np.ptp(x) == 0:
        return
    slope, intercept = np.polyfit(x, y, 1)
    ends = np.array([x.min(), x.max()])
    ax.plot(ends, slope * ends + intercept, color="black", linewidth=1, label="least squares")
    ax.legend(fontsize=7, loc="best")


def ordering_curves(curve: pd.DataFrame) -> Figure:
    """Per (task, student, strategy): cumulative accuracy of the student on its synthetic
    items in score order vs random order (mean and central 90%)."""
    groups = list(curve.groupby([*PANEL, "strategy"], sort=False))
    figure, axes = _grid(len(groups), 4, width=4.4, height=3.6)
    for ax, ((task, student, strategy), group) in zip(axes, groups, strict=True):
        ax.plot(
            group["fraction"], group["ordered"], color="tab:blue", label="by score (highest first)"
        )
        ax.plot(group["fraction"], group["shuffled"], "--", color="#555555", label="random order")
        ax.fill_between(
            group["fraction"],
            group["shuffled_low"],
            group["shuffled_high"],
            color="#999999",
            alpha=0.25,
            linewidth=0,
            label="random order, 90%",
        )
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(f"{strategy} · {task} · {student} ({len(group)} items)", fontsize=9)
        ax.set_xlabel("share of items taken")
        ax.set_ylabel("student accuracy on them")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    figure.suptitle(
        "Ordering: the student's cumulative accuracy on\nits synthetic items, by score vs shuffled"
    )
    figure.tight_layout()
    return figure
