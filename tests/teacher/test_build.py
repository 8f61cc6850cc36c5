"""`make_teacher` and `judge_backend`: a teacher config made the oracle or an LLM teacher by
its kind, an LLM's completions cached in-process, the judge's backend found without asking a
teacher's type."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from ray_asd.config import JudgeConfig, TeacherConfig
from ray_asd.errors import ConfigError
from ray_asd.kinds import TEACHER_KINDS
from ray_asd.tasks import make_task
from ray_asd.teacher import Completion, Prompts, approximate_tokens
from ray_asd.teacher.build import MAKERS, build_prompts, judge_backend, make_teacher
from tests.helpers.openai_server import FaultyOpenAIServer, arith_teacher

SEEDS = [
    "Start with 12. Add 7, then subtract 5. What is the result?",
    "Start with 30. Subtract 4. What is the result?",
]
ORACLE = TeacherConfig()  # the default teacher


class ArithTeacher:
    """A completion backend that answers as the local OpenAI server's arith teacher does,
    tokens counted as words: the LLM teacher's wiring without a network or a model."""

    identity: dict[str, Any] = {"backend": "fake", "model": "teacher-7b"}  # noqa: RUF012

    def __init__(self) -> None:
        self.requests = 0

    def complete(self, prompts: Sequence[str], seeds: Sequence[int]) -> list[Completion]:
        self.requests += len(prompts)
        replies = [arith_teacher(p, s) for p, s in zip(prompts, seeds, strict=True)]
        return [
            Completion(r, len(p.split()), len(r.split()))
            for p, r in zip(prompts, replies, strict=True)
        ]

    def stats(self) -> dict[str, int]:
        return {"requests": self.requests}


@pytest.fixture
def server() -> Iterator[FaultyOpenAIServer]:
    with FaultyOpenAIServer(arith_teacher) as running:
        yield running


def openai_teacher(server: FaultyOpenAIServer, model: str = "teacher-7b") -> TeacherConfig:
    return TeacherConfig(backend="openai", model=model, openai={"base_url": server.base_url})


def test_every_kind_has_a_maker_and_llm_kinds_share_one() -> None:
    assert set(MAKERS) == set(TEACHER_KINDS)
    llm = {MAKERS[kind.name] for kind in TEACHER_KINDS.values() if kind.llm}
    oracle = {MAKERS[kind.name] for kind in TEACHER_KINDS.values() if not kind.llm}
    assert len(llm) == len(oracle) == 1 and llm != oracle


def test_the_oracle_counts_words_and_marks_and_has_no_completions() -> None:
    teacher = make_teacher(ORACLE)
    assert teacher.model == "oracle" and teacher.completions is None
    task = make_task("arith")
    [item] = teacher.generate(task, SEEDS[:1], [1])
    assert task.verify(item.question, item.answer) and item.calls == 2
    rendered = Prompts().render("write_question", task, SEEDS[0])
    assert item.prompt_tokens > approximate_tokens(rendered)  # + the answer_question prompt


def test_a_prompt_file_of_the_config_is_what_the_teacher_renders(tmp_path: Path) -> None:
    template = tmp_path / "write.txt"
    template.write_text("Rewrite: {question}")
    config = TeacherConfig(prompts={"family": "generic", "write_question": template})
    prompts = build_prompts(config)
    task = make_task("arith")
    assert prompts.render("write_question", task, "Q?") == "Rewrite: Q?"
    assert prompts.template("answer_question", task) == Prompts("generic").template(
        "answer_question", task
    )
    with pytest.raises(ConfigError, match="unknown prompt family 'nope'"):
        make_teacher(TeacherConfig(prompts={"family": "nope"}))


def test_an_llm_teacher_writes_through_the_completions_it_is_given() -> None:
    fake = ArithTeacher()
    config = TeacherConfig(backend="transformers", model="tiny:")  # no model loaded: given
    teacher = make_teacher(config, completions=fake)
    assert teacher.completions is fake and teacher.model == "teacher-7b"
    task = make_task("arith")
    items = teacher.generate(task, SEEDS, [1, 2])
    assert all(task.verify(i.question, i.answer) and i.calls == 2 for i in items)
    assert fake.requests == 4  # write, then answer, per seed


def test_an_llm_teacher_built_here_needs_a_cache_and_caches_its_completions(
    server: FaultyOpenAIServer, tmp_path: Path
) -> None:
    config = openai_teacher(server)
    with pytest.raises(ValueError, match="teacher_cache"):
        make_teacher(config)
    task = make_task("arith")
    first = make_teacher(config, teacher_cache=tmp_path).generate(task, SEEDS, [1, 2])
    served = server.served["ok"]
    assert served == 4 and [path.name for path in tmp_path.glob("*/*.jsonl")] == ["local.jsonl"]
    again = make_teacher(config, teacher_cache=tmp_path).generate(task, SEEDS, [1, 2])
    assert [(i.question, i.answer) for i in again] == [(i.question, i.answer) for i in first]
    assert all(i.cached == i.calls == 2 for i in again) and server.served["ok"] == served


def test_the_judge_is_the_teachers_llm_unless_it_has_its_own(
    server: FaultyOpenAIServer, tmp_path: Path
) -> None:
    fake = ArithTeacher()
    llm_teacher = make_teacher(TeacherConfig(backend="vllm", model="tiny:"), completions=fake)
    assert judge_backend(JudgeConfig(), llm_teacher) is fake
    with pytest.raises(ConfigError, match=r"judge\.llm: the oracle teacher cannot judge"):
        judge_backend(JudgeConfig(), make_teacher(ORACLE))
    own = JudgeConfig(llm=openai_teacher(server, "judge-7b"))
    with pytest.raises(ValueError, match="teacher_cache"):
        judge_backend(own, llm_teacher)
    backend = judge_backend(own, make_teacher(ORACLE), teacher_cache=tmp_path)
    assert backend.identity["model"] == "judge-7b"
    assert [path.name for path in tmp_path.glob("*/*.jsonl")] == ["local-judge.jsonl"]


@pytest.mark.slow
def test_the_oracle_charges_tokens_as_a_named_tokenizer_counts_them(model_cache: Path) -> None:
    teacher = make_teacher(TeacherConfig(tokenizer="tiny:"), model_cache)
    # SmolLM2's tokenizer (the tiny model's) splits numbers into digits; the default counts a
    # number as one token.
    assert teacher.count_tokens(" 123") == 4 and approximate_tokens(" 123") == 1
    task = make_task("arith")
    [item] = teacher.generate(task, SEEDS[:1], [1])
    prompts = Prompts()
    assert item.prompt_tokens == teacher.count_tokens(
        prompts.render("write_question", task, SEEDS[0])
    ) + teacher.count_tokens(prompts.render("answer_question", task, item.question))
