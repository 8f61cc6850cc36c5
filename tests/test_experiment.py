"""Experiment configs: the grid's cells, per-axis blocks, and one error line per bad key."""

import subprocess
import sys
from pathlib import Path

import pytest

from ray_asd.errors import ConfigError
from ray_asd.experiment import cells, load_experiment, rung_metrics

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "experiment.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_grid_is_the_product_of_its_axes(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
name: grid
student: {max_new_tokens: 32}
grid:
  strategy: [random, loss, {scorer: loss, selector: balanced}]
  student: ["tiny:", {model: "tiny:", batch_size: 4}]
  seed: [0, 1]
""",
    )
    grid = cells(load_experiment(path))
    assert len(grid) == 3 * 2 * 2
    names = [cell.name for cell in grid]
    assert len(set(names)) == len(names)
    assert "loss+balanced-tiny-2-arith-seed1" in names  # two "tiny" students get suffixes
    by_name = {cell.name: cell for cell in grid}
    second = by_name["random-tiny-2-arith-seed0"].config.student
    assert (second.batch_size, second.max_new_tokens) == (4, 32)  # the block merges over shared
    assert by_name["random-tiny-1-arith-seed0"].tags == {
        "strategy": "random",
        "student": "tiny-1",
        "task": "arith",
        "seed": "0",
    }


def test_strategies_of_a_cell_share_a_warm_up_and_seeds_do_not(tmp_path: Path) -> None:
    path = write(tmp_path, "grid: {strategy: [random, loss], seed: [0, 1]}\n")
    keys = {
        (c.tags["strategy"], c.tags["seed"]): c.warmup_key for c in cells(load_experiment(path))
    }
    assert keys["random", "0"] == keys["loss", "0"]
    assert keys["random", "0"] != keys["random", "1"]


def test_two_entries_of_one_strategy_get_distinct_names(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
grid:
  strategy:
    - {scorer: loss, selector: balanced}
    - {scorer: loss, selector: balanced, selector_params: {hard_share: 0.9}}
""",
    )
    names = [cell.name for cell in cells(load_experiment(path))]
    assert names == [
        "loss+balanced-1-smollm2-135m-arith-seed0",
        "loss+balanced-2-smollm2-135m-arith-seed0",
    ]


def test_absent_axes_keep_the_shared_settings(tmp_path: Path) -> None:
    path = write(tmp_path, "strategy: {name: static}\nseed: 7\n")
    (cell,) = cells(load_experiment(path))
    assert cell.name == "static-smollm2-135m-arith-seed7"


