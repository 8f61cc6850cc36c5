"""The LLM judge and the judge/lion rater columns, through the openai backend against a local
server speaking the OpenAI wire format (tests/helpers/openai_server.py): a judge of arith
answers whose replies are written as real judges write them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ray_asd.config import JudgeConfig, TeacherConfig
from ray_asd.errors import ConfigError
from ray_asd.raters import Judge, Raters
from ray_asd.raters.judge import BUILTIN_PROMPT
from ray_asd.tasks import make_task
from ray_asd.teacher import OracleTeacher
from ray_asd.teacher.openai_api import OpenAIBackend
from tests.helpers.openai_server import (
    LATE_VERDICT,
    NO_VERDICT,
    FaultyOpenAIServer,
    arith_judge,
)

QUESTIONS = [
    "Start with 50. Subtract 27. What is the result?",
    "Start with 34. Add 33, then subtract 26. What is the result?",
    "Start with 12. Add 7. What is the result?",
    "Start with 9. Add 1. What is the result?",
]
ANSWERS = [
    "50 - 27 = 23.\n#### 23",  # right
    "34 + 33 = 67. 67 - 26 = 40.\n#### 40",  # wrong
    f"12 + 7 = 19. {LATE_VERDICT}\n#### 19",  # rated when reminded
    f"9 + 1 = 10. {NO_VERDICT}\n#### 10",  # never rated
]


@pytest.fixture
def server() -> Iterator[FaultyOpenAIServer]:
    with FaultyOpenAIServer(arith_judge) as running:
        yield running


def judge_backend(server: FaultyOpenAIServer) -> OpenAIBackend:
    return OpenAIBackend(
        TeacherConfig(
            backend="openai",
            model="judge-7b",
            temperature=0.0,
            openai={"base_url": server.base_url, "backoff_initial_s": 0.01},
        )
    )


def words(text: str) -> int:
    return len(text.split())  # how the local server counts tokens


def test_ratings_reminders_and_the_neutral_rating(server: FaultyOpenAIServer) -> None:
    judge = Judge.load(judge_backend(server), JudgeConfig())
    ratings = judge.rate(QUESTIONS, ANSWERS, [0, 1, 2, 3])
    assert [r.value for r in ratings] == [9.0, 2.0, 4.0, 5.5]
    assert [r.parsed for r in ratings] == [True, True, True, False]
    assert [r.calls for r in ratings] == [1, 1, 2, 2]
    assert server.served["ok"] == 6
    # Tokens are the server's usage: the first prompt, and the reply.
    first = judge.prompt(QUESTIONS[0], ANSWERS[0])
    assert ratings[0].prompt_tokens == words(first)
    assert ratings[0].completion_tokens == words(arith_judge(first, 0))
    # A reminded request carries the prompt, the reply quoted and the reminder.
    assert ratings[2].prompt_tokens > 2 * words(judge.prompt(QUESTIONS[2], ANSWERS[2]))
    once = Judge.load(judge_backend(server), JudgeConfig(attempts=1))
    assert [r.value for r in once.rate(QUESTIONS[2:], ANSWERS[2:], [0, 0])] == [5.5, 5.5]


def test_a_failed_request_is_asked_again_and_counted(server: FaultyOpenAIServer) -> None:
    backend = OpenAIBackend(
        TeacherConfig(
            backend="openai",
            model="judge-7b",
            openai={"base_url": server.base_url, "max_attempts": 1},
        )
    )
    server.inject(["400"])  # fails at once, no client retry
    (rating,) = Judge.load(backend, JudgeConfig()).rate(QUESTIONS[:1], ANSWERS[:1], [0])
    assert rating.value == 9.0 and rating.calls == 2 and rating.error is None


def test_the_config_is_the_one_home_of_the_judges_defaults(server: FaultyOpenAIServer) -> None:
    judge = Judge.load(judge_backend(server), JudgeConfig())
    assert judge.template == BUILTIN_PROMPT.read_text(encoding="utf-8")
    assert (judge.attempts, judge.neutral) == (2, 5.5)
    with pytest.raises(TypeError, match="attempts"):  # no second set of defaults on Judge
        Judge(judge.backend, judge.template)  # type: ignore[call-arg]


def test_a_custom_template_is_checked(tmp_path: Path, server: FaultyOpenAIServer) -> None:
    bad = tmp_path / "judge.txt"
    bad.write_text("Rate {answer} for {task}")
    with pytest.raises(ConfigError, match=r"unknown placeholder\(s\) \['task'\]"):
        Judge.load(judge_backend(server), JudgeConfig(prompt=bad))
    good = tmp_path / "mine.txt"
    good.write_text("Q: {question}\nA: {answer}\nRating?")
    judge = Judge.load(judge_backend(server), JudgeConfig(prompt=good))
    assert judge.prompt("What is {x}?", "") == "Q: What is {x}?\nA: (no answer)\nRating?"


SEEDS = pd.DataFrame(
    {
        "id": ["a", "b", "c"],
        "question": QUESTIONS[:3],
        "answer": ["50 - 27 = 23.\n#### 23", "34 + 33 = 67. 67 - 26 = 41.\n#### 41", ""],
        "student_answer": ANSWERS[:3],
    }
)


def test_judge_rating_column_and_its_cost(server: FaultyOpenAIServer) -> None:
    raters = Raters(make_task("arith"), judge=Judge.load(judge_backend(server), JudgeConfig()))
    rated, cost = raters(SEEDS, ("judge_rating",), {}, np.random.default_rng(0))
    assert rated["judge_rating"].tolist() == [9.0, 2.0, 4.0]
    assert cost.calls == 4 and cost.unrated == 0 and cost.failed == 0
    assert cost.tokens == cost.prompt_tokens + cost.completion_tokens > 0
    assert rated.drop(columns="judge_rating").equals(SEEDS)


def test_lion_gap_asks_the_teacher_once_per_seed(server: FaultyOpenAIServer) -> None:
    task = make_task("arith")
    raters = Raters(
        task, judge=Judge.load(judge_backend(server), JudgeConfig()), teacher=OracleTeacher()
    )
    memo: dict = {}
    rated, first = raters(SEEDS, ("lion_gap",), memo, np.random.default_rng(0))
    # The oracle answers every seed right (9); the student: right 9, wrong 2, reminded 4.
    assert rated["lion_gap"].tolist() == [0.0, 7.0, 5.0]
    assert {k: v["teacher_rating"] for k, v in memo["lion"].items()} == {
        "a": 9.0,
        "b": 9.0,
        "c": 9.0,
    }
    assert memo["lion"]["b"]["teacher_answer"] == task.oracle.answer(QUESTIONS[1])
    # 3 oracle answers + 3 teacher ratings + 4 student ratings (one reminded).
    assert first.calls == 3 + 3 + 4
    served = server.served["ok"]
    again, second = raters(SEEDS, ("lion_gap",), memo, np.random.default_rng(1))
    assert again["lion_gap"].tolist() == [0.0, 7.0, 5.0]
    assert second.calls == 4 and server.served["ok"] == served + 4  # only the student's
    # A new seed in the table: only it is answered and rated on the teacher's side.
    more = pd.concat([SEEDS, SEEDS.iloc[:1].assign(id="d")], ignore_index=True)
    _, third = raters(more, ("lion_gap",), memo, np.random.default_rng(2))
    assert third.calls == 1 + 1 + 5 and set(memo["lion"]) == {"a", "b", "c", "d"}
