"""The GPU check's Python half (`bench/gpu_check.sh` runs it): a random-init student of a real
architecture built from its config (no download), one ``ray-asd trial`` on it, and its scoring
throughput against a measured matmul roofline.

    python bench/gpu_check.py build FOLDER --tokenizer TOKENIZER [--shape llama-1b]
    python bench/gpu_check.py throughput FOLDER [--seeds 256] [--batch 64] [--json OUT.json]

``build`` writes a Llama-3.2-1B-shaped model (hidden 2048, 16 layers, 32 heads, 8 KV heads,
MLP 8192, tied embeddings) with the vocabulary of ``TOKENIZER`` (a folder: the SmolLM2
tokenizer the tiny model carries, 49,152 tokens), so 1.07B parameters instead of 1.24B;
``--shape tiny`` writes a 2-layer one for a dry run on a CPU. ``throughput`` times the
student's answer pass (greedy generation: `answer_table`, bf16 autocast) and a teacher-forced
scoring pass (`Student.nll`, one forward per batch) over ``--seeds`` arithmetic seeds;
tokens/s, achieved FLOP/s (2 x parameters x tokens/s) and their share of the median FLOP/s of
an 8192^3 bf16 matmul on the same device.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from ray_asd.answers import answer_table
from ray_asd.config import TrialConfig
from ray_asd.student.model import Student
from ray_asd.tasks import load_table, make_task

SHAPES: dict[str, dict[str, int]] = {
    # meta-llama/Llama-3.2-1B's config.json, its vocabulary aside.
    "llama-1b": {
        "hidden_size": 2048,
        "num_hidden_layers": 16,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "intermediate_size": 8192,
    },
    "tiny": {
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 2,
        "intermediate_size": 128,
    },
}


def build(folder: Path, tokenizer_folder: Path, shape: str) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_folder)
    config = LlamaConfig(
        **SHAPES[shape],
        vocab_size=len(tokenizer),
        max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
        rope_theta=500000.0,
    )
    torch.manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.device(device):  # random init on the GPU: seconds, not a minute on the CPU
        model = LlamaForCausalLM(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    params = sum(p.numel() for p in model.parameters())
    print(f"built {shape}: {params / 1e6:,.0f}M parameters in {folder}")


def roofline(device: str, size: int = 8192, repeats: int = 10) -> float:
    """Median FLOP/s of a bf16 ``size``^3 matmul (1024 on a CPU)."""
    size = size if device == "cuda" else 1024
    a = torch.randn(size, size, dtype=torch.bfloat16, device=device)
    b = torch.randn(size, size, dtype=torch.bfloat16, device=device)
    times = []
    for i in range(repeats + 3):
        _sync(device)
        clock = time.perf_counter()
        a @ b
        _sync(device)
        if i >= 3:  # three warm-ups
            times.append(time.perf_counter() - clock)
    return 2 * size**3 / statistics.median(times)


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def throughput(folder: Path, seeds: int, batch: int, repeats: int) -> dict[str, object]:
    device = "cuda" if torch.cuda.is_available() else "cpu"
    config = TrialConfig.model_validate(
        {"student": {"model": str(folder), "batch_size": batch, "max_new_tokens": 128}}
    )
    task = make_task(config.task.name)
    table = load_table(task, config.task.train).head(seeds)
    student = Student.load(str(folder), device=device, autocast=True)
    params = sum(p.numel() for p in student.model.parameters())
    peak = roofline(device)
    prompts = [task.prompt(q) for q in table["question"]]
    references = [" " + a for a in table["answer"]]
    prompt_tokens = sum(student.count_tokens(prompts))
    reference_tokens = sum(student.count_tokens(references))
    answer_table(config, task, student, table.head(batch))  # warm-up
    rows = {}
    for name in ("answer pass", "scoring pass"):
        times, tokens = [], 0
        for _ in range(repeats):
            _sync(device)
            clock = time.perf_counter()
            if name == "answer pass":
                answered = answer_table(config, task, student, table)
                tokens = prompt_tokens + int(answered["answer_tokens"].sum())
            else:
                student.nll(prompts, references, batch_size=batch, add_eos=True)
                tokens = prompt_tokens + reference_tokens + len(prompts)
            _sync(device)
            times.append(time.perf_counter() - clock)
        rate = tokens / statistics.median(times)
        rows[name] = {
            "median s": statistics.median(times),
            "tok/s": rate,
            "TFLOP/s": 2 * params * rate / 1e12,
            "of roofline": 2 * params * rate / peak,
        }
    result = {
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "parameters": params,
        "seeds": seeds,
        "batch": batch,
        "roofline TFLOP/s": peak / 1e12,
        "rows": rows,
    }
    print(json.dumps(result, indent=2))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    making = commands.add_parser("build")
    making.add_argument("folder", type=Path)
    making.add_argument("--tokenizer", type=Path, required=True)
    making.add_argument("--shape", choices=sorted(SHAPES), default="llama-1b")
    timing = commands.add_parser("throughput")
    timing.add_argument("folder", type=Path)
    timing.add_argument("--seeds", type=int, default=256)
    timing.add_argument("--batch", type=int, default=64)
    timing.add_argument("--repeats", type=int, default=3)
    timing.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.command == "build":
        build(args.folder, args.tokenizer, args.shape)
        return
    result = throughput(args.folder, args.seeds, args.batch, args.repeats)
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
