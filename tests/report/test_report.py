"""`ray-asd report` on an MLflow store written through the real MLflow API, as `ray-asd run`
writes it (the runner's own TrialRun): sqlite and a real tracking server."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from ray_asd.cli import main
from ray_asd.tracking import TrialRun, prepare_experiment, record_grid
from tests.report import example

EXPERIMENT = "report-example"


def write_trial(
    uri: str, experiment_id: str, strategy: str, seed: int, folder: Path, shift: float = 0.0
) -> str:
    scorer, selector = example.PARTS[strategy]
    tags = {
        "strategy": strategy,
        "student": "tiny",
        "task": "arith",
        "seed": str(seed),
        "ray_asd.scorer": scorer,
        "ray_asd.selector": selector,
    }
    name = f"{strategy}-tiny-arith-seed{seed}"
    params = {"budget": {"iterations": 2, "per_iteration": 4}, "analysis": {"score_items": True}}
    run = TrialRun.start(uri, experiment_id, name, {**tags, "ray_asd.cell": name}, params)
    rows = []
    for step, accuracy in zip(
        example.ITEMS_AT_STEP, example.ACCURACY[(strategy, seed)], strict=True
    ):
        if accuracy is None:
            continue
        n = example.ITEMS_AT_STEP[step]
        phase = {-2: "base", -1: "warmup"}.get(step, "iteration")
        row = {
            "phase": phase,
            "iteration": max(step, -1),
            "n_synthetic": n,
            "accuracy": accuracy + shift,
            **example.difficulty(strategy, seed, step),
        }
        if phase != "base":  # as the loop: the base row carries no teacher counters
            row["teacher_tokens"] = n * example.TOKENS_PER_ITEM
        rows.append(row)
    run.log_rows(rows)
    items = folder / name / "items.jsonl"
    items.parent.mkdir(parents=True)
    items.write_text("".join(json.dumps(r) + "\n" for r in example.item_records(strategy, seed)))
    run.log_artifact(items)
    run.finish(example.STATUS.get((strategy, seed), "FINISHED"))
    return run.run_id


@pytest.fixture(params=["sqlite", "server"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A tracking URI holding the example experiment (and an older run of one cell)."""
    uri = request.getfixturevalue("sqlite_uri" if request.param == "sqlite" else "mlflow_server")
    name = f"{EXPERIMENT}-{request.param}"
    experiment_id = prepare_experiment(uri, name, tmp_path)
    cells = [
        {"strategy": s, "student": "tiny", "task": "arith", "seed": seed}
        for s in example.GRID["strategy"]
        for seed in example.GRID_SEEDS
    ]
    record_grid(uri, experiment_id, cells)
    # An earlier attempt at one cell, with other numbers: the report must take the newer run.
    write_trial(uri, experiment_id, "random", 0, tmp_path / "older", shift=0.3)
    time.sleep(0.02)
    for strategy, seed in example.ACCURACY:
        write_trial(uri, experiment_id, strategy, seed, tmp_path / "trials")
    return f"{uri} {name}"


def report(store: str, out: Path) -> int:
    uri, name = store.split()
    return main(["report", name, "--tracking-uri", uri, "--out", str(out)])


