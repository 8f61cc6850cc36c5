"""Preflight: data opened and counted against the sizes and picks, API key variables, the
remote-code warning; every problem at once, one line each, nothing written."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pandas as pd
import pytest
import yaml

import ray_asd.preflight
from ray_asd.config import TrialConfig
from ray_asd.config_file import load_config
from ray_asd.errors import ConfigError, DataError
from ray_asd.experiment import ExperimentConfig, load_experiment
from ray_asd.preflight import preflight
from ray_asd.tasks import DataSource, Task

ROOT = Path(__file__).resolve().parents[1]

# arith's built-in data (min_ops 1, max_ops 4 by default): 994 train rows, 200 test rows.
ARITH_TRAIN, ARITH_TEST = 994, 200
ROWS = "".join(f'{{"question": "What is {i} + 1?", "answer": "{i + 1}"}}\n' for i in range(5))


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its bytes: what a check must leave as it found it."""
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def experiment(tmp_path: Path, text: str) -> Path:
    """An experiment YAML in ``tmp_path``, with storage inside it and a 5-row data file."""
    (tmp_path / "five.jsonl").write_text(ROWS, encoding="utf-8")
    path = tmp_path / "e.yaml"
    path.write_text(f"storage: {tmp_path / 'runs'}\n{text}", encoding="utf-8")
    return path


def lines(path: Path, overrides: list[str] | None = None) -> tuple[type[Exception], list[str]]:
    """The error's type and lines from loading and preflighting ``path``; nothing written."""
    before = tree(path.parent)
    with pytest.raises((ConfigError, DataError)) as error:
        preflight(load_experiment(path, overrides), str(path))
    assert tree(path.parent) == before
    assert not (path.parent / "runs").exists()
    return type(error.value), str(error.value).splitlines()


@pytest.mark.parametrize(
    "path", sorted((ROOT / "configs").glob("*.yaml")), ids=lambda p: p.name
)  # configs/paper/ reads hub datasets: the network is not here
def test_the_shipped_local_configs_pass(path: Path) -> None:
    experiment_keys = set(ExperimentConfig.model_fields) - set(TrialConfig.model_fields)
    if experiment_keys & set(yaml.safe_load(path.read_text(encoding="utf-8"))):
        assert preflight(load_experiment(path), str(path)) == []
    else:
        assert preflight(load_config(path), str(path)) == []


def test_a_missing_and_an_empty_file_are_named_with_their_key(tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_bytes(b"")
    path = experiment(
        tmp_path,
        f"task: {{name: generic, train: {{path: {tmp_path / 'nope.jsonl'}}}, "
        f"test: {{path: {tmp_path / 'empty.jsonl'}}}}}\n",
    )
    kind, found = lines(path)
    assert kind is DataError  # every problem is in the data
    assert found == [
        f"{path}: task.train: {tmp_path / 'nope.jsonl'}: no such file",
        f"{path}: task.test: {tmp_path / 'empty.jsonl'}: the file is empty",
    ]


def test_a_bad_row_is_named_with_its_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "bad.jsonl").write_text(ROWS + "{not json\n", encoding="utf-8")
    path = experiment(
        tmp_path,
        f"task: {{name: generic, train: {{path: {tmp_path}/bad.jsonl}}, "
        f"test: {{path: {tmp_path}/five.jsonl}}}}\neval: {{n: 5}}\n",
    )
    _, found = lines(path)
    assert found == [
        f"{path}: task.train: {tmp_path}/bad.jsonl: line 6: invalid JSON "
        "(Expecting property name enclosed in double quotes)"
    ]


def test_sizes_beyond_the_data_name_both_numbers(tmp_path: Path) -> None:
    path = experiment(tmp_path, f"seeds: {{n: {ARITH_TRAIN + 1}}}\neval: {{n: 500}}\n")
    kind, found = lines(path)
    assert kind is ConfigError
    assert found == [
        f"{path}: seeds.n: {ARITH_TRAIN + 1} seeds asked for, but task.train (arith's built-in "
        f"'train' split) has {ARITH_TRAIN} rows; set seeds.n to at most {ARITH_TRAIN}",
        f"{path}: eval.n: 500 test items asked for, but task.test (arith's built-in 'test' "
        f"split) has {ARITH_TEST} rows; set eval.n to at most {ARITH_TEST}",
    ]


