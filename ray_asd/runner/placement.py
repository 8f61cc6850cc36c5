"""Where a trial and its engines run, decided by construction: each trial is one placement
group on one node (``STRICT_PACK``), bundle 0 for the trial's own process (LoRA training, the
loop), bundle 1 for its scoring actors (``resources.scoring`` x ``actors``), so Tune starts a
trial only when its actors' CPUs and GPUs are reserved with it, and fractional GPUs
(``trial.gpus: 0.5``, ``scoring.gpus: 0.5``) put a trial's trainer and its engine on one GPU
of one node. Trials whose students are served by the experiment's shared engines
(``scoring.shared``) get bundle 1 only for a reward model's actors. The teacher and judge
engines are outside every trial (`teacher_pool.py`: a placement group of one GPU per shard
for a tensor-parallel vLLM engine).
"""

from __future__ import annotations

import math

import ray
from ray import tune
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from ray_asd.experiment import Cell, ResourcesConfig
from ray_asd.plan import plan

SCORING_BUNDLE = 1  # the index of the scoring actors' bundle in a trial's placement group


def trial_bundles(resources: ResourcesConfig, actors: bool) -> list[dict[str, float]]:
    """The bundles of one trial's placement group (resource kinds at 0 left out; a bundle
    that holds nothing left out, its actors then need no reservation).

    Args:
        resources: the experiment's ``resources``.
        actors: whether the trial starts scoring actors of its own (its student's, when not
            shared, or a reward model's).
    """
    trial, scoring = resources.trial, resources.scoring
    bundles = [_bundle(trial.cpus, trial.gpus)]
    if actors:
        bundles.append(_bundle(scoring.actors * scoring.cpus, scoring.actors * scoring.gpus))
    return [bundles[0], *(bundle for bundle in bundles[1:] if bundle)]


def own_actors(resources: ResourcesConfig, cell: Cell) -> bool:
    """Whether the cell's trial starts scoring actors of its own: its student's, unless the
    shared engines serve it; a reward model's, always."""
    return not resources.scoring.shared or plan(cell.config).needs_reward


def _bundle(cpus: float, gpus: float) -> dict[str, float]:
    return {kind: value for kind, value in (("CPU", cpus), ("GPU", gpus)) if value > 0}


def placement_factory(bundles: list[dict[str, float]]) -> tune.PlacementGroupFactory:
    """Tune's request for one trial: its bundles on one node."""
    return tune.PlacementGroupFactory(bundles, strategy="STRICT_PACK")


def scoring_strategy() -> PlacementGroupSchedulingStrategy | str:
    """Where a trial's scoring actors go: its placement group's scoring bundle; outside a
    trial with one (a benchmark, a test), wherever Ray finds room."""
    group = ray.util.get_current_placement_group()
    if group is None or len(group.bundle_specs) <= SCORING_BUNDLE:
        return "DEFAULT"  # not the trial's placement group: its bundle 0 is the trial's own
    return PlacementGroupSchedulingStrategy(
        group,
        placement_group_bundle_index=SCORING_BUNDLE,
        placement_group_capture_child_tasks=False,
    )


def fitting_trials(
    resources: ResourcesConfig, pools: dict[str, float], cluster: dict[str, float]
) -> int:
    """How many trials fit at once (may be < 1): each holds its own CPUs/GPUs plus its
    scoring actors', in its placement group (:func:`trial_bundles`); the teacher and judge
    pools and the shared student engines (``pools``: what they hold in all) come first."""
    scoring, trial = resources.scoring, resources.trial
    actors = 0 if scoring.shared else scoring.actors  # shared engines: counted in ``pools``
    fits = []
    for key, per_trial in (
        ("CPU", trial.cpus + actors * scoring.cpus),
        ("GPU", trial.gpus + actors * scoring.gpus),
    ):
        if per_trial > 0:
            fits.append(math.floor((cluster.get(key, 0.0) - pools.get(key, 0.0)) / per_trial))
    return min(fits, default=1)