@pytest.mark.slow  # a whole report: figures, tables, 7 runs logged (3-10 s)
def test_report_tables_match_the_hand_computed_numbers(store: str, tmp_path: Path, capsys) -> None:
    out = tmp_path / "report"
    assert report(store, out) == 0
    printed = capsys.readouterr().out
    assert "6 trials (5 finished, 1 failed)" in printed
    efficiency = pd.read_csv(out / "efficiency_n_synthetic_vs_random.csv").set_index(
        ["strategy", "step"]
    )
    assert efficiency.loc[("loss", 0), "ratio"] == pytest.approx(1.5)
    assert efficiency.loc[("static", 0), "ratio"] == pytest.approx(2 / 3)
    assert efficiency.loc[("loss", 1), "reached"] == False  # noqa: E712
    overall = pd.read_csv(out / "win_rates_overall.csv")
    assert overall["strategy"].tolist() == ["random", "static", "loss"]  # the grid's order
    assert overall["win_rate"].tolist() == pytest.approx([2.5 / 7, 1.5 / 7, 1.0])
    assert overall["ties"].tolist() == [1, 1, 0]
    fidelity = pd.read_csv(out / "fidelity.csv")
    assert fidelity["rho_median"].tolist() == pytest.approx([0.8])  # per (iteration, seed)
    assert fidelity["pooled_rho"].tolist() == pytest.approx([11 / 15])
    assert fidelity["dataset_rho"].isna().all()  # 3 points
    ordering = pd.read_csv(out / "ordering.csv")
    final = ordering[(ordering["judge"] == "final") & (ordering["iteration"] == "pooled")]
    assert final["ordered"].iloc[:3].tolist() == pytest.approx([0, 0.25, 1 / 3])

    markdown = (out / "report.md").read_text()
    # The noise floor opens the report: random and static read nothing from the student.
    # random vs static at t = 1 (efficiency): 0.45 vs static's mean curve (.1 .2 .25 .5): 8 +
    # 0.2 / 0.25 * 4 = 11.2 items over 12; per seed 0.4 -> 10 / 12, 0.4 -> never (seed 1:
    # static .2 .6), both 11.2 / 12: [0.83x, never]. Win rate 2.5 / 4, per seed .75 and .5.
    opening = markdown.split("## What is missing")[0]
    assert (
        "noise floor (A/A: neither reads the student): random vs static, arith · tiny at t = 1: "
        "efficiency in items 0.93x [0.83x, never]" in opening
    )
    assert "win rate 0.62 [0.50, 0.75] over 4 cells (1 tied)" in opening
    efficiency_part = markdown.split("## Efficiency (items)")[1]
    assert efficiency_part.index("**noise floor (A/A") < efficiency_part.index(
        "**items the baselines need**"
    )
    win_part = markdown.split("## Win rates")[1]
    assert win_part.index("| random beats static | 0.62 [0.50, 0.75] | 4 | 1 |") < win_part.index(
        "**win rates**"
    )
    assert "| random | 0.36 [0.33, 0.38] | 7 | 1 | 2 |" in markdown
    assert (
        "| arith | tiny | loss | 10 | 0.80 [-0.50, 1.00] (3 groups) | 0.733 | too few points |"
        in (markdown)
    )
    assert "7 items without the final-iteration student's seed score" in markdown
    assert "| arith | tiny | loss | 1 | 1 | 0.900 | 0.300 |" in markdown  # per difficulty
    # What is missing: the grid's seed 2 and the failed trial.
    for strategy in example.GRID["strategy"]:
        assert f"no run yet for strategy {strategy}, student tiny, task arith, seed 2" in markdown
    assert "loss-tiny-arith-seed1: failed, 1 of 2 iterations logged" in markdown
    assert "an older run" in markdown and "random-tiny-arith-seed0" in markdown
    assert "No item scores for random, static" in markdown
    assert "| loss-tiny-arith-seed1 | FAILED | 2 |" in markdown
    assert "| 1 | 8 | 800 | 0.500 |" in markdown  # its last logged step: t = 0
    # The Figure 4 marker: loss is the best at the largest budget and random never gets there.
    assert "loss: random never gets there in its 12 items" in markdown
    assert (
        "| arith | tiny | loss | 0 | 8 | 0.450 | 2 | 12 | 1.50x [1.25x, never] | "
        "2.00x [1.50x, never] |" in markdown
    )
    # loss t = 1: one seed only (seed 1 failed before it).
    assert "| arith | tiny | loss | 1 | 12 | 0.600 | 1 | never | > 1.00x |" in markdown
    assert "1.25x [1.25x, never] (2 seeds)" not in markdown  # the median of (1.25, never)
    assert "never [1.25x, never] (2 seeds)" in markdown

    page = (out / "report.html").read_text()
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == [
        "curves_items.png",
        "curves_tokens.png",
        "fidelity.png",
        "ordering.png",
        "win_rates.png",
    ]
    # Self-contained: every figure inlined, nothing fetched from elsewhere.
    assert page.count('src="data:image/png;base64,') == len(pngs)
    assert not re.search(r'(src|href)="(?!data:)', page)
    assert "<td>loss</td>" in page


