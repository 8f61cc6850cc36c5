"""The report's sections: each turns analysis tables into text, tables (also written as CSV)
and figures (PNG) in the output folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from ray_asd.report import analyses, figures, items, wins
from ray_asd.report.analyses import PANEL
from ray_asd.report.data import STOPPED, ExperimentData
from ray_asd.report.render import Section, efficiency_text, interval_text, spread_text, times

AA = "noise floor (A/A: neither reads the student)"
UNITS = {"n_synthetic": "items", "teacher_tokens": "teacher tokens"}


@dataclass(frozen=True)
class NoiseFloor:
    """Two strategies that read nothing from the student, against each other."""

    strategy: str
    baseline: str
    efficiency: dict[str, pd.DataFrame]  # x -> the strategy's rows against the baseline
    win: dict[str, float]  # P[strategy][baseline], its interval, cells and ties

    @property
    def title(self) -> str:
        return f"{AA}: {self.strategy} vs {self.baseline}"


def noise_floor(
    data: ExperimentData, versus: dict[str, dict[str, pd.DataFrame]]
) -> NoiseFloor | None:
    """The A/A pair's efficiency (reusing ``versus`` where it holds the baseline) and win
    rate; None without two blind strategies."""
    pair = wins.aa_pair(data.runs, data.order)
    if pair is None:
        return None
    strategy, baseline = pair
    tables = {}
    for x, by_baseline in versus.items():
        table = by_baseline.get(baseline)
        if table is None:
            table = analyses.efficiency(data.curves, baseline, x)
        tables[x] = table[table["strategy"] == strategy] if not table.empty else table
    win = wins.pair_win_rate(data.curves, strategy, baseline)
    return NoiseFloor(strategy, baseline, tables, win)


def noise_floor_lines(floor: NoiseFloor | None) -> list[str]:
    """The report's opening lines: the A/A efficiency at each panel's largest common budget
    and the A/A win rate."""
    if floor is None:
        return [f"No {AA}: the experiment has fewer than two strategies that read nothing."]
    lines = []
    table = floor.efficiency["n_synthetic"]
    for (task, student), panel in table.groupby(PANEL, sort=False) if not table.empty else []:
        last = panel.sort_values("step").iloc[-1]
        lines.append(
            f"{floor.title}, {task} · {student} at t = {int(last['step'])}: efficiency in items "
            f"{efficiency_text(last)}, marginal {efficiency_text(last, 'marginal')}."
        )
    win = floor.win
    lines.append(
        f"{floor.title}: win rate {interval_text(win['win_rate'], win['low'], win['high'], '')} "
        f"over {win['cells']} cells ({win['ties']} tied). Differences between strategies "
        "within this are noise."
    )
    return lines


def stopped_trials(data: ExperimentData) -> pd.DataFrame:
    """The trials tune.scheduler stopped early: their rows of ``data.runs``."""
    return data.runs[data.runs["status"] == STOPPED]


def stopped_text(data: ExperimentData, where: str) -> list[str]:
    """One line naming the trials stopped early and what that means for ``where``; none when
    no trial was."""
    stopped = stopped_trials(data)
    if stopped.empty:
        return []
    names = ", ".join(
        f"{row.cell} (after t = {'?' if pd.isna(row.stopped_at) else int(row.stopped_at)})"
        for row in stopped.itertuples()
    )
    return [f"Stopped early by tune.scheduler: {names}. {where}"]


def save(figure: plt.Figure, path: Path) -> Path:
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def curves_section(
    data: ExperimentData, mean: pd.DataFrame, versus: pd.DataFrame, out: Path
) -> Section:
    """The curves, with the Figure 4 marker from ``versus`` (efficiency in items vs random)."""
    if mean.empty:
        return Section("Learning curves", ["No accuracy logged yet."], {}, [])
    markers = {}
    for key, panel in versus.groupby(PANEL, sort=False) if not versus.empty else []:
        # The largest budget every strategy of the panel has reached (partial trials).
        common = panel.groupby("strategy")["step"].max().min()
        at = panel[panel["step"] == common]
        best = at.sort_values("accuracy", ascending=False, kind="stable").iloc[0]
        markers[key] = {**best.to_dict(), "text": _need_text(best)}
    stopped = stopped_trials(data).groupby([*PANEL, "strategy"]).size().to_dict()
    files = [
        save(
            figures.learning_curves(mean, "n_synthetic", data.order, markers, stopped),
            out / "curves_items.png",
        ),
        save(
            figures.learning_curves(mean, "teacher_tokens", data.order, stopped=stopped),
            out / "curves_tokens.png",
        ),
    ]
    mean.to_csv(out / "curves.csv", index=False)
    text = [
        "Test accuracy after each phase (base model, warm-up, iterations), mean over seeds with "
        "a ±1 std band; x is the mean over seeds at each step. A hollow marker: a step fewer "
        "of the strategy's seeds have reached (running or failed trials).",
        *(
            f"{task} · {student}, the best strategy at the largest budget all have reached "
            f"({m['x']:.0f} items, accuracy {m['accuracy']:.3f}): {m['text']}."
            for (task, student), m in markers.items()
        ),
        *stopped_text(
            data,
            "Their curves end at the stop (the legend counts them); a strategy's later steps "
            "average the seeds that went on.",
        ),
    ]
    return Section("Learning curves", text, {}, files)


def _need_text(row: pd.Series) -> str:
    """The Figure 4 marker's words for one efficiency row."""
    if row["undetermined"]:
        return f"{row['strategy']}: random is flat within its seed noise there (undetermined)"
    if not row["reached"]:
        return (
            f"{row['strategy']}: random never gets there in its {row['bound'] * row['x']:.0f} items"
        )
    more = 100 * (row["ratio"] - 1)
    return (
        f"{row['strategy']}: random would need {abs(more):.0f}% "
        f"{'more' if more >= 0 else 'fewer'} items ({row['baseline_x']:.0f})"
    )


