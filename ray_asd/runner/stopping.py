"""Early stopping of losing trials (``tune.scheduler``): the Tune scheduler a config names,
and how the driver tells and labels the trials it stopped.

A trial the scheduler stops is ended by Tune after one of its reports, so it never writes its
final artifacts: that is how the driver knows it (a trial with no error and no
``final/metrics.csv``), and it then ends the trial's MLflow run, tagged stopped early. Its
metrics up to the stop are logged already (each checkpoint's), so the report draws its curve
up to there.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from ray.tune.schedulers import ASHAScheduler, TrialScheduler

from ray_asd.experiment import RUNG, ExperimentConfig, SchedulerConfig
from ray_asd.runner.trial import RUN_FILE
from ray_asd.tracking import TrialRun


def _asha(settings: SchedulerConfig, iterations: int) -> TrialScheduler:
    """ASHA on ``settings.metric`` at iteration t (each report's ``iteration``; the warm-up's
    -1 is never a rung). Its rungs end before the last iteration (max_t = T - 2, its stop of
    every trial at max_t off), so a trial that gets to the last iteration finishes."""
    return ASHAScheduler(
        time_attr=RUNG,
        metric=settings.metric,
        mode=settings.mode,
        max_t=iterations - 2,
        grace_period=settings.grace_period,
        reduction_factor=settings.reduction_factor,
        stop_last_trials=False,
    )


# tune.scheduler.name -> its Tune scheduler, from the settings and budget.iterations
SCHEDULERS: dict[str, Callable[[SchedulerConfig, int], TrialScheduler]] = {"asha": _asha}


def scheduler(config: ExperimentConfig) -> TrialScheduler | None:
    """The Tune scheduler of ``config.tune.scheduler``; None (Tune's FIFO: every trial runs to
    its end) when it is not set."""
    settings = config.tune.scheduler
    return SCHEDULERS[settings.name](settings, config.budget.iterations) if settings else None


def stopped_early(out: Path) -> bool:
    """Whether the trial in folder ``out``, which Tune ended without an error, was stopped
    before its end: it has not written its final artifacts."""
    return not (out / "final" / "metrics.csv").is_file()


def mark_stopped(out: Path, tracking_uri: str, iteration: int | None) -> None:
    """Ends the MLflow run of the trial in ``out`` that the scheduler stopped after
    ``iteration``."""
    record = out / RUN_FILE
    if record.is_file():
        run_id = json.loads(record.read_text(encoding="utf-8"))["run_id"]
        TrialRun(tracking_uri, run_id).stopped_early(iteration)
