"""The paper's headline on the laptop, as one pre-registered comparison with the power to answer:
is `loss` more data-efficient than `random`, paired by seed?

Runs `ray-asd run configs/data-efficiency.yaml` (the built-in arithmetic task, SmolLM2-135M,
oracle teacher; arms random, loss, the A/A control random_s1 and the positive control
difficulty, x 8 seeds at 8/12/16 items) and prints, measured in that one run:

- accuracy per arm and budget (mean ± sd over seeds), and the picks' difficulty histogram;
- the primary comparison, loss vs random (`ray_asd.paired`): the mean over budget points of the
  paired accuracy difference, the efficiency it means through random's slope per doubling of
  the items, a 95% seed-bootstrap interval, the paired t and the exact sign-flip p;
- the same for the A/A control (random_s1 vs random: the noise floor; neither reads the
  student) and the positive control (difficulty vs random: can any selection beat random here?);
- the power of the design for a true 1.3x, before the run (from the pilot's slope and a prior
  sd) and after it (the measured slope and the A/A's sd).

    python bench/data_efficiency.py --pilot        # random x 2 seeds, 4..24 items: the curve
    python bench/data_efficiency.py                # power, then the full run, then the tables
    python bench/data_efficiency.py --quick        # the 4 arms x 2 seeds, smaller: a smoke run
    python bench/data_efficiency.py --tables-only  # the tables of a finished (or running) run
    python bench/data_efficiency.py --resume       # continue an interrupted run

Add ``--set KEY=VALUE`` to change the experiment (as `ray-asd run`); a new ``--set name=...``
keeps earlier runs apart. bench/README.md has the measured times and results.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ray_asd.experiment import load_experiment
from ray_asd.paired import Paired, compare, log2_slope, power
from ray_asd.report.data import load
from ray_asd.tracking import default_uri

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "data-efficiency.yaml"
PRIMARY = ("loss", "random")
CONTROLS = {
    "A/A control (noise floor)": ("random_s1", "random"),
    "positive control": (
        "difficulty",
        "random",
    ),
}
QUICK = [
    "name=data-efficiency-quick",
    "grid.seed=[0,1]",
    "budget.iterations=2",
    "eval.n=48",
]
PILOT = [
    "name=data-efficiency-pilot",
    "grid.strategy=[random]",
    "grid.seed=[0,1]",
    "budget.iterations=5",
]
# The sd over seeds of a per-seed difference d_s between two arms, before any run of this
# design: the earlier 3-seed run (64/96/128 items, 150 test items) had per-arm sds of 1.2-4.4
# points (median ~2.5); a difference of two arms is ~sqrt(2) of that, averaged over 3 budget
# points it shrinks a little: ~3 points.
PRIOR_SD = 0.03
EFFECT = 1.3  # the paper's lower end of 1.3x-2x


def _run(overrides: list[str], resume: bool) -> None:
    """`ray-asd run` of this interpreter's environment (the venv need not be activated)."""
    command = [sys.executable, "-m", "ray_asd.cli", "run", str(CONFIG)]
    command += ["--resume"] if resume else []
    for override in overrides:
        command += ["--set", override]
    print("$ ray-asd run", " ".join(command[4:]), flush=True)
    clock = time.perf_counter()
    code = subprocess.call(command)
    print(f"\nray-asd run: exit {code}, {(time.perf_counter() - clock) / 60:.1f} min", flush=True)
    if code not in (0, 1):  # 1: some trials failed; the others still make a table
        sys.exit(code)


def accuracy_table(curves: pd.DataFrame) -> pd.DataFrame:
    """Per arm and step: items, accuracy mean ± sd over seeds, seeds."""
    table = (
        curves.groupby(["strategy", "step"], sort=False)
        .agg(
            items=("n_synthetic", "median"),
            mean=("accuracy", "mean"),
            sd=("accuracy", "std"),
            seeds=("accuracy", "count"),
        )
        .reset_index()
    )
    table["accuracy"] = [
        f"{m:.3f} ± {s:.3f}" if n > 1 else f"{m:.3f}"
        for m, s, n in zip(table["mean"], table["sd"], table["seeds"], strict=True)
    ]
    table["items"] = table["items"].astype(int)
    return table[["strategy", "step", "items", "accuracy", "seeds"]]


def picks_table(folder: Path) -> pd.DataFrame:
    """Per arm: the mean number of picks of each difficulty per iteration (trials' metrics)."""
    frames = []
    for path in sorted(folder.glob("trials/*/final/metrics.csv")):
        metrics = pd.read_csv(path)
        columns = [c for c in metrics.columns if c.startswith("picks_difficulty_")]
        rows = metrics[metrics["phase"] == "iteration"]
        # A difficulty not picked in an iteration has no value in its row: 0 picks.
        counts = rows[columns].fillna(0)
        frames.append(counts.assign(strategy=path.parent.parent.name.split("-")[0]))
    if not frames:
        return pd.DataFrame()
    table = pd.concat(frames).fillna(0).groupby("strategy", sort=False).mean().round(1)
    table = table[sorted(table.columns, key=lambda c: int(c.rsplit("_", 1)[-1]))]
    return table.rename(columns=lambda c: "difficulty " + c.rsplit("_", 1)[-1])


