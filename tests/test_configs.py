"""Every YAML file the repository ships is loaded and validated."""

import json
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


PAPER = ROOT / "configs" / "paper"
# The strategies the paper compares; each family's paper-like config runs all of them.
PAPER_STRATEGIES = {"random", "static", "loss", "loss_gt", "reward", "judge", "lion", "badge"}
FAMILIES = {
    "gsm8k": "gsm8k-model-based.yaml",
    "math": "math-llama70b-openai.yaml",
    "game24": "game24-model-based.yaml",
    "logic": "logic-model-based.yaml",
}


@pytest.mark.parametrize(("task", "name"), FAMILIES.items())
def test_a_paper_like_config_per_family(task: str, name: str) -> None:
    from ray_asd.experiment import load_experiment

    config = load_experiment(PAPER / name)
    assert config.task.name == task
    assert {s if isinstance(s, str) else s.name for s in config.grid.strategy} == PAPER_STRATEGIES
    assert len(set(map(str, config.grid.student))) >= 2  # a student axis of small models
    assert "Paper-like" in (PAPER / name).read_text(encoding="utf-8")  # not "the paper's"


def test_the_math_test_set_is_a_fixed_500_of_the_split_not_its_head(tmp_path: Path) -> None:
    from ray_asd.experiment import load_experiment
    from ray_asd.tasks import load_table, make_task

    config = load_experiment(PAPER / FAMILIES["math"])
    # MATH-lighteval's test split in its columns and order: 5,000 problems sorted by subject.
    subjects = ["algebra", "counting", "geometry", "intermediate", "number", "prealgebra", "pre"]
    rows = [
        {"problem": f"{subject} problem {i}", "solution": f"\\boxed{{{i}}}", "type": subject}
        for subject in subjects
        for i in range(715)
    ][:5000]
    fixture = tmp_path / "test.jsonl"
    fixture.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    test = load_table(
        make_task("math"), config.task.test.model_copy(update={"path": fixture, "hub": None})
    )
    assert config.task.test.split == "test" and config.eval.n == len(test) == 500
    assert test["question"].nunique() == 500
    assert {q.split()[0] for q in test["question"]} == set(subjects)  # the head is all algebra


@pytest.mark.slow  # builds both data sets: all 1,362 puzzles of 24 solved, 1,200 logic puzzles
@pytest.mark.parametrize("name", [FAMILIES["game24"], FAMILIES["logic"]])
def test_paper_configs_on_built_in_data_pass_preflight(name: str) -> None:
    from ray_asd.experiment import load_experiment
    from ray_asd.preflight import preflight

    path = PAPER / name  # their data is made here: seeds, test set and picks are counted
    assert preflight(load_experiment(path), str(path)) == []
