from pathlib import Path

import pytest

from ray_asd.config import TrialConfig
from ray_asd.config_file import apply_overrides, load_config
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
        ("budget: [\n", "line 2 column 1: expected the node content.*while parsing"),
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


def config_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def lines_of(path: Path | None, overrides: list[str] | None = None) -> list[str]:
    """The lines of the ConfigError that loading ``path`` raises."""
    with pytest.raises(ConfigError) as error:
        load_config(path, overrides)
    return str(error.value).splitlines()


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("train: {learning_rate: .inf}\n", "train.learning_rate"),
        ("train: {learning_rate: nan}\n", "train.learning_rate"),  # the text "nan" too
        ("generation: {near_duplicate_threshold: -.inf}\n", "generation.near_duplicate_threshold"),
        ("task: {params: {max_number: .nan}}\n", "task.params.max_number"),
        (
            "strategy: {scorer: loss, selector: power, selector_params: {temperature: .inf}}\n",
            "strategy.selector_params.temperature",
        ),
        (
            "teacher: {backend: vllm, model: org/m, vllm: {engine_kwargs: {x: [1, .inf]}}}\n",
            "teacher.vllm.engine_kwargs.x",
        ),
    ],
)
def test_non_finite_numbers_are_refused_everywhere(tmp_path: Path, text: str, key: str) -> None:
    lines = lines_of(config_file(tmp_path, text))
    assert lines[0].startswith(f"{tmp_path / 'c.yaml'}: {key}: "), lines
    assert "finite" in lines[0]


def test_duplicate_keys_are_each_one_line_naming_it(tmp_path: Path) -> None:
    path = config_file(tmp_path, "seed: 1\nbudget:\n  iterations: 2\n  iterations: 3\nseed: 2\n")
    assert lines_of(path) == [
        f"{path}: line 4: duplicate key 'iterations'",
        f"{path}: line 5: duplicate key 'seed'",
    ]


def test_a_merge_key_is_no_duplicate(tmp_path: Path) -> None:
    path = config_file(tmp_path, "seeds: &base {n: 3}\neval:\n  <<: *base\n  n: 4\n")
    assert load_config(path).eval.n == 4


def test_a_config_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\u00e9\n".encode("latin-1"))
    assert lines_of(path) == [f"{path}: not UTF-8 text (invalid continuation byte at byte 9)"]


def test_a_folder_or_missing_file_is_one_line(tmp_path: Path) -> None:
    assert lines_of(tmp_path) == [f"{tmp_path}: cannot read (Is a directory)"]
    missing = tmp_path / "nope.yaml"
    assert lines_of(missing) == [f"{missing}: cannot read (No such file or directory)"]


def test_a_strategy_may_be_just_its_name(tmp_path: Path) -> None:
    assert load_config(config_file(tmp_path, "strategy: random\n")).strategy.name == "random"
    assert load_config(None, ["strategy=static"]).strategy.name == "static"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("0", "temperature must be > 0, got 0.0"),
        ("-1", "temperature must be > 0, got -1.0"),
        ("hot", "Input should be a valid number"),
    ],
)
def test_a_parameter_the_factory_refuses_names_its_key(value: str, reason: str) -> None:
    overrides = ["strategy.scorer=loss", "strategy.selector=power"]
    lines = lines_of(None, [*overrides, f"strategy.selector_params.temperature={value}"])
    assert len(lines) == 1, lines
    assert lines[0].startswith("config: strategy.selector_params.temperature: selector 'power'")
    assert reason in lines[0]


def test_factory_problems_come_with_the_sections_own() -> None:
    overrides = ["strategy.selector=power", "strategy.selector_params.temperature=0"]
    lines = lines_of(None, [*overrides, "task.params.min_ops=x", "budget.iterations=0"])
    keys = sorted(line.split(": ")[1] for line in lines)
    assert keys == [
        "budget.iterations",
        "strategy",  # a selector without a scorer
        "strategy.selector_params.temperature",
        "task.params.min_ops",
    ]


def test_unknown_task_and_selector_parameters_name_their_key() -> None:
    lines = lines_of(None, ["task.params.max_opz=3"])
    assert lines[0].startswith("config: task.params.max_opz: task 'arith': unknown parameter")
    block = ["strategy.selector={name: balanced, hard_share: 2}", "strategy.scorer=loss"]
    (line,) = lines_of(None, block)
    assert line.startswith("config: strategy.selector_params.hard_share: selector 'balanced'")


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (["student.model=tiny:", "student.revision=v1"], "student.revision"),
        (["student.model=embedded:smollm2-135m", "student.revision=v1"], "student.revision"),
        (["student.model=./here", "student.revision=v1"], "student.revision"),
        (["teacher.revision=v1"], "teacher.revision"),  # the oracle loads no model
        (
            ["teacher.backend=openai", "teacher.model=gpt", "teacher.revision=v1"],
            "teacher.revision",
        ),
        (["reward.revision=v1"], "reward.revision"),  # no reward model
        (
            ["judge.llm={backend: transformers, model: 'tiny:', revision: v1}"],
            "judge.llm.revision",
        ),
    ],
)
def test_a_revision_pins_hub_models_only(overrides: list[str], key: str) -> None:
    (line,) = lines_of(None, overrides)
    assert line.startswith(f"config: {key}: "), line


def test_hub_models_take_a_revision() -> None:
    config = load_config(
        None,
        [
            "student.model=org/student",
            "student.revision=v1",
            "teacher.backend=vllm",
            "teacher.model=org/teacher",
            "teacher.revision=abc123",
            "reward.model=org/reward",
            "reward.revision=main",
        ],
    )
    assert (config.student.revision, config.teacher.revision) == ("v1", "abc123")
    assert config.reward.revision == "main"
