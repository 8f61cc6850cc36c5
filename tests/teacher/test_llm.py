"""The LLM teacher over the transformers backend with the embedded SmolLM2: plumbing, not
quality (it cannot teach)."""

import re
from pathlib import Path

import pytest

from ray_asd.config import TeacherConfig
from ray_asd.tasks import make_task
from ray_asd.teacher import CachedBackend, LLMTeacher, Prompts
from ray_asd.teacher.transformers import TransformersBackend

pytestmark = pytest.mark.slow  # the embedded SmolLM2 loads (~20 s) and generates

SEEDS = ["Tom has 3 apples and buys 5 more. How many apples does he have?"]


@pytest.fixture(scope="module")
def backend(model_cache: Path) -> TransformersBackend:
    config = TeacherConfig(backend="transformers", model="embedded:smollm2-135m", max_new_tokens=48)
    return TransformersBackend(config, model_cache)


def test_two_steps_write_then_answer(backend: TransformersBackend, tmp_path: Path) -> None:
    teacher = LLMTeacher(CachedBackend(backend, tmp_path, "local"), Prompts())
    task = make_task("gsm8k")
    item = teacher.generate(task, SEEDS, [7])[0]
    assert item.calls == 2 and item.error is None and item.cached == 0
    assert item.question is not None  # SmolLM2 writes *something* that parses as a question
    assert item.prompt_tokens > 60 and 0 < item.completion_tokens <= 2 * 48
    # The parsed answer, when there is one, ends at its first final-answer line.
    if item.answer is not None and re.search(task.final_pattern, item.answer, re.MULTILINE):
        assert re.search(task.final_pattern, item.answer.rstrip().splitlines()[-1])
    again = teacher.generate(task, SEEDS, [7])[0]
    assert again == type(item)(**{**item.__dict__, "cached": 2})  # same request, from the cache
    assert teacher.model == "embedded:smollm2-135m"


def test_one_step_is_one_call(backend: TransformersBackend, tmp_path: Path) -> None:
    teacher = LLMTeacher(CachedBackend(backend, tmp_path, "local"), Prompts(), "one_step")
    item = teacher.generate(make_task("gsm8k"), SEEDS, [7])[0]
    assert item.calls == 1 and 0 < item.completion_tokens <= 48 and item.prompt_tokens > 60