def test_a_limit_counts_and_is_said(tmp_path: Path) -> None:
    path = experiment(tmp_path, "task: {test: {split: test, limit: 10}}\neval: {n: 11}\n")
    _, found = lines(path)
    assert found == [
        f"{path}: eval.n: 11 test items asked for, but task.test (arith's built-in 'test' "
        "split, first 10 rows) has 10 rows; set eval.n to at most 10"
    ]


def test_picks_beyond_the_pool_only_for_selectors_that_cannot_repeat(tmp_path: Path) -> None:
    five = f"{{path: {tmp_path}/five.jsonl}}"
    task = f"task: {{name: generic, train: {five}, test: {five}}}\n"
    sizes = "seeds: {n: 5}\neval: {n: 4}\nbudget: {per_iteration: 6, iterations: 2, warmup: 9}\n"
    grid = "grid: {strategy: [random, static, loss, badge, {scorer: loss, selector: softmax}]}\n"
    _, found = lines(experiment(tmp_path, task + sizes + grid))
    path = tmp_path / "e.yaml"
    tail = "which picks a seed at most once; lower budget.per_iteration to 5 or raise seeds.n"
    # random and static draw uniformly (a fresh permutation once the pool is spent), as the
    # warm-up does: 9 warm-up items and static's 12 at once from 5 seeds are fine.
    assert found == [
        f"{path}: budget.per_iteration: 6 picks per iteration from a pool of 5 seeds, but "
        f"strategy {name!r} (grid.strategy[{i}]) selects with {selector}, {tail}"
        for i, name, selector in (
            (2, "loss", "top_k"),
            (3, "badge", "kmeans_pp"),
            (4, "loss+softmax", "softmax"),
        )
    ]


def test_the_pool_is_the_smaller_of_seeds_n_and_the_rows(tmp_path: Path) -> None:
    path = experiment(
        tmp_path, "seeds: {n: 8}\nbudget: {per_iteration: 9}\ngrid: {strategy: [loss]}\n"
    )
    _, found = lines(path)
    assert len(found) == 1 and "from a pool of 8 seeds" in found[0]


def test_each_source_is_loaded_once_per_experiment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loads: list[str] = []
    real = ray_asd.preflight.load_table

    def counted(task: Task, source: DataSource) -> pd.DataFrame:
        loads.append(source.split)
        return real(task, source)

    monkeypatch.setattr(ray_asd.preflight, "load_table", counted)
    path = experiment(tmp_path, "grid: {strategy: [random, static, loss], seed: [0, 1, 2]}\n")
    preflight(load_experiment(path), str(path))
    assert loads == ["train", "test"]  # 9 cells, one (task, source) pair each way


def test_an_unset_api_key_variable_is_named_and_no_value_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RAY_ASD_TEST_KEY", raising=False)
    monkeypatch.delenv("RAY_ASD_JUDGE_KEY", raising=False)
    teacher = "teacher: {backend: openai, model: gpt-x, openai: {api_key_env: RAY_ASD_TEST_KEY}}\n"
    judge = (
        "judge: {llm: {backend: openai, model: judge-x, "
        "openai: {api_key_env: RAY_ASD_JUDGE_KEY}}}\n"
    )
    path = experiment(tmp_path, teacher + judge + "grid: {strategy: [loss, judge]}\n")
    kind, found = lines(path)
    assert kind is ConfigError
    assert found == [
        f"{path}: teacher.openai.api_key_env: the environment variable RAY_ASD_TEST_KEY is "
        "not set; it must hold the API key of the OpenAI API",
        f"{path}: judge.llm.openai.api_key_env: the environment variable RAY_ASD_JUDGE_KEY is "
        "not set; it must hold the API key of the OpenAI API",
    ]
    monkeypatch.setenv("RAY_ASD_TEST_KEY", "sk-planted-0123456789")
    monkeypatch.setenv("RAY_ASD_JUDGE_KEY", "sk-planted-judge-0123456789")
    assert preflight(load_experiment(path), str(path)) == []


def test_a_judge_no_strategy_reads_needs_no_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RAY_ASD_JUDGE_KEY", raising=False)
    judge = "judge: {llm: {backend: openai, model: j, openai: {api_key_env: RAY_ASD_JUDGE_KEY}}}\n"
    path = experiment(tmp_path, judge + "grid: {strategy: [loss]}\n")
    assert preflight(load_experiment(path), str(path)) == []  # no judge pool starts


