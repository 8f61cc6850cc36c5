"""A trial that tune.scheduler stopped early, as `ray-asd run` leaves it in MLflow (the
runner's own TrialRun: metrics up to the stop, then tagged stopped early): the report shows it
as stopped, with its curve up to the stop, and counts it in the win rates where it ran."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ray_asd.cli import main
from ray_asd.tracking import TrialRun, prepare_experiment

PHASES = {-2: "base", -1: "warmup"}
ITEMS = {-2: 0, -1: 4, 0: 8, 1: 12}
# (strategy label, accuracy per step from -2; the second stops after t = 0)
TRIALS = {"loss+power-1": [0.1, 0.2, 0.4, 0.6], "loss+power-2": [0.1, 0.2, 0.1]}


def write(uri: str, experiment_id: str, strategy: str, accuracy: list[float]) -> TrialRun:
    name = f"{strategy}-tiny-arith-seed0"
    tags = {"strategy": strategy, "student": "tiny", "task": "arith", "seed": "0"}
    params = {"budget": {"iterations": 2}}
    run = TrialRun.start(uri, experiment_id, name, {**tags, "ray_asd.cell": name}, params)
    steps = list(ITEMS)[: len(accuracy)]
    run.log_rows(
        [
            {
                "phase": PHASES.get(step, "iteration"),
                "iteration": max(step, -1),
                "n_synthetic": ITEMS[step],
                "accuracy": value,
                "teacher_tokens": 100 * ITEMS[step],
            }
            for step, value in zip(steps, accuracy, strict=True)
        ]
    )
    return run


@pytest.mark.slow  # a whole report: figures and tables (3-5 s)
def test_a_stopped_trial_is_shown_stopped_with_its_curve_to_the_stop(
    sqlite_uri: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    experiment_id = prepare_experiment(sqlite_uri, "search", tmp_path)
    write(sqlite_uri, experiment_id, "loss+power-1", TRIALS["loss+power-1"]).finish()
    write(sqlite_uri, experiment_id, "loss+power-2", TRIALS["loss+power-2"]).stopped_early(0)
    out = tmp_path / "report"
    assert main(["report", "search", "--tracking-uri", sqlite_uri, "--out", str(out)]) == 0
    assert "2 trials (1 finished, 1 stopped early)" in capsys.readouterr().out

    curves = pd.read_csv(out / "curves.csv")
    stopped = curves[curves["strategy"] == "loss+power-2"]
    assert stopped["step"].tolist() == [-2, -1, 0]  # up to the stop, not dropped
    assert stopped["accuracy"].tolist() == pytest.approx([0.1, 0.2, 0.1])
    overall = pd.read_csv(out / "win_rates_overall.csv").set_index("strategy")
    # Compared at t = 0 only (t = 1: no value for the stopped one): 0.4 beats 0.1.
    assert overall["cells"].tolist() == [1, 1]
    assert overall.loc["loss+power-1", "win_rate"] == 1.0

    markdown = (out / "report.md").read_text()
    cell = "loss+power-2-tiny-arith-seed0"
    curves_part = markdown.split("## Learning curves")[1].split("## ")[0]
    assert f"Stopped early by tune.scheduler: {cell} (after t = 0). Their curves end" in curves_part
    win_part = markdown.split("## Win rates")[1].split("## ")[0]
    assert f"Stopped early by tune.scheduler: {cell} (after t = 0). They count" in win_part
    assert "| stopped early |" in win_part
    assert f"{cell}: stopped early by tune.scheduler (its curve ends at the stop), 1 of 2" in (
        markdown
    )
    assert f"| {cell} | STOPPED_EARLY | 2 |" in markdown  # the trials table
