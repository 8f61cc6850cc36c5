"""Student scoring throughput: the runner's Ray Data actor pool vs a plain batched loop vs a
naive per-example loop, and the achieved FLOP/s against a measured matmul roofline.

Scoring is the loss family's answer pass (`ray_asd.trial.answer_table`): the student answers
each seed greedily and the mean token NLL of its answer comes from the same generation. The
same N built-in arithmetic seeds go to:

- ``ray data``: the runner's `RayDataAnswers` (one scoring actor, as the quickstart; each pass
  starts its actor and loads the model, as a trial's pass does), also split into the model
  time inside the actor and the rest (Ray Data overhead);
- ``plain loop``: `answer_table` in this process, batched and length-sorted (the student's
  ``batch_size``);
- ``naive loop``: `answer_table` on one row at a time (on the first ``--naive-max`` rows).

Rounds are interleaved (ray data, plain, naive, next size ...) after one untimed warm-up of
each; medians over ``--repeats``. Tokens = prompt + answer tokens. FLOPs ~ 2 x parameters x
tokens (a forward pass per token with the KV cache; attention's share is small at these
lengths), against the median FLOP/s of a square matmul in the student's dtype on the same
threads (the roofline).

    python bench/scoring.py                      # SmolLM2-135M, N 32 64 128, 3 repeats: ~10 min
    python bench/scoring.py --quick              # N 16 32, 2 repeats: ~3 min
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import ray
import torch

from ray_asd.config import load_config
from ray_asd.experiment import ScoringResources
from ray_asd.runner.scoring import RayDataAnswers
from ray_asd.student import Student
from ray_asd.tasks import load_table, make_task
from ray_asd.trial import answer_table


def roofline(dtype: torch.dtype, size: int = 1024, repeats: int = 5) -> float:
    """Median FLOP/s of a ``size`` x ``size`` matmul in ``dtype`` on this process's threads."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    a @ b  # warm-up
    times = []
    for _ in range(repeats):
        clock = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - clock)
    return 2 * size**3 / statistics.median(times)


def timed(function: Callable[[], pd.DataFrame]) -> tuple[float, pd.DataFrame]:
    clock = time.perf_counter()
    result = function()
    return time.perf_counter() - clock, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded:smollm2-135m")
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--naive-max", type=int, default=64, help="rows for the naive loop")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="N 16 32, 2 repeats")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.repeats = [16, 32], 2
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    torch.set_num_threads(args.threads)
    config = load_config(
        None, [f"student.model={args.model}", "student.max_new_tokens=64", "task.name=arith"]
    )
    task = make_task(config.task.name)
    seeds = load_table(task, config.task.train).head(max(args.sizes))
    student = Student.load(config.student.model, autocast=config.student.autocast)
    params = sum(p.numel() for p in student.model.parameters())
    dtype = torch.bfloat16 if config.student.autocast else torch.float32
    peak = roofline(dtype)
    print(
        f"model {args.model}: {params / 1e6:.0f}M parameters, {dtype}, batch "
        f"{config.student.batch_size}, {args.threads} threads; matmul roofline "
        f"{peak / 1e9:.1f} GFLOP/s"
    )

    ray.init(num_cpus=args.threads, include_dashboard=False, log_to_driver=False)
    resources = ScoringResources(actors=1, cpus=args.threads, batch_size=max(args.sizes))
    with tempfile.TemporaryDirectory() as folder:
        pool = RayDataAnswers(config, student, Path(folder), resources, None, args.threads)
        methods: dict[str, Callable[[pd.DataFrame], pd.DataFrame]] = {
            "ray data": lambda table: pool(table, ()),
            "plain loop": lambda table: answer_table(config, task, student, table),
            "naive loop": lambda table: pd.concat(
                [answer_table(config, task, student, table.iloc[[i]]) for i in range(len(table))]
            ),
        }
        small = seeds.head(min(args.sizes))
        for run in methods.values():  # warm-up: first-call allocations, the actor image
            run(small)
        seconds: dict[tuple[str, int], list[float]] = {}
        tokens: dict[tuple[str, int], int] = {}
        model_seconds: dict[int, list[float]] = {}
        for repeat in range(args.repeats):
            for n in args.sizes:
                for name, run in methods.items():
                    table = seeds.head(min(n, args.naive_max) if name == "naive loop" else n)
                    before = pool.model_seconds
                    took, answered = timed(lambda run=run, table=table: run(table))
                    seconds.setdefault((name, n), []).append(took)
                    prompts = [task.prompt(q) for q in table["question"]]
                    prompt_tokens = sum(len(student.tokenizer(p)["input_ids"]) for p in prompts)
                    tokens[(name, n)] = prompt_tokens + int(answered["answer_tokens"].sum())
                    if name == "ray data":
                        model_seconds.setdefault(n, []).append(pool.model_seconds - before)
                    print(f"  repeat {repeat} N={n:<4} {name:11} {took:7.2f} s")
    ray.shutdown()

    print()
    header = f"{'method':11} {'N':>5} {'rows':>5} {'median s':>9} {'tok/s':>8}"
    print(header + f" {'vs plain':>9} {'GFLOP/s':>8} {'of roofline':>11}")
    for n in args.sizes:
        plain = tokens[("plain loop", n)] / statistics.median(seconds[("plain loop", n)])
        for name in methods:
            rows = min(n, args.naive_max) if name == "naive loop" else n
            median = statistics.median(seconds[(name, n)])
            rate = tokens[(name, n)] / median
            flops = 2 * params * rate
            print(
                f"{name:11} {n:>5} {rows:>5} {median:>9.2f} {rate:>8.1f} {rate / plain:>8.2f}x "
                f"{flops / 1e9:>8.2f} {flops / peak:>10.1%}"
            )
        inside = statistics.median(model_seconds[n])
        whole = statistics.median(seconds[("ray data", n)])
        print(
            f"{'':11} {n:>5} ray data: {inside:.2f} s model time in the actor, "
            f"{whole - inside:.2f} s Ray Data overhead (actor start, model load, transfers)"
        )


if __name__ == "__main__":
    main()
