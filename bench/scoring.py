"""Student scoring throughput: the runner's scoring passes (a Ray Dataset over long-lived
actors) vs the same actors fed directly vs a one-execution Ray Data actor pool vs a plain
batched loop vs a naive per-example loop, the achieved FLOP/s against a matmul roofline, and
the per-pass overhead of a Ray Dataset over long-lived actors.

Scoring is the loss family's answer pass (`ray_asd.answers.answer_table`): the student answers
each seed greedily and the mean token NLL of its answer comes from the same generation. The
same N built-in arithmetic seeds go to:

- ``actors``: the runner's `PoolAnswers` (one scoring actor, as the quickstart, started and
  loaded once, in the warm-up, as once per trial; each pass a Ray Dataset whose task forwards
  the batches to it), also split into the model time inside the actor and the rest (the
  pool's overhead: the Dataset, transfers, batching);
- ``actors direct``: the same actor and batches through ``ray.util.ActorPool``, no Dataset
  (how the runner scored before issue 19);
- ``ray data``: one Ray Data ``map_batches`` over the same scorer on a one-actor pool, how the
  runner scored before that (Ray Data's actor pool lives for one execution: each pass starts a
  worker process, imports torch/transformers/peft and loads the model);
- ``plain loop``: `answer_table` in this process, batched and length-sorted (the student's
  ``batch_size``);
- ``naive loop``: `answer_table` on one row at a time (on the first ``--naive-max`` rows, at
  the first N only: one row at a time, its rate does not depend on N).

Rounds are interleaved (actors, ray data, plain, naive, next size ...) after one untimed warm-up of
each; medians over ``--repeats``. Tokens = prompt + answer tokens. FLOPs ~ 2 x parameters x
tokens (a forward pass per token with the KV cache; attention's share is small at these
lengths), against the median FLOP/s of a square matmul in the student's dtype on the same
threads (the roofline).

Per-pass overhead (``--overhead``, ~1 min; also printed after the throughput table): 64 rows
through a Ray Dataset to 1 and 2 long-lived actors whose ``score`` only echoes its batch, vs
the same batches through ``ActorPool`` directly; medians of 20 passes after 3 untimed ones.

    python bench/scoring.py                      # SmolLM2-135M, N 32 64 128, 3 repeats: ~10 min
    python bench/scoring.py --quick              # N 16 32, 2 repeats: ~4 min
    python bench/scoring.py --overhead           # the per-pass overhead alone
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import ray
import torch
from ray.actor import ActorHandle
from ray.util import ActorPool
from table import print_table, throughput_rows

from ray_asd.answers import answer_table
from ray_asd.config import TrialConfig
from ray_asd.config_file import load_config
from ray_asd.experiment import ScoringResources
from ray_asd.runner.dataplane import batch_rows, scoring_pass
from ray_asd.runner.run import IDLE_WORKERS_LIVE
from ray_asd.runner.scoring import (
    MODEL_SECONDS,
    ActorSlot,
    PoolAnswers,
    ScoringActors,
    StudentScorer,
)
from ray_asd.student.model import Student
from ray_asd.tasks import load_table, make_task


class PerPassScorer(StudentScorer):
    """The runner's scorer as a Ray Data callable class (one batch per call)."""

    def __init__(self, config: TrialConfig, cache_dir: str | None, threads: int | None) -> None:
        super().__init__(config, cache_dir, threads)
        self.config = config

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        return self.score(batch, (), None, self.config).drop(columns=[MODEL_SECONDS])


class Echo:
    """An engine with no model: its pass time is the data plane's alone."""

    def __init__(self, config: str, cache_dir: str | None, threads: int | None) -> None:
        pass

    def score(self, batch: pd.DataFrame) -> pd.DataFrame:
        return batch


def direct_pass(
    table: pd.DataFrame, actors: list[ActorHandle], args: tuple[object, ...], batch_size: int
) -> pd.DataFrame:
    """The same batches as a Dataset pass, through ``ray.util.ActorPool`` (no Dataset)."""
    size = batch_rows(len(table), len(actors), batch_size)
    batches = [table.iloc[start : start + size] for start in range(0, len(table), size)]
    scored = ActorPool(actors).map(lambda actor, batch: actor.score.remote(batch, *args), batches)
    return pd.concat(list(scored), ignore_index=True)


def pass_overhead(rows: int = 64, repeats: int = 20) -> None:
    """Prints the median seconds of a pass of ``rows`` echoed rows: Dataset vs ActorPool."""
    table = pd.DataFrame({"id": [f"r{i}" for i in range(rows)], "question": ["x" * 200] * rows})
    print(f"\nper-pass overhead: {rows} rows, echo engines, median of {repeats} passes")
    for count in (1, 2):
        engines = ScoringActors(
            Echo, "", ScoringResources(actors=count, cpus=0), ActorSlot(), None, None
        )
        handles = engines._started()
        runs: dict[str, Callable[[], pd.DataFrame]] = {
            "ray data -> actors": lambda h=handles: scoring_pass(table, h, "score", (), 64),
            "actors direct": lambda h=handles: direct_pass(table, h, (), 64),
        }
        medians = {}
        for name, run in runs.items():
            for _ in range(3):
                run()
            medians[name] = statistics.median(timed(run)[0] for _ in range(repeats))
        extra = medians["ray data -> actors"] - medians["actors direct"]
        print(
            "  "
            + ", ".join(f"{name} {seconds:.3f} s" for name, seconds in medians.items())
            + f" ({count} actor(s)): the Dataset adds {extra:.3f} s a pass"
        )
        engines.close()


