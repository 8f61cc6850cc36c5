"""The student's GPU-hours of a paper-like grid under three designs: per-trial transformers (as
the configs run today: a trial GPU that trains plus a scoring GPU that answers), per-trial vLLM
engines (trainer and engine share the trial's GPU) and shared multi-LoRA engines (one engine
pool per base student answers for every trial; trainers hold a GPU only while they train).

The grid is read from ``configs/paper/`` (each family's model-based config: pool, test and
budget sizes, answer lengths, epochs, its 2 students x 8 strategies x 3 seeds). Per-trial
token counts follow the loop: every strategy that reads the student answers the whole pool at
each iteration (`TrialPlan.answers_seeds`), every trial answers the test set before training
and after each iteration, and ``train.mode: retrain`` trains iteration t on all (t + 1) x m
items so far, ``train.epochs`` times. The teacher's GPUs are left out: the same in every design.

Per-token speeds: the CPU rows are measured on this machine (`bench/student_engines.py`,
SmolLM2-135M with its adapter); the GPU rows are ASSUMPTIONS stated below until
`bench/gpu_check.sh` measures them on a GPU. Token lengths per family are assumptions too.

    python bench/cost_model.py            # the grid of configs/paper/, ~10 s (validates it)
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from table import print_table

from ray_asd.experiment import cells, load_experiment
from ray_asd.plan import plan

FAMILIES = {  # task family -> its model-based config
    "gsm8k": "configs/paper/gsm8k-model-based.yaml",
    "math": "configs/paper/math-llama70b-openai.yaml",
    "game24": "configs/paper/game24-model-based.yaml",
    "logic": "configs/paper/logic-model-based.yaml",
}
# ASSUMED token lengths: (prompt, student answer, reference answer) per item. Prompts are
# "Question: ...\nAnswer:"; answers about half of student.max_new_tokens.
TOKENS = {
    "gsm8k": (80, 190, 120),
    "math": (100, 380, 250),
    "game24": (40, 130, 80),
    "logic": (200, 190, 150),
}
PARAMETERS = {"Llama-3.2-1B-Instruct": 1.24e9, "Qwen2.5-1.5B-Instruct": 1.54e9}
# ASSUMED GPU speeds (one H100/H200-class GPU, bf16) for a 1.0B-parameter student, scaled as
# 1 / parameters; bench/gpu_check.sh measures the transformers ones.
GPU_1B = {
    "transformers answers": 1_500.0,  # HF generate, batch 32: ~20 ms a decode step
    "vllm answers": 15_000.0,  # one engine, one adapter, continuous batching
    "shared vllm answers": 13_500.0,  # several adapters per batch: ~10% slower kernels
    "training": 10_000.0,  # LoRA forward + backward (HF, bf16)
}
# ASSUMED teacher side: each accepted item costs 1.3 requests of half the teacher's
# max_new_tokens; the teacher pool gives each running trial 1,500 tok/s (2 replicas of a 72B
# engine, ~2,300 tok/s each, over 3 concurrent trials). A per-trial design holds its GPUs
# while it waits; a shared engine serves other trials meanwhile, a trainer is handed on.
TEACHER_REQUESTS_PER_ITEM = 1.3
TEACHER_TOKS_PER_TRIAL = 1_500.0
ENGINE_START_S = 60.0  # ASSUMED: a vLLM engine's start with CUDA graphs (once per trial)
# MEASURED on this machine (bench/student_engines.py, 2026-12-02, SmolLM2-135M, with its
# adapter, 2 cores): prompt + answer tokens per second of a scoring pass.
CPU_135M = {"transformers answers": 0.0, "vllm answers": 0.0}


@dataclass(frozen=True)
class Trial:
    family: str
    student: str
    answer_tokens: float  # prompt + answer tokens of every pass over seeds and test items
    train_tokens: float  # (prompt + reference) tokens x epochs over the iterations
    teacher_tokens: float  # completion tokens the trial waits for
    gpus: int  # GPUs a trial holds today: its own plus its scoring actors'


def trials(root: Path) -> list[Trial]:
    result = []
    for family, path in FAMILIES.items():
        experiment = load_experiment(root / path)
        for cell in cells(experiment, path):
            config = cell.config
            prompt, answer, reference = TOKENS[family]
            passes_over_seeds = config.budget.iterations if plan(config).answers_seeds else 0
            evaluations = config.budget.iterations + 1 + (1 if config.budget.warmup else 0)
            answered = passes_over_seeds * config.seeds.n + evaluations * config.eval.n
            m, t = config.budget.per_iteration, config.budget.iterations
            trained_items = m * t * (t + 1) / 2 if config.train.mode == "retrain" else m * t
            resources = experiment.resources
            gpus = resources.trial.gpus + resources.scoring.actors * resources.scoring.gpus
            result.append(
                Trial(
                    family,
                    config.student.model.split("/")[-1],
                    answered * (prompt + answer),
                    trained_items * config.train.epochs * (prompt + reference),
                    (m * t + config.budget.warmup)
                    * TEACHER_REQUESTS_PER_ITEM
                    * config.teacher.max_new_tokens
                    / 2,
                    int(gpus),
                )
            )
    return result


def gpu_hours(trial: Trial) -> dict[str, float]:
    """The trial's GPU-hours under each design (seconds of GPU held / 3600)."""
    scale = PARAMETERS[trial.student] / 1e9
    speed = {name: rate / scale for name, rate in GPU_1B.items()}
    train = trial.train_tokens / speed["training"]
    wait = trial.teacher_tokens / TEACHER_TOKS_PER_TRIAL
    answers = {name: trial.answer_tokens / speed[name] for name in speed if "answers" in name}
    return {
        "transformers per trial": trial.gpus
        * (answers["transformers answers"] + train + wait)
        / 3600,
        "vllm per trial": (answers["vllm answers"] + train + wait + ENGINE_START_S) / 3600,
        "shared vllm": (answers["shared vllm answers"] + train) / 3600,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1])
    args = parser.parse_args()
    grid = trials(args.root)
    print(f"{len(grid)} trials; GPU speeds ASSUMED (a 1B student, scaled by parameters):")
    for name, rate in GPU_1B.items():
        print(f"  {name}: {rate:,.0f} tok/s")
    rows, totals = [], {}
    for family in FAMILIES:
        for student in PARAMETERS:
            mine = [t for t in grid if t.family == family and t.student == student]
            hours = [gpu_hours(t) for t in mine]
            row: dict[str, object] = {
                "family": family,
                "student": student,
                "trials": len(mine),
                "answer Mtok": sum(t.answer_tokens for t in mine) / 1e6,
                "train Mtok": sum(t.train_tokens for t in mine) / 1e6,
            }
            for design in hours[0]:
                row[design] = sum(h[design] for h in hours)
                totals[design] = totals.get(design, 0.0) + float(row[design])  # type: ignore[arg-type]
            rows.append(row)
    print(
        "\nGPU-hours of the student per family and student (answers, training, and for the "
        "per-trial designs the teacher waits they hold their GPUs through):"
    )
    print_table(rows)
    base = totals["transformers per trial"]
    print(
        "\ngrid total: "
        + ", ".join(f"{d} {h:,.0f} GPU-h ({h / base:.2f}x)" for d, h in totals.items())
    )
    if all(CPU_135M.values()):
        ratio = CPU_135M["vllm answers"] / CPU_135M["transformers answers"]
        print(
            f"measured on this CPU (SmolLM2-135M + adapter): vLLM answers {ratio:.2f}x transformers"
        )


if __name__ == "__main__":
    main()