def efficiency_section(
    data: ExperimentData,
    out: Path,
    tables: dict[str, pd.DataFrame],
    x: str,
    floor: NoiseFloor | None,
) -> Section:
    """Efficiency against each baseline in ``x``, the A/A noise floor first."""
    unit, keys = UNITS[x], [*PANEL, "strategy", "step", "x", "accuracy", "seeds"]
    merged = None
    for baseline, table in tables.items():
        if table.empty:
            continue
        table.to_csv(out / f"efficiency_{x}_vs_{baseline}.csv", index=False)
        shown = table[keys].copy()
        shown[f"{baseline} needs"] = [
            "–" if pd.isna(v) else ("never" if v == float("inf") else f"{v:.0f}")
            for v in table["baseline_x"]
        ]
        rows = list(table.itertuples(index=False))
        shown[f"vs {baseline}"] = [efficiency_text(r) for r in rows]
        shown[f"marginal vs {baseline}"] = [efficiency_text(r, "marginal") for r in rows]
        if table["seed_pairs"].max() > 1:  # with one seed it repeats the ratio
            shown[f"per seed vs {baseline}"] = [
                spread_text(r.seed_median, r.seed_min, r.seed_max, r.seed_pairs) for r in rows
            ]
        merged = shown if merged is None else merged.merge(shown, on=keys, how="outer")
    if merged is None:
        return Section(
            f"Efficiency ({unit})", ["No random or static trials to compare with."], {}, []
        )
    rank = {name: k for k, name in enumerate(data.order)}
    merged = merged.sort_values(
        [*PANEL, "strategy", "step"], key=lambda c: c.map(rank) if c.name == "strategy" else c
    )
    merged["x"] = merged["x"].map(lambda v: f"{v:.0f}")
    shown_tables = {f"{unit} the baselines need": merged.rename(columns={"step": "t", "x": unit})}
    if floor is not None and not floor.efficiency[x].empty:
        aa = floor.efficiency[x]
        aa_shown = aa[keys].assign(x=aa["x"].map(lambda v: f"{v:.0f}"))
        aa_shown = aa_shown.rename(columns={"step": "t", "x": unit})
        aa_shown[f"vs {floor.baseline}"] = [efficiency_text(r) for r in aa.itertuples()]
        aa_shown["marginal"] = [efficiency_text(r, "marginal") for r in aa.itertuples()]
        shown_tables = {floor.title: aa_shown, **shown_tables}
    text = [
        f"For each strategy and budget (iteration t): the {unit} the baseline needs to reach "
        f"the strategy's accuracy there, by linear interpolation on the baseline's seed-mean "
        f"curve (base model and warm-up included), over the strategy's {unit}. Above 1x: the "
        "strategy is more data-efficient. '> Nx': the baseline never got there (N = its "
        "largest budget over the strategy's). Marginal: the same with the shared warm-up W "
        "taken out, (needed - W) / (used - W). [low, high]: 95% seed-bootstrap interval "
        "(seeds resampled, each strategy trial paired with the baseline trial of its seed). "
        "'undetermined': the baseline's seed mean rises less than its standard error across "
        "the segment where it reaches the target, so where it crosses is noise. Per seed: "
        "against the baseline's trial of the same seed, median [min, max]. The A/A table "
        "first: two strategies that read nothing from the student, so any difference is "
        "noise.",
    ]
    return Section(f"Efficiency ({unit})", text, shown_tables, [])


