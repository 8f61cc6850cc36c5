"""The Ray runner: an experiment grid on Ray Tune, per-trial scoring actors, a shared teacher
pool, MLflow tracking (DESIGN sections 3-4). Pure logic lives outside this package.

The entry points load on first use (PEP 562): a Ray worker that unpickles a function or an
actor class of a module here imports this package first, and `run.py` would bring the whole
runner with it (4.5 s on 2 cores, against 2.5 s for the engines' module `scoring.py`; 8.4 s
while `scoring.py` imported torch) into processes that need none of it.
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
