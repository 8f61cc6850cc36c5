"""The Tune scheduler of ``tune.scheduler`` (no Ray started): Tune's own ASHA, driven with
reports as run_cell sends them, stops a trial below the rung's cutoff and never at the last
iteration."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from ray.tune.experiment import Trial
from ray.tune.schedulers import ASHAScheduler, TrialScheduler

from ray_asd.experiment import ExperimentConfig, SchedulerConfig
from ray_asd.runner import format_outcome
from ray_asd.runner.stopping import SCHEDULERS, _asha, scheduler, stopped_early

from .test_run_helpers import outcome


def asha(iterations: int, **settings: object) -> TrialScheduler:
    config = ExperimentConfig.model_validate(
        {"budget": {"iterations": iterations}, "tune": {"scheduler": settings}}
    )
    built = scheduler(config)
    assert isinstance(built, ASHAScheduler)
    return built


def decisions(
    built: TrialScheduler, accuracy: dict[str, list[float]], metric: str = "accuracy"
) -> dict[str, list[str]]:
    """Each trial's reports in turn (the warm-up's at iteration -1, then t = 0, 1, ...), one
    trial after another as on a cluster with room for one: the scheduler's answer to each
    (``accuracy`` holds the values of ``metric``)."""
    answers: dict[str, list[str]] = {}
    for name, values in accuracy.items():
        trial = Trial("run_cell", config={"cell": name}, trial_id=name, stub=True)
        built.on_trial_add(None, trial)
        answers[name] = []
        for t, value in enumerate(values, start=-1):
            answer = built.on_trial_result(None, trial, {"iteration": t, metric: value})
            answers[name].append(answer)
            if answer == TrialScheduler.STOP:
                break
    return answers


def test_no_scheduler_is_tunes_default() -> None:
    assert scheduler(ExperimentConfig()) is None  # Tune's FIFO: every trial to its end
    assert set(SCHEDULERS) == {"asha"}  # the names SchedulerConfig.name accepts


def test_asha_stops_the_worse_trial_at_the_grace_period_rung() -> None:
    built = asha(4, grace_period=1)
    # Iterations t = 0..3; the rung is at t = 1 (max_t = T - 2 = 2: one rung, 1 * 2 > 2).
    answers = decisions(built, {"good": [0.2, 0.3, 0.4, 0.5, 0.6], "bad": [0.2, 0.1, 0.0]})
    assert answers["good"] == [TrialScheduler.CONTINUE] * 5  # the first at the rung goes on
    assert answers["bad"] == [TrialScheduler.CONTINUE] * 2 + [TrialScheduler.STOP]


def test_asha_never_stops_a_trial_at_its_last_iteration() -> None:
    built = asha(3, grace_period=1)  # rungs up to t = 1, the last iteration is t = 2
    answers = decisions(built, {"good": [0.2, 0.3, 0.5, 0.6], "worse": [0.2, 0.3, 0.5, 0.0]})
    assert TrialScheduler.STOP not in answers["worse"]  # worse only at t = 2


def test_mode_min_stops_the_higher_one() -> None:
    built = asha(4, metric="accuracy", mode="min")
    answers = decisions(built, {"low": [0.5, 0.1, 0.1], "high": [0.5, 0.9, 0.9]})
    assert answers["high"][-1] == TrialScheduler.STOP


def test_a_rung_metric_other_than_accuracy_stops_the_dearer_trial() -> None:
    built = asha(4, metric="teacher_tokens", mode="min")
    tokens = {"cheap": [100.0, 200.0, 300.0], "dear": [100.0, 900.0, 1800.0]}
    answers = decisions(built, tokens, metric="teacher_tokens")
    assert answers["cheap"][-1] == TrialScheduler.CONTINUE
    assert answers["dear"][-1] == TrialScheduler.STOP


def test_a_metric_the_reports_lack_stops_nothing_so_the_config_refuses_it() -> None:
    # What a typo would do: Tune's ASHA passes over each report without its metric.
    typo = _asha(SchedulerConfig.model_construct(metric="acuracy"), 4)  # not validated
    answers = decisions(typo, {"good": [0.2, 0.3, 0.4, 0.5], "bad": [0.2, 0.0, 0.0, 0.0]})
    assert TrialScheduler.STOP not in answers["bad"]
    with pytest.raises(ValidationError, match="'acuracy' is not a metric every trial reports"):
        SchedulerConfig(metric="acuracy")


def test_a_trial_without_final_artifacts_was_stopped(tmp_path: Path) -> None:
    assert stopped_early(tmp_path)
    (tmp_path / "final").mkdir()
    (tmp_path / "final" / "metrics.csv").write_text("iteration\n0\n")
    assert not stopped_early(tmp_path)


def test_the_summary_names_the_stopped_trials_and_links_the_runs_view() -> None:
    stopped = outcome(mlflow_experiment_id="3", stopped={"loss+power-2-tiny": 1})
    lines = format_outcome(stopped).splitlines()
    assert lines[-2:] == [
        "  view: mlflow ui --backend-store-uri sqlite:////s/mlflow.db, then open "
        "http://127.0.0.1:5000/#/experiments/3/runs?workflowType=machine_learning",
        "STOPPED EARLY loss+power-2-tiny: by tune.scheduler after t = 1",
    ]
