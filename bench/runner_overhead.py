"""How much of an experiment's wall time is model compute, and how much is the runner's.

Reads the MLflow runs of a finished `ray-asd run` experiment and sums, over its trials, the
time spent in models: LoRA training (`seconds_train`), answering and scoring inside the Ray
Data actors (`seconds_scoring_model`) and teacher generation (`seconds_generate`); the base
evaluation and warm-up (steps < 0), which strategies of one cell share, count once. The rest
of the driver's wall time (printed by `ray-asd run` as "wall time") is outside model compute:
Ray and Tune start-up, actor start and model loads, transfers, checkpoints, MLflow.

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
    totals = dict.fromkeys(MODEL_PHASES, 0.0)
    counted_warmups: set[str] = set()
    print(f"{'trial':40} {'accuracy':>8} " + " ".join(f"{p[8:]:>15}" for p in MODEL_PHASES))
    for run in sorted(
        client.search_runs([experiment.experiment_id]), key=lambda r: r.info.run_name
    ):
        warmup = run.data.tags.get("ray_asd.warmup_key", run.info.run_id)
        first = warmup not in counted_warmups  # the shared steps < 0 count for one run only
        counted_warmups.add(warmup)
        sums = {
            phase: sum(
                m.value
                for m in client.get_metric_history(run.info.run_id, phase)
                if first or m.step >= 0
            )
            for phase in MODEL_PHASES
        }
        for phase, value in sums.items():
            totals[phase] += value
        accuracy = run.data.metrics.get("accuracy", float("nan"))
        cells = " ".join(f"{sums[p]:>15.1f}" for p in MODEL_PHASES)
        print(f"{run.info.run_name:40} {accuracy:>8.3f} {cells}")
    model = sum(totals.values())
    print(
        f"model compute {model:.0f} s of {args.wall:.0f} s wall; outside model compute "
        f"{args.wall - model:.0f} s = {(args.wall - model) / args.wall:.0%}"
    )


if __name__ == "__main__":
    main()
