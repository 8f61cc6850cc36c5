"""GPU placement by construction, on a local Ray whose nodes declare logical GPUs (this CPU
machine has none): each trial's placement group (its bundle and its scoring actors' bundle,
one node), its scoring actors in it on the trial's GPU (fractional GPUs), the teacher engines'
placement groups, ``max_concurrent_trials`` sized to what the GPUs hold, and a GPU request the
cluster cannot hold refused before the run in one line (exit 2)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import ray
from ray.cluster_utils import Cluster
from ray.util.placement_group import PlacementGroup, placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from ray_asd.cli import main
from ray_asd.config import TeacherConfig
from ray_asd.config_file import read_config
from ray_asd.experiment import Cell, ExperimentConfig, ResourcesConfig, ScoringResources
from ray_asd.runner.checks import Pool, resource_requests, trial_group, unmet_requests
from ray_asd.runner.placement import fitting_trials, own_actors, placement_factory, trial_bundles
from ray_asd.runner.scoring import ActorSlot, ScoringActors
from ray_asd.runner.teacher_pool import _placement

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "configs" / "smoke.yaml"
PAPER = ROOT / "configs" / "paper" / "gsm8k-qwen72b-vllm.yaml"
SHARING = {"trial": {"cpus": 1, "gpus": 0.5}, "scoring": {"actors": 1, "cpus": 1, "gpus": 0.5}}
TENSOR_PARALLEL = TeacherConfig.model_validate(
    {"backend": "vllm", "model": "org/teacher", "vllm": {"tensor_parallel_size": 2}}
)


def resources(**sections: Any) -> ResourcesConfig:
    return ResourcesConfig.model_validate(sections)


def cell(strategy: str = "loss", reward: bool = False) -> Cell:
    data: dict[str, Any] = {"strategy": strategy, "student": {"model": "tiny:"}}
    if reward:
        data.update(strategy="reward", reward={"model": "tiny:"})
    return Cell("c", ExperimentConfig.model_validate(data), {})


# ---- pure: the bundles --------------------------------------------------------------------


def test_a_trial_holds_its_scoring_actors_in_a_second_bundle_on_its_node() -> None:
    config = resources(
        trial={"cpus": 4, "gpus": 0.5}, scoring={"actors": 2, "cpus": 1, "gpus": 0.25}
    )
    factory = placement_factory(trial_bundles(config, actors=True))
    assert factory.bundles == [{"CPU": 4.0, "GPU": 0.5}, {"CPU": 2.0, "GPU": 0.5}]
    assert factory.strategy == "STRICT_PACK"  # one node: trainer and engines share its GPU
    # Kinds at 0 are left out, and so is a bundle that holds nothing.
    free = resources(trial={"cpus": 1}, scoring={"cpus": 0})
    assert trial_bundles(free, actors=True) == [{"CPU": 1.0}]


def test_shared_engines_leave_a_trial_only_its_reward_model_s_bundle() -> None:
    shared = resources(**{**SHARING, "scoring": {**SHARING["scoring"], "shared": True}})
    assert not own_actors(shared, cell())
    assert own_actors(shared, cell(reward=True))
    assert own_actors(resources(**SHARING), cell())  # not shared: its own student engines
    assert trial_bundles(shared, actors=False) == [{"CPU": 1.0, "GPU": 0.5}]


def test_max_concurrent_trials_count_the_trial_with_its_actors_or_not_when_shared() -> None:
    cluster = {"CPU": 16.0, "GPU": 4.0}
    assert fitting_trials(resources(**SHARING), {"GPU": 1.0}, cluster) == 3  # 0.5 + 0.5 each
    shared = resources(**{**SHARING, "scoring": {**SHARING["scoring"], "shared": True}})
    # The shared engines (here 1 GPU) are in the pools; a trial holds half a GPU.
    assert fitting_trials(shared, {"GPU": 2.0}, cluster) == 4


def test_a_trial_and_its_actors_that_fit_no_node_together_are_one_line() -> None:
    nodes = [{"CPU": 8.0, "GPU": 1.0}]
    apart = resources(trial={"cpus": 1, "gpus": 1}, scoring={"actors": 1, "cpus": 1, "gpus": 1})
    assert unmet_requests(resource_requests(apart, []), nodes) == []  # each alone fits
    assert unmet_requests(trial_group(apart), nodes) == [
        "resources.scoring.gpus: 2 CPU + 2 GPU per trial and its 1 scoring actor(s), on one "
        "node, but the cluster's 1 node(s) have at most 8 CPU and 1 GPU each"
    ]
    assert unmet_requests(trial_group(resources(**SHARING)), nodes) == []


def test_the_paper_config_scores_on_its_trial_s_gpu_and_fits_the_cluster_s_nodes() -> None:
    config, _ = read_config(ExperimentConfig, PAPER, [], "experiment")
    scoring, trial = config.resources.scoring, config.resources.trial
    assert scoring.gpus > 0  # a 1B student scores on a GPU, not on CPU
    assert trial.gpus + scoring.actors * scoring.gpus == 1.0  # one GPU per trial, shared
    # cluster.yaml's node types: g5.2xlarge (8 CPUs, 1 GPU) for trials, g5.12xlarge (48, 4)
    # for the tensor-parallel teacher engines.
    nodes = [{"CPU": 8.0, "GPU": 1.0}] * 4 + [{"CPU": 48.0, "GPU": 4.0}] * 2
    pools = [Pool("teacher", config.teacher, config.resources.teacher)]
    requests = resource_requests(config.resources, pools) + trial_group(config.resources)
    assert unmet_requests(requests, nodes) == []


# ---- on a local Ray with logical GPUs -------------------------------------------------------


@pytest.fixture(scope="module")
def gpu_cluster() -> Iterator[Cluster]:
    """A head with no CPUs and two workers of 4 CPUs and 2 GPUs each (logical: Ray only
    counts them). The process's other cluster, if any, is rejoined afterwards."""
    previous = ray.get_runtime_context().gcs_address if ray.is_initialized() else None
    ray.shutdown()
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False}
    )
    for _ in range(2):
        cluster.add_node(num_cpus=4, num_gpus=2)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address)
    try:
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()
        if previous is not None:
            ray.init(address=previous)