def comparison_rows(curves: pd.DataFrame, steps: list[int]) -> tuple[pd.DataFrame, dict]:
    """The primary comparison and the controls, one row each."""
    rows, results = [], {}
    for label, (arm, baseline) in {"primary": PRIMARY, **CONTROLS}.items():
        if not {arm, baseline} <= set(curves["strategy"]):
            continue
        try:
            result = compare(curves, arm, baseline, steps)
        except ValueError as error:  # fewer than two seeds finished both arms yet
            print(f"{label}: {error}")
            continue
        results[label] = result
        rows.append({"comparison": label, "arms": f"{arm} vs {baseline}", **_row(result)})
    return pd.DataFrame(rows), results


def _row(r: Paired) -> dict[str, object]:
    return {
        "seeds": r.seeds,
        "mean diff (points)": f"{100 * r.mean_difference:+.2f}",
        "sd diff": f"{100 * r.sd_difference:.2f}",
        "slope/doubling": f"{100 * r.slope:.2f}",
        "efficiency": f"{r.efficiency:.2f}x",
        "95% interval": f"[{r.interval[0]:.2f}x, {r.interval[1]:.2f}x]"
        + (f" ({100 * r.flat_resamples:.0f}% flat left out)" if r.flat_resamples > 0 else ""),
        "t": f"{r.t:.2f}",
        "p (t)": f"{r.p_t:.3f}",
        "p (sign flip)": f"{r.p_sign_flip:.3f}",
        "wins/ties": f"{r.wins}/{r.ties}",
    }


def pilot_slope(storage: Path) -> float | None:
    """Random's slope per doubling at the main design's budget points, from the pilot's store."""
    try:
        curves = load(default_uri(storage), "data-efficiency-pilot").curves
    except Exception:  # no pilot run yet
        return None
    mean = curves[curves["step"].between(0, 2)].groupby("n_synthetic")["accuracy"].mean()
    return log2_slope(mean.index.to_numpy(), mean.to_numpy()) if len(mean) > 1 else None


def print_power(slope: float, sd: float, seeds: int, where: str) -> None:
    chance = power(EFFECT, slope, sd, seeds)
    print(
        f"power for a true {EFFECT}x ({where}): slope {100 * slope:.2f} points per doubling, "
        f"so {100 * slope * np.log2(EFFECT):.2f} points expected; sd of d_s {100 * sd:.2f} "
        f"points; {seeds} seeds, two-sided paired t at 0.05: power {chance:.2f}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="4 arms x 2 seeds, smaller")
    mode.add_argument("--pilot", action="store_true", help="random x 2 seeds: the slope")
    parser.add_argument("--tables-only", action="store_true", help="print, do not run")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    overrides = (QUICK if args.quick else PILOT if args.pilot else []) + args.set
    experiment = load_experiment(CONFIG, overrides)
    storage = Path(experiment.storage)
    seeds = len(experiment.grid.seed or [experiment.seed])
    steps = list(range(experiment.budget.iterations))
    if not args.pilot and not args.tables_only:
        slope = pilot_slope(storage)
        where = "pilot's slope, prior sd" if slope else "no pilot: prior slope 12 points"
        print_power(slope or 0.12, PRIOR_SD, seeds, where)
    if not args.tables_only:
        _run(overrides, args.resume)
    data = load(default_uri(storage), experiment.name)
    for note in data.notes:
        print("note:", note)
    curves = data.curves
    with pd.option_context("display.width", 250, "display.max_columns", 20):
        print(f"\n{experiment.name}: test accuracy over seeds (step -2 base, -1 warm-up)")
        print(accuracy_table(curves).to_string(index=False))
        if args.pilot:
            mean = curves[curves["step"] >= 0].groupby("n_synthetic")["accuracy"].mean()
            gains = np.diff(mean.to_numpy()) / np.diff(np.log2(mean.index.to_numpy()))
            print("\nrandom's gain per doubling between budget points:", np.round(100 * gains, 2))
            overall = log2_slope(mean.index.to_numpy(), mean.to_numpy())
            print(f"least squares over all: {100 * overall:.2f}")
            return
        picks = picks_table(storage / experiment.name)
        if not picks.empty:
            print("\npicks per iteration by difficulty (mean over trials)")
            print(picks.to_string())
        table, results = comparison_rows(curves, steps)
        print(f"\npaired by seed over budget steps {steps} (d_s: mean over them)")
        print(table.to_string(index=False))
    if "A/A control (noise floor)" in results and "primary" in results:
        floor, primary = results["A/A control (noise floor)"], results["primary"]
        print_power(primary.slope, floor.sd_difference, seeds, "measured slope, A/A sd")
        print_power(primary.slope, primary.sd_difference, seeds, "measured slope, loss-random sd")


if __name__ == "__main__":
    main()