def ray_data_pass(table: pd.DataFrame, arguments: dict[str, object], cpus: int) -> pd.DataFrame:
    """One Ray Data execution over ``table`` on a fresh one-actor pool (the base model)."""
    return (
        ray.data.from_pandas(table)
        .map_batches(
            PerPassScorer,
            fn_constructor_kwargs=arguments,
            compute=ray.data.ActorPoolStrategy(size=1),
            num_cpus=cpus,
            batch_size=len(table),
            batch_format="pandas",
        )
        .to_pandas()
    )


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
    parser.add_argument("--naive-max", type=int, default=16, help="rows for the naive loop")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="N 16 32, 2 repeats")
    parser.add_argument("--overhead", action="store_true", help="the per-pass overhead alone")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.repeats = [16, 32], 2
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    os.environ.setdefault(*IDLE_WORKERS_LIVE)  # as `ray-asd run` starts its local Ray
    ray.data.DataContext.get_current().enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    torch.set_num_threads(args.threads)
    if args.overhead:
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
        pass_overhead()
        ray.shutdown()
        return
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

    # The runner's actor lives through the Ray Data passes: one logical CPU each, both using
    # all --threads threads when they compute (one at a time, as in a trial).
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    resources = ScoringResources(actors=1, cpus=1, batch_size=max(args.sizes))
    with tempfile.TemporaryDirectory() as folder:
        engines = ScoringActors(StudentScorer, config, resources, ActorSlot(), None, args.threads)
        pool = PoolAnswers(config, student, Path(folder) / "trial" / "adapters", engines)
        arguments = {"config": config, "cache_dir": None, "threads": args.threads}
        methods: dict[str, Callable[[pd.DataFrame], pd.DataFrame]] = {
            "actors": lambda table: pool(table, ()),
            "actors direct": lambda table: direct_pass(
                table, engines._started(), ((), None, config), resources.batch_size
            ).drop(columns=[MODEL_SECONDS]),
            "ray data": lambda table: ray_data_pass(table, arguments, cpus=1),
            "plain loop": lambda table: answer_table(config, task, student, table),
            "naive loop": lambda table: pd.concat(
                [answer_table(config, task, student, table.iloc[[i]]) for i in range(len(table))]
            ),
        }
        small = seeds.head(min(args.sizes))
        for run in methods.values():  # warm-up: first-call allocations, the actor's start
            run(small)
        seconds: dict[tuple[str, int], list[float]] = {}
        tokens: dict[tuple[str, int], int] = {}
        model_seconds: dict[int, list[float]] = {}
        for repeat in range(args.repeats):
            for n in args.sizes:
                for name, run in methods.items():
                    naive = name == "naive loop"
                    if naive and n != args.sizes[0]:  # its rate does not depend on N
                        continue
                    table = seeds.head(min(n, args.naive_max) if naive else n)
                    before = pool.model_seconds
                    took, answered = timed(lambda run=run, table=table: run(table))
                    seconds.setdefault((name, n), []).append(took)
                    prompts = [task.prompt(q) for q in table["question"]]
                    prompt_tokens = sum(len(student.tokenizer(p)["input_ids"]) for p in prompts)
                    tokens[(name, n)] = prompt_tokens + int(answered["answer_tokens"].sum())
                    if name == "actors":
                        model_seconds.setdefault(n, []).append(pool.model_seconds - before)
                    print(f"  repeat {repeat} N={n:<4} {name:11} {took:7.2f} s")
        pool.close()
        pass_overhead()
    ray.shutdown()

    # Sizes in the order given, methods in the order run (dict order of the rounds).
    ordered = {key: seconds[key] for n in args.sizes for key in seconds if key[1] == n}
    repeated = {key: [tokens[key]] * len(times) for key, times in ordered.items()}
    rows = throughput_rows(ordered, repeated, "plain loop")
    for row in rows:
        flops = 2 * params * float(row["tok/s"])
        naive = row["method"] == "naive loop"
        row["rows"] = min(int(row["size"]), args.naive_max) if naive else row["size"]
        row["GFLOP/s"] = flops / 1e9
        row["of roofline"] = f"{flops / peak:.1%}"
    print(f"\nsize = N seeds (rows: those the method answered); roofline {peak / 1e9:.0f} GFLOP/s")
    print_table(rows)
    for n in args.sizes:
        inside = statistics.median(model_seconds[n])
        whole = statistics.median(seconds[("actors", n)])
        print(
            f"N={n}: actors {inside:.2f} s model time in the actor, {whole - inside:.2f} s "
            "overhead (adapter check, batching, transfers)"
        )


if __name__ == "__main__":
    main()