class GpuReport:
    """A scoring actor that says where it runs."""

    def __init__(self, config: str, cache_dir: str | None, threads: int | None) -> None:
        pass

    def where(self) -> dict[str, Any]:
        return _where()


def _where() -> dict[str, Any]:
    context = ray.get_runtime_context()
    group = ray.util.get_current_placement_group()
    return {
        "node": context.get_node_id(),
        "gpus": ray.get_gpu_ids(),
        "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "group": group.id.hex() if group else None,
    }


@ray.remote
class Trial:
    """Stands in for Tune's trial process: bundle 0 of its placement group, child tasks and
    actors captured (as Tune schedules a trainable), scoring actors started as a trial does."""

    def run(self, scoring: ScoringResources) -> tuple[dict[str, Any], dict[str, Any]]:
        actors = ScoringActors(GpuReport, "x", scoring, ActorSlot(), None, None)
        (actor,) = actors._started()
        return _where(), ray.get(actor.where.remote())


def _trial_group(config: ResourcesConfig) -> PlacementGroup:
    factory = placement_factory(trial_bundles(config, actors=True))
    return placement_group(factory.bundles, strategy=factory.strategy)


def _start_trial(group: PlacementGroup, config: ResourcesConfig) -> Any:
    strategy = PlacementGroupSchedulingStrategy(
        group, placement_group_bundle_index=0, placement_group_capture_child_tasks=True
    )
    return Trial.options(
        num_cpus=config.trial.cpus, num_gpus=config.trial.gpus, scheduling_strategy=strategy
    ).remote()


@pytest.mark.ray
@pytest.mark.slow
def test_a_trial_s_scoring_actor_runs_in_its_bundle_on_its_gpu(gpu_cluster: Cluster) -> None:
    config = resources(**SHARING)
    group = _trial_group(config)
    try:
        assert ray.get(group.ready(), timeout=60)
        trial, scorer = ray.get(_start_trial(group, config).run.remote(config.scoring), timeout=120)
        assert trial["group"] == scorer["group"] == group.id.hex()
        assert trial["node"] == scorer["node"]
        assert trial["gpus"] == scorer["gpus"] and len(trial["gpus"]) == 1  # one GPU, halves
        assert trial["cuda"] == scorer["cuda"]
        # Bundle 1 (the scoring actor's) is the one whose GPU share is taken.
        taken = {k: v for k, v in ray.available_resources().items() if group.id.hex() in k}
        assert taken.get(f"GPU_group_1_{group.id.hex()}", 0.0) == 0.0
        table = ray.util.placement_group_table(group)
        assert table["strategy"] == "STRICT_PACK"
        assert list(table["bundles"].values()) == [
            {"CPU": 1.0, "GPU": 0.5},
            {"CPU": 1.0, "GPU": 0.5},
        ]
    finally:
        remove_placement_group(group)


@pytest.mark.ray
@pytest.mark.slow
def test_trials_fill_the_gpus_the_teacher_engines_leave(gpu_cluster: Cluster) -> None:
    # A tensor-parallel teacher engine: a placement group of one GPU + one CPU per shard.
    options = _placement(TENSOR_PARALLEL, 1.0, 0.0)
    teacher = options["scheduling_strategy"].placement_group
    groups: list[PlacementGroup] = []
    try:
        assert ray.get(teacher.ready(), timeout=60)
        bundles = ray.util.placement_group_table(teacher)["bundles"]
        assert list(bundles.values()) == [{"CPU": 1.0, "GPU": 1.0}] * 2
        config = resources(**SHARING)
        # 4 GPUs - 2 for the teacher, 1 per trial (trainer 0.5 + engine 0.5): 2 at once.
        concurrent = fitting_trials(config, {"CPU": 2.0, "GPU": 2.0}, ray.cluster_resources())
        assert concurrent == 2
        groups = [_trial_group(config) for _ in range(concurrent + 1)]
        ready, pending = ray.wait([g.ready() for g in groups], num_returns=concurrent, timeout=60)
        assert len(ready) == concurrent
        # One trial more than that waits: the GPUs are all reserved.
        assert ray.wait(pending, timeout=2)[0] == []
    finally:
        for group in [*groups, teacher]:
            remove_placement_group(group)


@pytest.mark.ray
@pytest.mark.slow
def test_gpus_the_cluster_lacks_fail_before_the_run_in_one_line(
    gpu_cluster: Cluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = tmp_path / "runs"
    # Each fits a node alone (2 GPUs), not together: 1.5 + 1 on one node.
    overrides = ["resources.trial.gpus=1.5", "resources.scoring.gpus=1", f"storage={storage}"]
    code = main(["run", str(SMOKE), *[arg for o in overrides for arg in ("--set", o)]])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err == [
        f"ray-asd: error: {SMOKE}: resources.scoring.gpus: 2 CPU + 2.5 GPU per trial and its "
        "1 scoring actor(s), on one node, but the cluster's 3 node(s) have at most 4 CPU and "
        "2 GPU each"
    ]
    assert not (storage / "smoke").exists()  # nothing written
    code = main(
        ["run", str(SMOKE), "--set", "resources.trial.gpus=3", "--set", f"storage={storage}"]
    )
    assert code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
