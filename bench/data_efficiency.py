"""The paper's headline on the laptop: how many items `random` and `static` need to reach the
accuracy each strategy reaches, over the items it used (efficiency; > 1: more data-efficient).

Runs `ray-asd run configs/data-efficiency.yaml` (the built-in arithmetic task, SmolLM2-135M,
oracle teacher; random, static, loss, loss_gt, llm2llm x 3 seeds at 64/96/128 items) and
prints, per strategy and budget, the test accuracy over seeds and its efficiency against
`random` and `static`: on the seed-mean curves (as `ray-asd report`) and per seed against the
baseline trial of the same seed (median [min, max]). Efficiency interpolates linearly on the
baseline's curve from the base model through the warm-up; "> Nx": the baseline never gets
there within its budget (N = its largest budget over the strategy's).

    python bench/data_efficiency.py                 # the full grid: 66 min on 2 cores
    python bench/data_efficiency.py --quick         # random/static/loss x 2 seeds, smaller: 8 min
    python bench/data_efficiency.py --tables-only   # the tables of a finished (or running) run
    python bench/data_efficiency.py --resume        # continue an interrupted run

Add ``--set KEY=VALUE`` to change the experiment (as `ray-asd run`), e.g.
``--set 'grid.seed=[0,1,2,3,4]'``; a new ``--set name=...`` keeps earlier runs apart.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from ray_asd.experiment import load_experiment
from ray_asd.report.analyses import efficiency
from ray_asd.report.data import load
from ray_asd.report.render import ratio_text, spread_text
from ray_asd.tracking import default_uri

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "data-efficiency.yaml"
QUICK = [
    "name=data-efficiency-quick",
    "grid.strategy=[random,static,loss]",
    "grid.seed=[0,1]",
    "budget.warmup=32",
    "budget.iterations=2",
    "budget.per_iteration=16",
    "seeds.n=48",
    "eval.n=48",
]


def tables(curves: pd.DataFrame) -> pd.DataFrame:
    """One row per strategy and budget: accuracy over seeds and efficiency vs random/static."""
    steps = curves[curves["step"] >= 0]
    accuracy = (
        steps.groupby(["strategy", "step"], sort=False)
        .agg(
            items=("n_synthetic", "median"),
            mean=("accuracy", "mean"),
            sd=("accuracy", "std"),
            seeds=("accuracy", "count"),
        )
        .reset_index()
    )
    accuracy["accuracy"] = [
        f"{m:.3f} ± {s:.3f}" if n > 1 else f"{m:.3f}"
        for m, s, n in zip(accuracy["mean"], accuracy["sd"], accuracy["seeds"], strict=True)
    ]
    table = accuracy[["strategy", "step", "items", "accuracy", "seeds"]]
    for baseline in ("random", "static"):
        ratios = efficiency(curves, baseline)
        if ratios.empty:
            continue
        ratios[f"vs {baseline}"] = [
            ratio_text(r.ratio, r.reached, r.bound) for r in ratios.itertuples(index=False)
        ]
        ratios[f"vs {baseline}, per seed"] = [
            spread_text(r.seed_median, r.seed_min, r.seed_max, r.seed_pairs)
            for r in ratios.itertuples(index=False)
        ]
        columns = ["strategy", "step", f"vs {baseline}", f"vs {baseline}, per seed"]
        table = table.merge(ratios[columns], on=["strategy", "step"], how="left")
    return table.fillna("–")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 strategies x 2 seeds, smaller")
    parser.add_argument("--tables-only", action="store_true", help="print, do not run")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    overrides = (QUICK if args.quick else []) + args.set
    experiment = load_experiment(CONFIG, overrides)
    storage = Path(experiment.storage)
    if not args.tables_only:
        # `ray-asd run` of this interpreter's environment (the venv need not be activated).
        command = [sys.executable, "-m", "ray_asd.cli", "run", str(CONFIG)]
        command += ["--resume"] if args.resume else []
        for override in overrides:
            command += ["--set", override]
        print("$ ray-asd run", " ".join(command[4:]), flush=True)
        clock = time.perf_counter()
        code = subprocess.call(command)
        print(f"\nray-asd run: exit {code}, {(time.perf_counter() - clock) / 60:.1f} min")
        if code not in (0, 1):  # 1: some trials failed; the others still make a table
            sys.exit(code)
    data = load(default_uri(storage), experiment.name)
    for note in data.notes:
        print("note:", note)
    print(f"\n{experiment.name}: test accuracy (mean ± sd over seeds) and efficiency")
    with pd.option_context("display.width", 250, "display.max_columns", 20):
        print(tables(data.curves).to_string(index=False))


if __name__ == "__main__":
    main()