@pytest.mark.slow  # a whole report: figures, tables, 7 runs logged (3-10 s)
def test_the_report_is_logged_to_one_report_run(store: str, tmp_path: Path) -> None:
    uri, name = store.split()
    assert report(store, tmp_path / "first") == 0
    assert report(store, tmp_path / "second") == 0
    assert "not a ray-asd trial" not in (tmp_path / "second" / "report.md").read_text()
    client = MlflowClient(uri)
    trials = client.get_experiment_by_name(name)
    # The trials' experiment holds trials only (its comparison charts draw every run there);
    # the report is the one run of the report's experiment, and each names the other.
    assert all(
        "ray_asd.report" not in r.data.tags for r in client.search_runs([trials.experiment_id])
    )
    reports = client.get_experiment_by_name(f"{name} (report)")
    assert trials.tags["ray_asd.report_experiment"] == reports.experiment_id
    assert reports.tags["ray_asd.report_of"] == trials.experiment_id
    assert reports.tags["mlflow.experimentKind"] == "finetuning"
    runs = client.search_runs([reports.experiment_id])
    assert len(runs) == 1 and runs[0].info.run_name == "report"
    logged = {a.path for a in client.list_artifacts(runs[0].info.run_id)}
    assert {"report.html", "report.md", "win_rates.png", "fidelity.csv"} <= logged
    assert (tmp_path / "first" / "win_rates.csv").read_text() == (
        tmp_path / "second" / "win_rates.csv"
    ).read_text()


def test_unknown_experiment_names_the_ones_there(sqlite_uri: str, tmp_path: Path, capsys) -> None:
    uri = sqlite_uri
    prepare_experiment(uri, "there", tmp_path)
    assert main(["report", "elsewhere", "--tracking-uri", uri]) == 2
    error = capsys.readouterr().err
    assert "no MLflow experiment 'elsewhere'" in error and "there" in error


def test_an_experiment_without_trials_is_one_clear_error(
    sqlite_uri: str, tmp_path: Path, capsys
) -> None:
    uri = sqlite_uri
    prepare_experiment(uri, "empty", tmp_path)
    assert main(["report", "empty", "--tracking-uri", uri]) == 2
    assert "has no ray-asd trial runs yet" in capsys.readouterr().err


def test_without_a_store_it_asks_for_the_uri(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert main(["report", "quickstart"]) == 2
    assert "--tracking-uri" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()  # no empty store made on the way


def test_a_trial_with_nothing_logged_yet(sqlite_uri: str, tmp_path: Path, capsys) -> None:
    uri = sqlite_uri
    experiment_id = prepare_experiment(uri, "fresh", tmp_path)
    tags = {"strategy": "loss", "student": "tiny", "task": "arith", "seed": "0"}
    TrialRun.start(uri, experiment_id, "loss-tiny-arith-seed0", tags, {"budget": {"iterations": 3}})
    out = tmp_path / "report"
    assert main(["report", "fresh", "--tracking-uri", uri, "--out", str(out)]) == 0
    markdown = (out / "report.md").read_text()
    assert "No accuracy logged yet." in markdown
    assert "loss-tiny-arith-seed0: running (or its driver stopped), 0 of 3 iterations logged" in (
        markdown
    )
    assert "loss-tiny-arith-seed0: no items.jsonl artifact yet" in markdown