def test_a_local_endpoint_may_go_without_a_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RAY_ASD_TEST_KEY", raising=False)
    path = experiment(
        tmp_path,
        "teacher: {backend: openai, model: m, openai: {base_url: 'http://127.0.0.1:8000/v1', "
        "api_key_env: RAY_ASD_TEST_KEY}}\n",
    )
    assert preflight(load_experiment(path), str(path)) == []


def test_remote_code_gives_one_warning_per_key(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = experiment(
        tmp_path,
        "student: {trust_remote_code: true}\n"
        "teacher: {backend: vllm, model: org/t, vllm: {engine_kwargs: {trust_remote_code: true}}}\n"
        "grid:\n  strategy: [random, loss]\n"
        "  student: ['tiny:', {model: 'tiny:', trust_remote_code: true}]\n",
    )
    with caplog.at_level(logging.WARNING, logger="ray_asd.preflight"):
        warnings = preflight(load_experiment(path), str(path))
    assert [w.split(": ")[1] for w in warnings] == [
        "student.trust_remote_code",
        "grid.student[1].trust_remote_code",
        "teacher.vllm.engine_kwargs.trust_remote_code",
    ]
    assert [r.getMessage() for r in caplog.records] == warnings  # logged once each
    assert "allow it only for models you trust" in warnings[0]


def test_remote_code_counts_only_where_a_vllm_engine_reads_it(tmp_path: Path) -> None:
    kwargs = "vllm: {engine_kwargs: {trust_remote_code: true}}"
    path = experiment(
        tmp_path,
        f"teacher: {{backend: transformers, model: 'tiny:', {kwargs}}}\n"  # ignored there
        f"judge: {{llm: {{backend: vllm, model: org/j, {kwargs}}}}}\n"
        "grid: {strategy: [judge]}\n",
    )
    warnings = preflight(load_experiment(path), str(path))
    [warning] = warnings
    assert warning.split(": ")[1] == "judge.llm.vllm.engine_kwargs.trust_remote_code"


def test_every_problem_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAY_ASD_TEST_KEY", raising=False)
    path = experiment(
        tmp_path,
        "teacher: {backend: openai, model: m, openai: {api_key_env: RAY_ASD_TEST_KEY}}\n"
        f"task: {{name: generic, train: {{path: {tmp_path}/five.jsonl}}, "
        f"test: {{path: {tmp_path}/none.jsonl}}}}\n"
        "seeds: {n: 6}\nbudget: {per_iteration: 6}\ngrid: {strategy: [loss]}\n",
    )
    kind, found = lines(path)
    assert kind is ConfigError  # some are not data problems
    assert [line.split(": ")[1] for line in found] == [
        "task.test",
        "seeds.n",
        "budget.per_iteration",
        "teacher.openai.api_key_env",
    ]


def test_a_trial_config_gets_the_same_checks(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(
        "strategy: loss\ntask: {train: {path: nope.jsonl}}\neval: {n: 300}\n"
        "student: {model: ./no/such/model}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as error:
        preflight(load_config(path), str(path))
    assert str(error.value).splitlines() == [
        f"{path}: student.model: './no/such/model' is not a folder (and not a hub id like "
        "org/name)",
        f"{path}: task.train: nope.jsonl: no such file",
        f"{path}: eval.n: 300 test items asked for, but task.test (arith's built-in 'test' "
        f"split) has {ARITH_TEST} rows; set eval.n to at most {ARITH_TEST}",
    ]
    assert sorted(os.listdir(tmp_path)) == ["t.yaml"]


def test_seeds_that_are_test_questions_give_one_warning(tmp_path: Path) -> None:
    (tmp_path / "five.jsonl").write_text(ROWS, encoding="utf-8")
    test = "".join(f'{{"question": "What is {i} + 1?", "answer": "{i + 1}"}}\n' for i in (3, 9))
    (tmp_path / "test.jsonl").write_text(test, encoding="utf-8")
    path = experiment(
        tmp_path,
        f"task: {{name: generic, params: {{checker: numeric}}, "
        f"train: {{path: {tmp_path}/five.jsonl}}, test: {{path: {tmp_path}/test.jsonl}}}}\n"
        "seeds: {n: 5}\neval: {n: 2}\nbudget: {per_iteration: 2}\ngrid: {seed: [0, 1]}\n",
    )
    warnings = preflight(load_experiment(path), str(path))
    assert warnings == [
        f"{path}: task: 1 of the 5 seeds are also test questions (seed row 4 is test row 1): "
        "the teacher writes from them, so the test score may be inflated"
    ]
