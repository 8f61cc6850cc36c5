"""Where one experiment's wall time goes: model compute vs the runner's own work.

Runs a small experiment (the quickstart with the `loss` strategy only: one trial of the
embedded SmolLM2-135M, 3 iterations) on a fresh local Ray, timing Ray's start here and reading
every other phase from the trial's MLflow run: the loop's per-phase seconds (`seconds_*` at
each step: answering, rating, selection, teacher + filters, item scoring, training,
evaluation, checkpoint writing) and the runner's (`trial_seconds_*`: student load, scoring
actors' start with their model load, MLflow logging, Tune reports, the trial's total).

Model compute = the scoring actors' time inside the model (`seconds_scoring_model`), LoRA
training, item scoring (the student in the trial's process) and the teacher's generation (an
LLM teacher's; the oracle's is a few ms). The rest is overhead. Two shares are printed: of the
whole wall time, and "once models are loaded" (without Ray's start, the driver's set-up and
the one-time model loads), the issue's goal being <= 5%.

    python bench/overhead.py                          # ~5 min on 2 cores
    python bench/overhead.py --set budget.iterations=1   # any `ray-asd run` override
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import ray
from mlflow import MlflowClient

from ray_asd.experiment import load_experiment
from ray_asd.runner.run import connect, run_experiment

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "quickstart.yaml"
SMOKE = ["name=overhead", "grid.strategy=[loss]", "tracking.log_adapter=false"]
# The loop's phases (MLflow `seconds_<phase>`, summed over the trial's steps); "answer" and
# "eval" are the scoring actors' passes, split below into model time and the pool's overhead.
LOOP_PHASES = ("answer", "rate", "select", "generate", "score_items", "train", "eval", "checkpoint")
RUNNER_PHASES = ("student_load", "actor_start", "mlflow", "tune_report")
MODEL = {"scoring model", "train", "score_items", "generate"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    with tempfile.TemporaryDirectory() as storage:
        config = load_experiment(CONFIG, [*SMOKE, f"storage={storage}", *args.set])
        clock = time.perf_counter()
        connect("local")  # a fresh local Ray, never a cluster this machine runs
        ray_start = time.perf_counter() - clock
        outcome = run_experiment(config)
        wall = time.perf_counter() - clock
        ray.shutdown()
        client = MlflowClient(outcome.tracking_uri)
        experiment = client.get_experiment_by_name(outcome.mlflow_experiment)
        (trial,) = client.search_runs([experiment.experiment_id])
        history = {
            key: sum(m.value for m in client.get_metric_history(trial.info.run_id, key))
            for key in trial.data.metrics
        }

    phases: dict[str, float] = {"ray start": ray_start}
    total = history.get("trial_seconds_total", float("nan"))
    phases["driver: set-up, Tune, trial start/end"] = wall - ray_start - total
    for name in RUNNER_PHASES:
        phases[name.replace("_", " ")] = history.get(f"trial_seconds_{name}", 0.0)
    loop = {name: history.get(f"seconds_{name}", 0.0) for name in LOOP_PHASES}
    model_passes = history.get("seconds_scoring_model", 0.0)
    # The actors start (and load the model) inside the trial's first pass.
    passes = loop.pop("answer") + loop.pop("eval") - phases["actor start"]
    phases["scoring model"] = model_passes
    phases["scoring pool overhead (adapter, transfers)"] = passes - model_passes
    phases.update(loop)
    phases["trial, untimed"] = total - sum(
        v
        for k, v in phases.items()
        if k not in ("ray start", "driver: set-up, Tune, trial start/end")
    )
    one_time = ("ray start", "driver: set-up, Tune, trial start/end", "student load", "actor start")

    model = sum(v for k, v in phases.items() if k in MODEL)
    print(f"\n{'phase':44} {'seconds':>8} {'of wall':>8}  kind")
    for name, seconds in phases.items():
        kind = "model" if name in MODEL else "one-time" if name in one_time else "overhead"
        print(f"{name:44} {seconds:>8.2f} {seconds / wall:>8.1%}  {kind}")
    print(f"{'wall time':44} {wall:>8.2f}")
    loaded = wall - sum(phases[k] for k in one_time)
    print(
        f"\nmodel compute {model:.1f} s; outside model compute {wall - model:.1f} s = "
        f"{(wall - model) / wall:.1%} of the wall time; once models are loaded (without the "
        f"one-time rows) {loaded - model:.1f} s of {loaded:.1f} s = {(loaded - model) / loaded:.1%}"
    )


if __name__ == "__main__":
    main()
