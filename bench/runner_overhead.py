"""How much of an experiment's wall time is model compute, and how much is the runner's.

Reads the MLflow runs of a finished `ray-asd run` experiment and sums, over its trials, the
time spent in models: LoRA training (`seconds_train`), answering and scoring inside the Ray
Data actors (`seconds_scoring_model`) and teacher generation (`seconds_generate`). The base
evaluation and warm-up (steps < 0), which the strategies of a cell share, count once; the
table lists each trial's own iterations (steps >= 0). The rest of the driver's wall time
(printed by `ray-asd run` as "wall time") is outside model compute: Ray and Tune start-up,
actor starts and model loads, transfers, checkpoints, MLflow.

    python bench/runner_overhead.py sqlite:///runs/mlflow.db quickstart --wall 530
"""

from __future__ import annotations

import argparse
import os

from mlflow import MlflowClient

MODEL_PHASES = ("seconds_train", "seconds_scoring_model", "seconds_generate")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tracking_uri")
    parser.add_argument("experiment")
    parser.add_argument("--wall", type=float, required=True, help="the run's wall time, s")
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    client = MlflowClient(args.tracking_uri)
    experiment = client.get_experiment_by_name(args.experiment)
    if experiment is None:
        raise SystemExit(f"no experiment {args.experiment!r} at {args.tracking_uri}")
    shared: dict[str, float] = {}  # warm-up key -> model seconds of its steps < 0
    own = 0.0
    print(f"{'trial':40} {'accuracy':>8} " + " ".join(f"{p[8:]:>15}" for p in MODEL_PHASES))
    trials = [
        run
        for run in client.search_runs([experiment.experiment_id])
        if not run.data.tags.get("ray_asd.report")  # `ray-asd report`'s run is not a trial
    ]
    for run in sorted(trials, key=lambda r: r.info.run_name):
        histories = {p: client.get_metric_history(run.info.run_id, p) for p in MODEL_PHASES}
        warmup = sum(m.value for h in histories.values() for m in h if m.step < 0)
        # The run that computed the shared warm-up logged its scoring time; copies log 0.
        key = run.data.tags.get("ray_asd.warmup_key", run.info.run_id)
        shared[key] = max(shared.get(key, 0.0), warmup)
        sums = {p: sum(m.value for m in h if m.step >= 0) for p, h in histories.items()}
        own += sum(sums.values())
        accuracy = run.data.metrics.get("accuracy", float("nan"))
        cells = " ".join(f"{sums[p]:>15.1f}" for p in MODEL_PHASES)
        print(f"{run.info.run_name:40} {accuracy:>8.3f} {cells}")
    print(f"shared base evaluations + warm-ups: {sum(shared.values()):.1f} s")
    model = own + sum(shared.values())
    print(
        f"model compute {model:.0f} s of {args.wall:.0f} s wall; outside model compute "
        f"{args.wall - model:.0f} s = {(args.wall - model) / args.wall:.0%}"
    )


if __name__ == "__main__":
    main()
