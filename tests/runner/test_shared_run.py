"""``ray-asd run`` with ``resources.scoring.shared: true``: the smoke grid's two trials of one
student answered by one shared engine give the results the same trials give on engines of
their own, and the experiment resumes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ray_asd.experiment import load_experiment
from ray_asd.runner import Outcome, run_experiment
from tests.runner.conftest import LocalCluster

SMOKE = Path(__file__).resolve().parents[2] / "configs" / "smoke.yaml"
COMPARED = ["phase", "iteration", "accuracy", "n_synthetic", "teacher_tokens"]
RESULTS = ["trial", "final accuracy", "n_synthetic", "teacher tokens"]  # not the timings


def _run(storage: Path, shared: bool, resume: bool = False) -> Outcome:
    overrides = [f"storage={storage}", f"resources.scoring.shared={str(shared).lower()}"]
    return run_experiment(load_experiment(SMOKE, overrides), resume=resume)


def _metrics(outcome: Outcome) -> dict[str, pd.DataFrame]:
    trials = outcome.folder / "trials"
    return {
        folder.name: pd.read_csv(folder / "final" / "metrics.csv")[COMPARED]
        for folder in sorted(trials.iterdir())
    }


def test_shared_engines_give_the_results_of_dedicated_ones_and_resume(
    ray_cluster: LocalCluster, tmp_path: Path
) -> None:
    dedicated = _run(tmp_path / "dedicated", shared=False)
    shared = _run(tmp_path / "shared", shared=True)
    assert not dedicated.errors and not shared.errors
    assert len(shared.table) == 2  # loss and random, one student: one engine served both
    pd.testing.assert_frame_equal(shared.table[RESULTS], dedicated.table[RESULTS])
    expected = _metrics(dedicated)
    for trial, metrics in _metrics(shared).items():
        pd.testing.assert_frame_equal(metrics, expected[trial])
    resumed = _run(tmp_path / "shared", shared=True, resume=True)
    pd.testing.assert_frame_equal(resumed.table[RESULTS], shared.table[RESULTS])
