"""`ray-asd report`: the paper's analyses of an experiment, from MLflow (DESIGN section 5).

    data      the trials' curves and items, read from any tracking URI      data.py
    analyses  curves, efficiency, win rates, score fidelity, ordering      analyses.py
    figures   PNG (matplotlib)                                            figures.py
    pages     report.md and a self-contained report.html                  render.py

Everything lands in ``--out`` and is logged as artifacts of the experiment's "report" run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from mlflow import MlflowClient

from ray_asd.report import analyses, figures
from ray_asd.report.analyses import BASELINES, PANEL
from ray_asd.report.data import REPORT_TAG, ExperimentData, load
from ray_asd.report.render import Section, html_page, markdown, ratio_text, spread_text

__all__ = ["Report", "build_report"]

# The names of the files a report writes (and removes from --out before writing again).
GENERATED = ("curves", "efficiency_", "win_rates", "fidelity", "ordering", "report.")


@dataclass(frozen=True)
class Report:
    """What `ray-asd report` made."""

    data: ExperimentData
    folder: Path
    files: list[Path]
    run_id: str  # the MLflow run holding them


def build_report(
    uri: str, experiment: str, out: Path, log: Callable[[str], None] = print
) -> Report:
    """Reads ``experiment`` at ``uri``, writes the figures, report.md and report.html to
    ``out`` and logs them to the experiment's "report" run.

    Raises:
        ConfigError: no such experiment, or no trials in it.
    """
    clock = time.perf_counter()
    data = load(uri, experiment)
    log(
        f"[report] {experiment}: {len(data.runs)} trials "
        f"({_counts(data.runs['status'])}), {len(data.items)} synthetic items "
        f"({len(analyses.scored_items(data.items))} with scores)"
    )
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.iterdir():  # an earlier report's files, which this one may not remake
        if stale.is_file() and stale.name.startswith(GENERATED):
            stale.unlink()
    mean = analyses.mean_curves(data.curves)
    # Against each baseline, in items and in teacher tokens: computed once, read twice.
    versus = {
        x: {baseline: analyses.efficiency(data.curves, baseline, x) for baseline in BASELINES}
        for x in ("n_synthetic", "teacher_tokens")
    }
    sections = [
        _curves_section(data, mean, versus["n_synthetic"]["random"], out),
        _efficiency_section(data, out, versus["n_synthetic"], "n_synthetic", "items"),
        _efficiency_section(
            data, out, versus["teacher_tokens"], "teacher_tokens", "teacher tokens"
        ),
        _win_rate_section(data, out),
        _fidelity_section(data, out),
        _ordering_section(data, out),
        _trials_section(data),
    ]
    header = [
        f"Experiment {experiment} at {uri}: {len(data.runs)} trials "
        f"({_counts(data.runs['status'])}); "
        + "; ".join(
            f"{axis}: {', '.join(map(str, pd.unique(data.runs[axis])))}"
            for axis in [*PANEL, "strategy", "seed"]
        ),
        f"Made by ray-asd report on {time.strftime('%Y-%m-%d %H:%M:%S %Z')}.",
    ]
    if data.notes:
        sections.insert(0, Section("What is missing", [], {}, [], bullets=data.notes))
    title = f"ray-asd report: {experiment}"
    (out / "report.md").write_text(markdown(title, header, sections), encoding="utf-8")
    (out / "report.html").write_text(html_page(title, header, sections), encoding="utf-8")
    files = sorted(p for p in out.iterdir() if p.is_file() and p.name.startswith(GENERATED))
    run_id = _log_to_mlflow(data, files)
    log(f"[report] wrote {len(files)} files to {out} in {time.perf_counter() - clock:.1f} s")
    log(f"[report] logged to MLflow run {run_id} ('report') of experiment {experiment}")
    for note in data.notes:
        log(f"[report] missing: {note}")
    return Report(data, out, files, run_id)


def _counts(values: pd.Series) -> str:
    return ", ".join(f"{n} {status.lower()}" for status, n in values.value_counts().items())


def _save(figure: plt.Figure, path: Path) -> Path:
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _curves_section(
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
    files = [
        _save(
            figures.learning_curves(mean, "n_synthetic", data.order, markers),
            out / "curves_items.png",
        ),
        _save(
            figures.learning_curves(mean, "teacher_tokens", data.order), out / "curves_tokens.png"
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
    ]
    return Section("Learning curves", text, {}, files)


def _need_text(row: pd.Series) -> str:
    """The Figure 4 marker's words for one efficiency row."""
    if not row["reached"]:
        return (
            f"{row['strategy']}: random never gets there in its {row['bound'] * row['x']:.0f} items"
        )
    more = 100 * (row["ratio"] - 1)
    return (
        f"{row['strategy']}: random would need {abs(more):.0f}% "
        f"{'more' if more >= 0 else 'fewer'} items ({row['baseline_x']:.0f})"
    )


