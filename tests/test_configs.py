"""Every YAML file the repository ships is loaded and validated."""

from pathlib import Path

import jsonschema
import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

ROOT = Path(__file__).resolve().parents[1]


def test_cluster_yaml_follows_rays_launcher_schema() -> None:
    config = yaml.safe_load((ROOT / "cluster.yaml").read_text(encoding="utf-8"))
    validate_config(prepare_config(config))  # as `ray up` does; raises on any violation
    assert config["head_node_type"] in config["available_node_types"]
    assert any(cmd.endswith("-e /home/ubuntu/ray-asd") for cmd in config["setup_commands"])


def test_cluster_yaml_schema_check_can_fail() -> None:
    config = yaml.safe_load((ROOT / "cluster.yaml").read_text(encoding="utf-8"))
    config["available_node_types"]["ray.head.default"]["not_a_field"] = 1
    with pytest.raises(jsonschema.ValidationError, match="not_a_field"):
        validate_config(prepare_config(config))


@pytest.mark.parametrize("path", sorted((ROOT / "configs").rglob("*.yaml")), ids=lambda p: p.name)
def test_every_config_validates(path: Path) -> None:
    from ray_asd.config import TrialConfig
    from ray_asd.config_file import load_config
    from ray_asd.experiment import ExperimentConfig, load_experiment
    from ray_asd.plan import build_strategy
    from ray_asd.tasks import make_task

    experiment_keys = set(ExperimentConfig.model_fields) - set(TrialConfig.model_fields)
    if experiment_keys & set(yaml.safe_load(path.read_text(encoding="utf-8"))):
        load_experiment(path)  # validates every cell: strategies, students, tasks
    else:
        config = load_config(path)
        make_task(config.task.name, **config.task.params)  # task and parameters exist
        build_strategy(config)  # strategy, scorer and selector exist
    assert path.read_text(encoding="utf-8").startswith("# ray-asd "), (
        "a config opens with its command"
    )
