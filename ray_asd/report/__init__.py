"""`ray-asd report`: the paper's analyses of an experiment, from MLflow (DESIGN section 5).

    data      the trials' curves and items, read from any tracking URI      data.py
    analyses  curves, efficiency, win rates, the A/A pair, per difficulty   analyses.py
    items     score fidelity, ordering                                     items.py
    figures   PNG (matplotlib)                                            figures.py
    sections  each section's text, tables (CSV) and figures               sections.py
    pages     report.md and a self-contained report.html                  render.py

Everything lands in ``--out`` and is logged as artifacts of a "report" run in the MLflow
experiment ``<experiment> (report)``, next to the trials' experiment, which then holds trials
only: MLflow 3.17's UI draws every run of an experiment in its comparison charts (a "report" run
among the trials is a series of each), and folds child runs under their parent, charts
included (the trials as children of a parent run holding the report: the charts are empty
until the user unfolds the parent, and the parent is then a series too; seen in the UI).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ray_asd.report import analyses, items, sections
from ray_asd.report.analyses import BASELINES, PANEL
from ray_asd.report.data import REPORT_TAG, ExperimentData, load
from ray_asd.report.render import Section, html_page, markdown
from ray_asd.tracking import KIND_TAG, client_of

__all__ = ["Report", "build_report"]

# Experiment tags: the report's experiment names the trials' one, and the trials' the report's.
REPORT_OF_TAG = "ray_asd.report_of"
REPORT_EXPERIMENT_TAG = "ray_asd.report_experiment"
# The names of the files a report writes (and removes from --out before writing again).
GENERATED = (
    "curves",
    "efficiency_",
    "win_rates",
    "fidelity",
    "ordering",
    "difficulty",
    "report.",
)


@dataclass(frozen=True)
class Report:
    """What `ray-asd report` made."""

    data: ExperimentData
    folder: Path
    files: list[Path]
    run_id: str  # the MLflow run holding them
    experiment_id: str  # the report's experiment, which holds that run


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
        f"({len(items.scored_items(data.items))} with scores)"
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
    floor = sections.noise_floor(data, versus)
    parts = [
        sections.curves_section(data, mean, versus["n_synthetic"]["random"], out),
        *(sections.efficiency_section(data, out, versus[x], x, floor) for x in versus),
        sections.win_rate_section(data, out, floor),
        sections.fidelity_section(data, out),
        sections.ordering_section(data, out),
        sections.difficulty_section(data, out),
        sections.trials_section(data),
    ]
    parts = [part for part in parts if part is not None]
    header = [
        f"Experiment {experiment} at {uri}: {len(data.runs)} trials "
        f"({_counts(data.runs['status'])}); "
        + "; ".join(
            f"{axis}: {', '.join(map(str, pd.unique(data.runs[axis])))}"
            for axis in [*PANEL, "strategy", "seed"]
        ),
        f"Made by ray-asd report on {time.strftime('%Y-%m-%d %H:%M:%S %Z')}.",
    ]
    header[:0] = sections.noise_floor_lines(floor)  # first: what noise alone gives
    if data.notes:
        parts.insert(0, Section("What is missing", [], {}, [], bullets=data.notes))
    title = f"ray-asd report: {experiment}"
    (out / "report.md").write_text(markdown(title, header, parts), encoding="utf-8")
    (out / "report.html").write_text(html_page(title, header, parts), encoding="utf-8")
    files = sorted(p for p in out.iterdir() if p.is_file() and p.name.startswith(GENERATED))
    experiment_id, run_id = _log_to_mlflow(data, files)
    log(f"[report] wrote {len(files)} files to {out} in {time.perf_counter() - clock:.1f} s")
    where = report_name(experiment)
    log(f"[report] logged to MLflow run {run_id} ('report') of experiment {where!r}")
    for note in data.notes:
        log(f"[report] missing: {note}")
    return Report(data, out, files, run_id, experiment_id)


def report_name(experiment: str) -> str:
    """The MLflow experiment that holds the reports of ``experiment``."""
    return f"{experiment} (report)"


def _counts(values: pd.Series) -> str:
    return ", ".join(
        f"{n} {status.lower().replace('_', ' ')}" for status, n in values.value_counts().items()
    )


def _log_to_mlflow(data: ExperimentData, files: list[Path]) -> tuple[str, str]:
    """Logs ``files`` to a new "report" run of the report's experiment (made on first use,
    its artifacts where the trials' go; tagged REPORT_OF_TAG, and the trials' experiment
    REPORT_EXPERIMENT_TAG: each names the other). An earlier report's run is deleted (MLflow
    cannot delete single artifacts), so the newest is the one there; so is a report run among
    the trials, where reports went before.

    Returns:
        The report experiment's id and the run's.
    """
    client = client_of(data.uri)
    name = report_name(data.name)
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        trials = client.get_experiment(data.experiment_id)
        served = data.uri.startswith(("http://", "https://", "databricks"))
        experiment_id = client.create_experiment(
            name, artifact_location=None if served else trials.artifact_location
        )
    else:
        experiment_id = experiment.experiment_id
        if experiment.lifecycle_stage == "deleted":
            client.restore_experiment(experiment_id)
    client.set_experiment_tag(experiment_id, REPORT_OF_TAG, data.experiment_id)
    client.set_experiment_tag(experiment_id, *KIND_TAG)
    client.set_experiment_tag(data.experiment_id, REPORT_EXPERIMENT_TAG, experiment_id)
    earlier = client.search_runs(
        [experiment_id, data.experiment_id], filter_string=f"tags.`{REPORT_TAG}` = 'true'"
    )
    for run in earlier:
        client.delete_run(run.info.run_id)
    tags = {REPORT_TAG: "true", REPORT_OF_TAG: data.experiment_id}
    run_id = client.create_run(experiment_id, run_name="report", tags=tags).info.run_id
    for path in files:
        client.log_artifact(run_id, str(path))
    client.set_terminated(run_id, "FINISHED")
    return experiment_id, run_id