def _efficiency_section(
    data: ExperimentData, out: Path, tables: dict[str, pd.DataFrame], x: str, unit: str
) -> Section:
    merged = None
    for baseline, table in tables.items():
        if table.empty:
            continue
        table.to_csv(out / f"efficiency_{x}_vs_{baseline}.csv", index=False)
        shown = table[[*PANEL, "strategy", "step", "x", "accuracy", "seeds"]].copy()
        shown[f"{baseline} needs"] = [
            "–" if pd.isna(v) else ("never" if v == float("inf") else f"{v:.0f}")
            for v in table["baseline_x"]
        ]
        shown[f"vs {baseline}"] = [
            ratio_text(r.ratio, r.reached, r.bound) for r in table.itertuples(index=False)
        ]
        if table["seed_pairs"].max() > 1:  # with one seed it repeats the ratio
            shown[f"per seed vs {baseline}"] = [
                spread_text(r.seed_median, r.seed_min, r.seed_max, r.seed_pairs)
                for r in table.itertuples(index=False)
            ]
        keys = [*PANEL, "strategy", "step", "x", "accuracy", "seeds"]
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
    merged = merged.rename(columns={"step": "t", "x": unit})
    text = [
        f"For each strategy and budget (iteration t): the {unit} the baseline needs to reach "
        f"the strategy's accuracy there, by linear interpolation on the baseline's seed-mean "
        f"curve (base model and warm-up included), over the strategy's {unit}. Above 1x: the "
        "strategy is more data-efficient. '> Nx': the baseline never got there (N = its "
        "largest budget over the strategy's). Per seed: the same against the baseline's trial "
        "of the same seed, median [min, max].",
    ]
    return Section(f"Efficiency ({unit})", text, {f"{unit} the baselines need": merged}, [])


def _win_rate_section(data: ExperimentData, out: Path) -> Section:
    matrix, overall = analyses.win_rates(data.curves, data.order)
    if matrix.empty:
        return Section("Win rates", ["No iterations logged yet."], {}, [])
    matrix.to_csv(out / "win_rates.csv")
    overall.to_csv(out / "win_rates_overall.csv", index=False)
    files = [_save(figures.win_rate_heatmap(matrix, overall), out / "win_rates.png")]
    shown = matrix.reset_index(names="row beats column")
    text = [
        "P[i][j]: the share of (task, student, budget, seed) cells where strategy i's test "
        "accuracy is higher than j's (a tie counts half; cells where either has no value are "
        "left out). Overall: each strategy's win rate against all the others pooled, and its "
        "rank.",
    ]
    return Section("Win rates", text, {"win rates": shown, "overall": overall}, files)


def _fidelity_section(data: ExperimentData, out: Path) -> Section:
    scored = analyses.scored_items(data.items)
    unscored = sorted(set(data.runs["strategy"]) - set(scored["strategy"]))
    text = [
        "Spearman's rho between the score of each synthetic item (the trial's scorer, the "
        "student that scored the seeds) and its seed's score when it was picked; dataset "
        "level: medians per (seed, iteration). p: two-sided, scipy's t approximation (rough "
        "below ~10 pairs). The per-item rho pools iterations and seeds, whose students differ "
        "(scores drift as the student learns): the per-iteration table holds each alone.",
    ]
    if unscored:
        text.append(
            f"No item scores for {', '.join(unscored)} (no scorer, analysis.score_items off, "
            "or no iterations yet)."
        )
    if scored.empty:
        return Section("Score fidelity", text, {}, [])
    per_item, per_iteration, medians = analyses.fidelity(scored)
    per_iteration.to_csv(out / "fidelity_per_iteration.csv", index=False)
    summary = per_item.rename(columns={"rho": "rho per item", "p": "p per item", "n": "items"})
    level = medians.attrs["rho"]
    keys = list(zip(per_item["task"], per_item["student"], per_item["strategy"], strict=True))
    summary["rho of medians"] = [level.get(k, {}).get("rho", float("nan")) for k in keys]
    summary["p of medians"] = [level.get(k, {}).get("p", float("nan")) for k in keys]
    summary["points"] = [level.get(k, {}).get("n", 0) for k in keys]
    summary.to_csv(out / "fidelity.csv", index=False)
    files = [_save(figures.fidelity_scatter(scored, per_item, medians), out / "fidelity.png")]
    tables = {"score fidelity": summary, "per iteration": per_iteration}
    return Section("Score fidelity", text, tables, files)


def _ordering_section(data: ExperimentData, out: Path) -> Section:
    curve = analyses.ordering(data.items)
    text = [
        "The student's accuracy on its synthetic items (its answer checked against the "
        "teacher's), taking the items highest score first vs in random order (exact "
        "hypergeometric mean and central 90%). A curve below random order means the scorer "
        "finds the items the student gets wrong. Items of all iterations and seeds are pooled, "
        "each scored and answered by the student of its iteration. For llm2llm the score is "
        "the student's wrongness itself, so its curve is ordered by construction.",
    ]
    if curve.empty:
        return Section("Ordering", [*text, "No scored items yet."], {}, [])
    curve.to_csv(out / "ordering.csv", index=False)
    files = [_save(figures.ordering_curves(curve), out / "ordering.png")]
    summary = analyses.ordering_summary(curve).rename(
        columns={
            "accuracy": "accuracy on all",
            "first_share_accuracy": "accuracy on top 25% by score",
        }
    )
    return Section("Ordering", text, {"ordering": summary}, files)


def _trials_section(data: ExperimentData) -> Section:
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


def _log_to_mlflow(data: ExperimentData, files: list[Path]) -> str:
    """Logs ``files`` to a new "report" run of the experiment; an earlier report's run is
    deleted (MLflow cannot delete single artifacts), so the experiment shows the newest."""
    client = MlflowClient(data.uri)
    earlier = client.search_runs(
        [data.experiment_id], filter_string=f"tags.`{REPORT_TAG}` = 'true'"
    )
    for run in earlier:
        client.delete_run(run.info.run_id)
    run_id = client.create_run(
        data.experiment_id, run_name="report", tags={REPORT_TAG: "true"}
    ).info.run_id
    for path in files:
        client.log_artifact(run_id, str(path))
    client.set_terminated(run_id, "FINISHED")
    return run_id
