"""A small experiment with known numbers, shared by the analysis and the report tests.

Task arith, student tiny, strategies random / static / loss, seeds 0 and 1 (the grid says
seeds 0, 1, 2: seed 2 never ran). Budgets: base model 0 items, warm-up 4, iterations t = 0, 1
at 8 and 12 items. The loss trial of seed 1 failed after t = 0 (so its items have no
final-iteration scores). random and static read nothing from the student (tags scorer none,
selector uniform): the A/A pair. Their items carry no scores (as an older run's). loss logs
test accuracy per difficulty (1, 2) at its steps. Every number the tests expect is worked out
by hand in the test that checks it.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

ITEMS_AT_STEP = {-2: 0, -1: 4, 0: 8, 1: 12}
TOKENS_PER_ITEM = 100
# (strategy, seed) -> accuracy at steps -2, -1, 0, 1 (None: not logged)
ACCURACY: dict[tuple[str, int], list[float | None]] = {
    ("random", 0): [0.1, 0.2, 0.3, 0.5],
    ("random", 1): [0.1, 0.2, 0.4, 0.4],
    ("static", 0): [0.1, 0.2, 0.3, 0.4],
    ("static", 1): [0.1, 0.2, 0.2, 0.6],
    ("loss", 0): [0.1, 0.2, 0.4, 0.6],
    ("loss", 1): [0.1, 0.2, 0.5, None],
}
STATUS = {("loss", 1): "FAILED"}
GRID = {"strategy": ["random", "static", "loss"], "student": ["tiny"], "task": ["arith"]}
GRID_SEEDS = ["0", "1", "2"]

PARTS = {"random": ("none", "uniform"), "static": ("none", "uniform"), "loss": ("loss", "top_k")}
# loss's test accuracy on difficulty 1 and 2 items at steps -2, -1, 0, 1, per seed.
DIFFICULTY: dict[int, list[tuple[float, float] | None]] = {
    0: [(0.2, 0.0), (0.3, 0.1), (0.6, 0.2), (0.9, 0.3)],
    1: [(0.2, 0.0), (0.3, 0.1), (0.7, 0.3), None],
}
# The loss trials' accepted items: (seed, iteration, seed_score, score, student_correct), then
# (seed_score_first, correct_first, seed_score_final, correct_final): None where not known.
Judged = tuple[float, bool, float | None, bool | None]
LOSS_ITEMS: list[tuple[int, int, float, float, bool, Judged]] = [
    (0, 0, 1.0, 1.5, True, (1.0, True, 0.5, True)),
    (0, 0, 2.0, 1.0, True, (2.0, False, 0.5, True)),
    (0, 0, 3.0, 3.5, True, (3.0, False, 1.0, True)),
    (0, 0, 4.0, 5.0, True, (3.0, False, 1.0, False)),
    (0, 1, 5.0, 6.0, True, (5.0, True, 2.0, True)),
    (0, 1, 6.0, 7.0, False, (6.0, False, 2.0, False)),
    (0, 1, 7.0, 0.5, True, (7.0, False, 3.0, False)),
    (1, 0, 10.0, 12.0, True, (10.0, True, None, None)),
    (1, 0, 20.0, 25.0, False, (20.0, False, None, None)),
    (1, 0, 30.0, 28.0, False, (30.0, False, None, None)),
]


def difficulty(strategy: str, seed: int, step: int) -> dict[str, float]:
    """The trial's per-difficulty metrics at ``step`` (none for random and static)."""
    values = DIFFICULTY[seed][list(ITEMS_AT_STEP).index(step)] if strategy == "loss" else None
    return {f"accuracy_difficulty_{k + 1}": v for k, v in enumerate(values or ())}


def curves() -> pd.DataFrame:
    """The curves table `ray_asd.report.data` builds for this experiment."""
    rows = []
    for (strategy, seed), accuracies in ACCURACY.items():
        for step, accuracy in zip(ITEMS_AT_STEP, accuracies, strict=True):
            if accuracy is None:
                continue
            n = ITEMS_AT_STEP[step]
            rows.append(
                {
                    "task": "arith",
                    "student": "tiny",
                    "strategy": strategy,
                    "seed": str(seed),
                    "step": step,
                    "n_synthetic": float(n),
                    "teacher_tokens": float(n * TOKENS_PER_ITEM),
                    "accuracy": accuracy,
                    **difficulty(strategy, seed, step),
                }
            )
    return pd.DataFrame(rows)


def runs() -> pd.DataFrame:
    """The runs table's strategy keys and parts (the tags `ray_asd.report.data` reads)."""
    return pd.DataFrame(
        [
            {"strategy": s, "seed": str(seed), "scorer": PARTS[s][0], "selector": PARTS[s][1]}
            for s, seed in ACCURACY
        ]
    )


def item_records(strategy: str, seed: int) -> list[dict[str, Any]]:
    """The trial's items.jsonl rows: its scored items, plus a rejected item and a warm-up
    item that the analyses must leave out."""
    records: list[dict[str, Any]] = [
        {"id": "w-0", "seed_id": "s0", "iteration": -1, "accepted": True},
        {"id": "t0-x", "seed_id": "s1", "iteration": 0, "accepted": False, "score": 99.0},
    ]
    if strategy != "loss":  # random and static have no scorer: no scores
        return [*records, {"id": "t0-0", "seed_id": "s2", "iteration": 0, "accepted": True}]
    for k, (item_seed, iteration, seed_score, score, correct, judged) in enumerate(LOSS_ITEMS):
        if item_seed == seed:
            first, first_correct, final, final_correct = judged
            later = {"seed_score_final": final, "correct_final": final_correct}
            records.append(
                {
                    "id": f"t{iteration}-{k}",
                    "seed_id": f"s{k}",
                    "iteration": iteration,
                    "accepted": True,
                    "seed_score": seed_score,
                    "score": score,
                    "student_correct": correct,
                    "seed_score_first": first,
                    "correct_first": first_correct,
                    **({} if final is None else later),  # an unfinished trial: not written
                    "scorer": "loss",
                }
            )
    return records


def items() -> pd.DataFrame:
    """The items table `ray_asd.report.data` builds for this experiment."""
    rows = []
    for strategy, seed in ACCURACY:
        for record in item_records(strategy, seed):
            if record["accepted"] and record["iteration"] >= 0:
                rows.append(
                    {
                        "task": "arith",
                        "student": "tiny",
                        "strategy": strategy,
                        "seed": str(seed),
                        **record,
                    }
                )
    return pd.DataFrame(rows)
