from pathlib import Path

import pytest

from ray_asd.config import TrialConfig, apply_overrides, load_config
from ray_asd.errors import ConfigError


def test_defaults() -> None:
    config = load_config(None)
    assert config == TrialConfig()
    assert (config.task.name, config.strategy.name, config.train.mode) == (
        "arith",
        "loss",
        "retrain",
    )


def test_yaml_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "trial.yaml"
    path.write_text(
        "seed: 3\nbudget:\n  iterations: 5\nstrategy:\n  name: random\n", encoding="utf-8"
    )
    config = load_config(
        path, ["budget.iterations=2", "student.model=tiny:", "task.params={max_ops: 3}"]
    )
    assert (config.seed, config.budget.iterations, config.strategy.name) == (3, 2, "random")
    assert config.student.model == "tiny:"  # not parsed as the YAML mapping {tiny: null}
    assert config.task.params == {"max_ops": 3}


def test_every_problem_is_reported_with_its_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "budget:\n  iteratons: 3\ntrain:\n  mode: forever\nseeds:\n  n: 0\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError) as error:
        load_config(path)
    message = str(error.value)
    lines = message.splitlines()
    assert len(lines) == 3  # one line per bad key, each naming the file and the key
    for key in (
        "budget.iteratons: Extra inputs",
        "train.mode: Input should be 'retrain' or 'continue'",
        "seeds.n: Input should be greater than or equal to 1",
    ):
        assert sum(line.startswith(f"{path}: {key}") for line in lines) == 1


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("- a\n- b\n", "expected a mapping at the top level"),
        ("budget: [\n", "while parsing"),
        ("teacher:\n  backend: transformers\n", "needs teacher.model"),
        ("strategy:\n  scorer: loss\n", "give both scorer and selector"),
    ],
)
def test_bad_files(tmp_path: Path, yaml_text: str, message: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml_text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_override_errors() -> None:
    with pytest.raises(ConfigError, match="expected key=value"):
        apply_overrides({}, ["budget.iterations"])
    with pytest.raises(ConfigError, match="'seed' is not a section"):
        apply_overrides({"seed": 1}, ["seed.x=2"])