def win_rate_section(data: ExperimentData, out: Path, floor: NoiseFloor | None) -> Section:
    matrix, overall = wins.win_rates(data.curves, data.order)
    if matrix.empty:
        return Section("Win rates", ["No iterations logged yet."], {}, [])
    matrix.to_csv(out / "win_rates.csv")
    overall.to_csv(out / "win_rates_overall.csv", index=False)
    ties = wins.tie_counts(data.curves, data.order)
    files = [save(figures.win_rate_heatmap(matrix, overall), out / "win_rates.png")]
    shown = overall[["strategy", "cells", "ties", "rank"]].copy()
    stopped = stopped_trials(data)["strategy"].value_counts()
    if not stopped.empty:
        shown["stopped early"] = shown["strategy"].map(stopped).fillna(0).astype(int)
    shown.insert(
        1,
        "win rate [95%]",
        [
            interval_text(r.win_rate, r.win_rate_low, r.win_rate_high, "")
            for r in overall.itertuples()
        ],
    )
    tables = {
        "win rates": matrix.reset_index(names="row beats column"),
        "overall": shown,
        "ties per pair": ties.reset_index(names="ties"),
    }
    if floor is not None:
        win = floor.win
        aa = pd.DataFrame(
            [
                {
                    "pair": f"{floor.strategy} beats {floor.baseline}",
                    "win rate [95%]": interval_text(win["win_rate"], win["low"], win["high"], ""),
                    "cells": win["cells"],
                    "ties": win["ties"],
                }
            ]
        )
        tables = {floor.title: aa, **tables}
    text = [
        "P[i][j]: the share of (task, student, budget, seed) cells where strategy i's test "
        "accuracy is higher than j's (a tie counts half; cells where either has no value are "
        "left out). Overall: each strategy's win rate against all the others pooled, with a "
        "95% seed-bootstrap interval (seeds resampled, each with all its cells), the ties "
        "among its comparisons and its rank. The A/A row first: the noise floor.",
        *stopped_text(
            data,
            "They count at every budget they reached and at none after (fewer cells; the "
            "overall table counts them per strategy).",
        ),
    ]
    return Section("Win rates", text, tables, files)


def fidelity_section(data: ExperimentData, out: Path) -> Section:
    scored = items.scored_items(data.items)
    unscored = sorted(set(data.runs["strategy"]) - set(scored["strategy"]))
    text = [
        "Spearman's rho between the score of each synthetic item and its seed's when it was "
        "picked (the trial's scorer, or the analysis scorer for strategies without one; the "
        "same student). Headline: rho per (iteration, seed), each one student, as median "
        "[min, max] over those groups. Pooled over all its items (it mixes students, whose "
        "scores drift as they learn) only beside it. Dataset level: the median score of each "
        "iteration's picked seeds vs of their items, one point per (seed, iteration), shown "
        f"from {items.MIN_POINTS} points; its null p shuffles which item median goes with "
        "which seed median within each iteration (scipy's permutation_test): what a trend "
        "common to all seeds gives alone. p per group: scipy's t approximation.",
    ]
    if unscored:
        text.append(
            f"No item scores for {', '.join(unscored)} (older runs, analysis.score_items off, "
            "or no iterations yet)."
        )
    if scored.empty:
        return Section("Score fidelity", text, {}, [])
    summary, groups, medians = items.fidelity(scored)
    groups.to_csv(out / "fidelity_per_group.csv", index=False)
    summary.to_csv(out / "fidelity.csv", index=False)
    shown = summary[[*PANEL, "strategy", "items"]].copy()
    shown["rho per (iteration, seed): median [min, max]"] = [
        f"{interval_text(r.rho_median, r.rho_min, r.rho_max, '')} ({r.groups} groups)"
        for r in summary.itertuples()
    ]
    shown["pooled (mixes students)"] = summary["pooled_rho"]
    shown["dataset rho (medians)"] = [dataset_text(r) for r in summary.itertuples()]
    shown["points"] = summary["points"]
    files = [save(figures.fidelity_scatter(scored, summary, medians), out / "fidelity.png")]
    tables = {"score fidelity": shown, "per (iteration, seed)": groups}
    return Section("Score fidelity", text, tables, files)


