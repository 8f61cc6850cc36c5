"""A finished trial's process ends before Tune removes its placement group.

Tune ends a finished trial by calling its actor's ``stop``; once that returns it drops the
actor's handle and removes the trial's placement group in one step
(``RayActorManager._cleanup_actor``, ``PlacementGroupResourceManager.free_resources``). The
raylet destroys a worker still in a removed group by sending SIGTERM to its process group
(raylet.out: ``DisconnectClient: sending SIGTERM to pgid=...``), and Ray's worker handler
(``worker.py`` ``main_loop.sigterm_handler``) raises ``SystemExit(1)`` in whatever Python the
worker runs: in a trial process still exiting (torch, Ray Data and MLflow objects collected),
a weakref callback, which Python reports as ``Exception ignored in: <function WeakSet...>``
with the traceback, on the driver's console at the end of ``ray-asd run``. Every finished
trial's process ended so (its log: ``The process receives a SIGTERM``); the traceback showed
when the signal landed in a finaliser.

:class:`EndTrials` asks a finished trial's actor to exit (``__ray_terminate__``: Ray's graceful
exit, atexit handlers run) and waits for it when Tune reports the trial complete, which Tune
does before it stops the actor: a worker that has left is not in the group any more.

Ray Data's per-cluster actors (its stats actor, its usage collector: named, detached, made by
the first execution that needs them) would be placed in the group of the trial whose pass made
them (Tune's groups capture child tasks), destroyed with it at that trial's end, and made again
by the next trial. :meth:`EndTrials.setup` runs one row through Ray Data from the driver first,
so they live outside every trial's group.

It then starts the worker processes the trials' passes run in (`dataplane.warm_workers`: one
per node, importing the engines' module in the background). The raylet gives a task only a
worker started with the task's runtime env, and a trial's tasks inherit its actor's: the job's
plus the variables Tune adds to every trainable (``PL_DISABLE_FORK``,
`ray.tune.execution.class_cache`), so these are started with that env. Before, the first
trial's first pass waited for a new worker (``raylet.out``: ``Started worker process`` at that
pass) and its import: 9-11 s of a 0.1 s pass on the 2-core machine.
"""

from __future__ import annotations

import os
from typing import Any

import pandas as pd
import ray
from ray import tune
from ray.tune.execution.class_cache import DEFAULT_ENV_VARS, ENV_VARS_TO_PROPAGATE
from ray.tune.experiment import Trial
from ray.tune.result import DONE

from ray_asd.runner.dataplane import quiet, warm_workers
from ray_asd.runner.scoring import StudentScorer

# The longest wait for a trial process's graceful exit (0.01-0.02 s measured, a trial holding
# torch, transformers and mlflow); one that takes longer is left to Tune's own stop, as before.
EXIT_SECONDS = 30.0


class EndTrials(tune.Callback):
    """The Tune run's callback that ends each finished trial's process itself."""

    def setup(self, **info: Any) -> None:
        """One row through Ray Data, from the driver at the start of the run, as a pass sends
        it (`dataplane.scoring_pass`: no CPU held, so it runs beside the engine pools; 3.3 s
        measured on the 2-core machine under load, once per run), then the passes' workers."""
        quiet()
        trials = {"env_vars": trial_env_vars()}  # a trial's tasks' env: passes take its workers
        ray.data.from_blocks([pd.DataFrame({"row": [0]})]).map_batches(
            lambda batch: batch,  # a lambda travels by value: its worker imports no ray_asd
            batch_size=None,
            batch_format="pandas",
            num_cpus=0,
            runtime_env=trials,
        ).materialize()
        warm_workers(trials, StudentScorer.__module__)  # every engine class's module

    def on_trial_complete(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        """The trial's actor exits, when its function has returned (``done``). A trial
        stopped early by ``tune.scheduler`` is still running its iteration: Tune stops it."""
        actor = trial.temporary_state.ray_actor
        if actor is not None and trial.last_result.get(DONE):
            ray.wait([actor.__ray_terminate__.remote()], timeout=EXIT_SECONDS)


def trial_env_vars() -> dict[str, str]:
    """The environment variables Tune gives every trial's process on top of the job's, as
    ``_ActorClassCache.get`` builds them: its defaults and the driver's values of the ones it
    propagates."""
    driver = {name: os.environ[name] for name in ENV_VARS_TO_PROPAGATE if name in os.environ}
    return {**DEFAULT_ENV_VARS, **driver}
