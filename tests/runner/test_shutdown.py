"""The end of a Tune run: no Ray worker of it is killed by SIGTERM, none prints a traceback.

One trial shaped like ``run_cell``: in a placement group from `placement.placement_factory`,
with an actor of its own in the group's second bundle (killed when the trial ends, as
`scoring.ScoringActors.close` does) and a pass through Ray Data. Without `teardown.EndTrials`
the trial's process and Ray Data's stats actor each ended by the raylet's SIGTERM (``The
process receives a SIGTERM`` in their core-worker logs), which printed ``SystemExit: 1``
tracebacks at the end of ``ray-asd run``. The trial's code is defined in the test, so that
Ray sends it by value and its worker imports no ray_asd (~10 s of torch).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest
import ray
from ray import tune
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from tests.runner.conftest import LocalCluster


def test_a_finished_trial_and_its_actors_end_without_sigterm(
    ray_cluster: LocalCluster, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    from ray_asd.runner.placement import SCORING_BUNDLE, placement_factory
    from ray_asd.runner.teardown import EndTrials

    class Echo:
        def score(self, batch: pd.DataFrame) -> pd.DataFrame:
            return batch.assign(score=1.0)

    def trial(params: dict[str, str]) -> None:
        group = ray.util.get_current_placement_group()
        where = PlacementGroupSchedulingStrategy(group, placement_group_bundle_index=SCORING_BUNDLE)
        echo = ray.remote(Echo).options(num_cpus=1, scheduling_strategy=where).remote()
        try:
            rows = ray.data.from_blocks([pd.DataFrame({"id": ["a", "b", "c"]})])  # as dataplane
            scored = rows.map_batches(
                lambda batch: ray.get(echo.score.remote(batch)),
                batch_size=None,
                batch_format="pandas",
                num_cpus=0,
                compute=ray.data.TaskPoolStrategy(size=1),
            ).to_pandas()
            tune.report({"rows": len(scored)})
        finally:
            ray.kill(echo, no_restart=True)

    logs = Path(ray._private.worker._global_node.get_session_dir_path()) / "logs"
    before = _sizes(logs)
    tuner = tune.Tuner(
        tune.with_resources(trial, placement_factory([{"CPU": 1}, {"CPU": 1}])),
        param_space={"cell": tune.grid_search(["one"])},
        run_config=tune.RunConfig(storage_path=str(tmp_path), callbacks=[EndTrials()], verbose=0),
    )
    assert [result.metrics["rows"] for result in tuner.fit()] == [3]

    written = _written(logs, before)
    assert any(name.startswith("worker-") for name in written), f"no worker logs in {logs}"
    killed = [
        _actor(logs, name)
        for name, text in written.items()
        if name.startswith("python-core-worker-") and "receives a SIGTERM" in text
    ]
    assert killed == [], killed
    failed = [
        _actor(logs, name)
        for name, text in written.items()
        if name.startswith("worker-") and "Traceback" in text
    ]
    assert failed == [], failed
    assert "Traceback" not in capfd.readouterr().err  # what Ray forwarded to the console


def test_a_trials_pass_runs_in_a_worker_the_run_started_loading_the_engines(
    ray_cluster: LocalCluster, tmp_path: Path
) -> None:
    """`teardown.EndTrials.setup` starts the workers the trials' passes run in, with a trial's
    runtime env, importing the module of the engines whose handles a pass unpickles (before:
    a new worker at the first trial's first pass, 8-11 s of imports), and that module leaves
    torch to the engines that load a model. Nothing else makes a pass worker import it here:
    this test's classes and functions travel by value."""
    from ray_asd.runner.placement import placement_factory
    from ray_asd.runner.scoring import StudentScorer
    from ray_asd.runner.teardown import EndTrials

    engines = StudentScorer.__module__

    def trial(params: dict[str, str]) -> None:
        loaded = ray.data.from_blocks([pd.DataFrame({"id": ["a"]})]).map_batches(
            lambda batch: batch.assign(  # at the pass's start
                loaded=engines in sys.modules, torch="torch" in sys.modules
            ),
            batch_size=None,
            batch_format="pandas",
            num_cpus=0,
            compute=ray.data.TaskPoolStrategy(size=1),
        )
        row = loaded.to_pandas().iloc[0]
        tune.report({"loaded": bool(row["loaded"]), "torch": bool(row["torch"])})

    tuner = tune.Tuner(
        tune.with_resources(trial, placement_factory([{"CPU": 1}, {"CPU": 1}])),
        param_space={"cell": tune.grid_search(["one"])},
        run_config=tune.RunConfig(storage_path=str(tmp_path), callbacks=[EndTrials()], verbose=0),
    )
    (result,) = tuner.fit()
    assert (result.metrics["loaded"], result.metrics["torch"]) == (True, False)


def _sizes(logs: Path) -> dict[str, int]:
    return {log.name: log.stat().st_size for log in logs.glob("*worker-*")}


def _written(logs: Path, before: dict[str, int]) -> dict[str, str]:
    """What each worker log got since ``before`` (the cluster's workers serve other tests)."""
    written = {}
    for log in logs.glob("*worker-*"):
        with log.open("rb") as file:
            file.seek(before.get(log.name, 0))
            written[log.name] = file.read().decode("utf-8", errors="replace")
    return written


def _actor(logs: Path, name: str) -> str:
    """The actor classes a worker's process served (from its .out log), and its pid."""
    pid = name.rsplit("_", 1)[-1].rsplit("-", 1)[-1].split(".")[0]
    names = {
        line.removeprefix(":actor_name:")
        for out in logs.glob(f"worker-*-{pid}.out")
        for line in out.read_text(encoding="utf-8", errors="replace").splitlines()
        if line.startswith(":actor_name:")
    }
    return f"pid {pid}: {', '.join(sorted(names)) or 'a task worker'}"