def dataset_text(row: object) -> str:
    """``0.90 (null p 0.03)``, or ``too few points`` below ``items.MIN_POINTS``."""
    if row.points < items.MIN_POINTS:
        return "too few points"
    return f"{times(row.dataset_rho, '')} (null p {row.null_p:.2g})"


def ordering_section(data: ExperimentData, out: Path) -> Section:
    curve = items.ordering(data.items)
    text = [
        "The student's accuracy on the synthetic items (its answer checked against the "
        "teacher's), taking them in the order of their SEEDS' scores, highest first (the "
        "order a top-k selector picks in), vs in random order (exact hypergeometric mean and "
        "central 90%), once with the scores and answers of each trial's first-iteration "
        "student and once of its final one. Per iteration (trial seeds pooled) and over all "
        "iterations. Items with equal seed scores count as their expected accuracy in random "
        "order (each place of a tie block gets the block's mean), so a scorer that ties "
        "everything gives the random-order line. Below random order: the scorer finds what "
        "the student gets wrong.",
    ]
    left_out = curve.attrs.get("left_out", {})
    notes = [
        f"{n} items without the {items.JUDGES[judge]}'s seed score or answer (older runs or "
        "unfinished trials) are left out of its curves."
        for judge, n in left_out.items()
        if n
    ]
    if curve.empty:
        return Section("Ordering", [*text, "No items with those scores yet."], {}, [], notes)
    curve.to_csv(out / "ordering.csv", index=False)
    files = [save(figures.ordering_curves(curve), out / "ordering.png")]
    summary = items.ordering_summary(curve)
    summary["judge"] = summary["judge"].map(items.JUDGES)
    summary = summary.rename(
        columns={
            "judge": "scores and answers of",
            "accuracy": "accuracy on all",
            "first_share_accuracy": "accuracy on top 25% by seed score",
        }
    )
    return Section("Ordering", text, {"ordering": summary}, files, notes)


def difficulty_section(data: ExperimentData, out: Path) -> Section | None:
    """Test accuracy per difficulty at each strategy's last step; None when not logged."""
    table = analyses.difficulty_accuracy(data.curves)
    if table.empty:
        return None
    table.to_csv(out / "difficulty.csv", index=False)
    shown = table.pivot_table(
        index=[*PANEL, "strategy", "step", "seeds"], columns="difficulty", values="accuracy"
    ).reset_index()
    keys = list(shown.columns[:5])
    shown.columns = [*keys, *(f"difficulty {c}" for c in shown.columns[5:])]
    text = [
        "Test accuracy on the test items of each difficulty (metrics accuracy_difficulty_<k>) "
        "at each strategy's last step, mean over the seeds that reached it.",
    ]
    return Section("Accuracy per difficulty", text, {"per difficulty": shown}, [])


def trials_section(data: ExperimentData) -> Section:
    """One row per trial: its status, how far it got and where it ended."""
    last = data.curves.sort_values("step").groupby("run_id").tail(1).set_index("run_id")
    table = data.runs[["cell", "status", "iterations", "last_step", "run_id"]].copy()
    table["iterations logged"] = table["last_step"].fillna(-1).astype(int) + 1
    for column in ("n_synthetic", "teacher_tokens"):
        table[f"last {column}"] = table["run_id"].map(last[column]).round().astype("Int64")
    table["last accuracy"] = table["run_id"].map(last["accuracy"])
    table = table.drop(columns=["last_step"])
    return Section(
        "Trials", ["Every trial run read, with its last logged values."], {"trials": table}, []
    )
