"""``tune.scheduler`` in an experiment config: off by default, refused on a strategy
comparison and where no iteration before the last is left to compare trials at."""

from __future__ import annotations

from pathlib import Path

import pytest

from ray_asd.errors import ConfigError
from ray_asd.experiment import ExperimentConfig, load_experiment

ROOT = Path(__file__).resolve().parents[1]


def config(text: str, tmp_path: Path) -> ExperimentConfig:
    path = tmp_path / "experiment.yaml"
    path.write_text(text, encoding="utf-8")
    return load_experiment(path)


def test_no_scheduler_by_default_in_any_shipped_config() -> None:
    assert ExperimentConfig().tune.scheduler is None
    for path in sorted((ROOT / "configs").rglob("*.yaml")):
        if "grid:" in path.read_text(encoding="utf-8") and not path.name.startswith("trial"):
            assert load_experiment(path).tune.scheduler is None, path


def test_a_search_over_one_strategy_settings_takes_a_scheduler(tmp_path: Path) -> None:
    experiment = config(
        """
budget: {iterations: 4}
tune: {scheduler: {grace_period: 2}}
grid:
  strategy:
    - {scorer: loss, selector: {name: power, temperature: 0.1}}
    - {scorer: loss, selector: {name: power, temperature: 10}}
  student: ["tiny:", embedded:smollm2-135m]
""",
        tmp_path,
    )
    scheduler = experiment.tune.scheduler
    assert scheduler is not None
    assert (scheduler.name, scheduler.metric, scheduler.mode) == ("asha", "accuracy", "max")
    assert (scheduler.grace_period, scheduler.reduction_factor) == (2, 2.0)
    assert experiment.scheduler_problems("e.yaml") == []


def test_a_strategy_comparison_refuses_a_scheduler(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:  # by load_experiment, as every config problem
        config(
            "tune: {scheduler: {}}\n"
            "grid: {strategy: [random, loss, {scorer: loss, selector: top_k}]}\n",
            tmp_path,
        )
    (problem,) = str(error.value).splitlines()
    assert problem.startswith(
        f"{tmp_path / 'experiment.yaml'}: tune.scheduler: the grid compares strategies "
        "(random, loss, loss+top_k); early stopping would drop the losers"
    )


@pytest.mark.parametrize(
    ("iterations", "grace", "words"),
    [(3, 2, "at most 1"), (2, 1, "needs budget.iterations of 3 or more")],
)
def test_a_grace_period_needs_an_iteration_before_the_last(
    tmp_path: Path, iterations: int, grace: int, words: str
) -> None:
    with pytest.raises(ConfigError) as error:
        config(
            f"grid: {{strategy: [random]}}\nbudget: {{iterations: {iterations}}}\n"
            f"tune: {{scheduler: {{grace_period: {grace}}}}}\n",
            tmp_path,
        )
    assert str(error.value) == (
        f"{tmp_path / 'experiment.yaml'}: tune.scheduler.grace_period: {grace} leaves no "
        f"iteration before the last to compare trials at (budget.iterations {iterations}): "
        f"{words}"
    )


@pytest.mark.parametrize(
    ("block", "key"),
    [
        ("{name: hyperband}", "tune.scheduler.name"),
        ("{mode: best}", "tune.scheduler.mode"),
        ("{grace_period: 0}", "tune.scheduler.grace_period"),
        ("{reduction_factor: 1}", "tune.scheduler.reduction_factor"),
        ("{patience: 3}", "tune.scheduler.patience"),
    ],
)
def test_bad_scheduler_keys_are_one_line_naming_the_key(
    tmp_path: Path, block: str, key: str
) -> None:
    with pytest.raises(ConfigError, match=rf"experiment.yaml: {key}: ") as error:
        config(f"tune: {{scheduler: {block}}}\n", tmp_path)
    assert len(str(error.value).splitlines()) == 1
