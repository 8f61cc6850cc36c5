"""The Ray runner: an experiment grid on Ray Tune, per-trial scoring actors, a shared teacher
pool, MLflow tracking (DESIGN sections 3-4). Pure logic lives outside this package."""

from ray_asd.runner.run import Outcome, format_outcome, run_experiment

__all__ = ["Outcome", "format_outcome", "run_experiment"]