def test_set_overrides_reach_the_grid(tmp_path: Path) -> None:
    path = write(tmp_path, "grid: {strategy: [random]}\n")
    config = load_experiment(path, ["grid.seed=[3, 4]", "resources.scoring.actors=2"])
    assert [c.config.seed for c in cells(config)] == [3, 4]
    assert config.resources.scoring.actors == 2


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("grid: {strategy: [random, nonsense]}\n", "grid.strategy[1]"),
        ("grid: {task: [arith, {name: nope}]}\n", "grid.task[1]"),
        ("budget: {per_iteration: -4}\n", "budget.per_iteration"),
        ("grid: {student: [./no/such/model]}\n", "grid.student[0]"),
        ("student: {model: ''}\n", "student.model"),
        ("resources: {scoring: {actors: 0}}\n", "resources.scoring.actors"),
        ("grid: {seed: []}\n", "grid.seed"),
        ("grid: {seed: [0, 1, 0]}\n", "grid.seed"),
        ("grid: {strategies: [loss]}\n", "grid.strategies"),
        ("grid: {strategy: [loss, judge]}\n", "grid.strategy[1]"),  # the oracle cannot judge
        ("grid: {strategy: [reward]}\nreward: {model: ./no/such}\n", "grid.strategy[0]"),
        ("judge: {llm: {backend: oracle}}\n", "judge.llm"),
        ("reward: {backend: onnx}\n", "reward.backend"),
    ],
)
def test_a_bad_key_is_one_line_naming_it(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_experiment(write(tmp_path, text))
    message = str(error.value)
    assert len(message.splitlines()) == 1, message
    assert message.startswith(f"{tmp_path / 'experiment.yaml'}: {key}:"), message


def test_shipped_experiment_configs_validate() -> None:
    for name in ("quickstart", "smoke"):
        config = load_experiment(ROOT / "configs" / f"{name}.yaml")
        assert config.name == name
        assert len(cells(config)) >= 2


def problems(path: Path | None, overrides: list[str] | None = None) -> list[str]:
    """The lines of the ConfigError that loading ``path`` raises."""
    with pytest.raises(ConfigError) as error:
        load_experiment(path, overrides)
    return str(error.value).splitlines()


def test_a_selector_parameter_in_the_quickstart_names_its_key() -> None:
    path = ROOT / "configs" / "quickstart.yaml"
    overrides = ["strategy.selector=power", "strategy.selector_params.temperature=0"]
    lines = problems(path, overrides)
    assert (
        f"{path}: strategy.selector_params.temperature: selector 'power': temperature must "
        "be > 0, got 0.0" in lines
    )
    # The quickstart's grid.strategy replaces the shared strategy: a setting there is dead.
    lines = problems(path, [*overrides, "strategy.scorer=loss"])
    assert lines[-1] == f"{path}: strategy: grid.strategy replaces it in every cell; set it there"


def test_every_cell_problem_is_listed_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
grid:
  strategy:
    - {scorer: loss, selector: power, selector_params: {temperature: hot}}
    - loss
    - {scorer: loss, selector: softmax, selector_params: {temperature: -1}}
    - nonsense
  task: [arith, {name: arith, params: {min_ops: 0}}]
  seed: [0, 1]
""",
    )
    lines = problems(path)
    keys = [line.split(": ")[1] for line in lines]
    assert keys == [
        "grid.strategy[0].selector_params.temperature",
        "grid.task[1].params.min_ops",  # the only one given: arith's check is about it
        "grid.strategy[2].selector_params.temperature",
        "grid.strategy[3]",
    ]  # each once, though 2 tasks x 2 seeds repeat the strategies' problems


def test_grid_blocks_refuse_non_finite_numbers(tmp_path: Path) -> None:
    path = write(tmp_path, "grid: {task: [{name: arith, params: {max_number: .inf}}]}\n")
    assert problems(path) == [
        f"{path}: grid.task[0].params: max_number: inf is not a finite number"
    ]  # not also "grid.task[0]: should be a valid string": the entry is a block


def test_a_shared_strategy_string_is_valid(tmp_path: Path) -> None:
    (cell,) = cells(load_experiment(write(tmp_path, "strategy: random\n")))
    assert cell.config.strategy.name == "random"


@pytest.mark.slow  # a fresh interpreter: 1-5 s
def test_validating_every_shipped_config_imports_neither_torch_nor_ray() -> None:
    # In a fresh interpreter: this process has imported both by now. load_experiment validates
    # every cell (strategies and what they read, raters, students, tasks).
    code = (
        "import sys, pathlib\n"
        "from ray_asd.experiment import load_experiment\n"
        "for path in sorted(pathlib.Path('configs').rglob('*.yaml')):\n"
        "    load_experiment(path)\n"
        "heavy = sorted({'torch', 'transformers', 'peft', 'ray'} & set(sys.modules))\n"
        "assert not heavy, heavy\n"
    )
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_scheduler_metric_typo_is_one_line_naming_the_key_and_the_metrics(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "grid: {strategy: [loss]}\ntune: {scheduler: {metric: acuracy}}\n")
    with pytest.raises(ConfigError) as error:
        load_experiment(path)
    assert str(error.value) == (
        f"{path}: tune.scheduler.metric: 'acuracy' is not a metric every trial "
        f"reports at each iteration; did you mean 'accuracy'? "
        f"(known: {', '.join(sorted(rung_metrics()))})"
    )


@pytest.mark.parametrize(
    "metric",
    [
        "score_mean",  # a scorer's only: random and static trials lack it
        "accuracy_difficulty_3",  # a task's that knows difficulties only
        "train_last_epoch_loss",  # not in a row that the rating calls stopped
        "iteration",  # ASHA's time attribute, equal in every trial at a rung
        "phase",  # text
    ],
)
def test_a_metric_some_reports_at_a_rung_lack_is_refused(tmp_path: Path, metric: str) -> None:
    path = write(
        tmp_path, f"grid: {{strategy: [loss]}}\ntune: {{scheduler: {{metric: {metric}}}}}\n"
    )
    with pytest.raises(ConfigError, match=rf"tune.scheduler.metric: '{metric}' is not"):
        load_experiment(path)


def test_a_metric_of_every_report_at_a_rung_is_taken(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "grid: {strategy: [loss]}\ntune: {scheduler: {metric: teacher_tokens, mode: min}}\n",
    )
    scheduler = load_experiment(path).tune.scheduler
    assert scheduler is not None and (scheduler.metric, scheduler.mode) == ("teacher_tokens", "min")


def test_every_rung_metric_is_in_each_row_a_trial_reports_at_a_rung(tmp_path: Path) -> None:
    """Real loop rows on fake parts (milliseconds): a random trial's iterations (no scorer,
    no score_mean) and a row of a trial whose rating calls spent the budget (no training)."""
    from tests.test_loop import FakeJudge, config_of, run

    plain, _, _ = run(config_of("strategy.name=random"), tmp_path / "random")
    judged = ["strategy.name=judge", "judge.llm={backend: openai, model: m}"]
    spent, _, _ = run(
        config_of(*judged, "budget.teacher_tokens=400"), tmp_path / "spent", judge=FakeJudge()
    )
    rows = [
        *plain[plain["phase"] == "iteration"].iterrows(),
        *spent[spent["phase"] == "stopped"].iterrows(),
    ]
    assert [row["phase"] for _, row in rows] == ["iteration", "iteration", "stopped"]
    for _, row in rows:
        reported = set(row.dropna().index)
        assert set(rung_metrics()) <= reported, set(rung_metrics()) - reported
