"""The Ray runner: an experiment grid on Ray Tune, per-trial scoring actors, a shared teacher
pool, MLflow tracking (DESIGN sections 3-4). Pure logic lives outside this package.

The entry points load on first use (PEP 562): a Ray worker that unpickles a function or an
actor class of a module here imports this package first, and `run.py` would bring Tune, torch
and transformers with it (8.4 s on 2 cores) into processes that need none of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ray_asd.runner.run import Outcome, format_outcome, run_experiment

__all__ = ["Outcome", "format_outcome", "run_experiment"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from ray_asd.runner import run

        return getattr(run, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
