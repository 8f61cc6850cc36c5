from pathlib import Path

import pytest

from ray_asd.errors import ConfigError
from ray_asd.tasks import make_task
from ray_asd.teacher import OracleTeacher, Prompts, approximate_tokens, parse_answer, parse_question
from ray_asd.teacher.prompts import MAX_QUESTION_CHARS

ARITH_SEED = "Start with 12. Add 7, then subtract 5. What is the result?"


def test_builtin_templates_render_question_and_format() -> None:
    prompts, task = Prompts.load(), make_task("gsm8k")
    written = prompts.for_writing(task, "How many {braces} in \\frac{1}{2}?")
    assert "How many {braces} in \\frac{1}{2}?" in written and written.rstrip().endswith(
        "New problem:"
    )
    answering = prompts.for_answering(task, "What is 2 + 3?")
    assert "#### <number>" in answering and "Problem: What is 2 + 3?" in answering


def test_template_override_and_errors(tmp_path: Path) -> None:
    custom = tmp_path / "answer.txt"
    custom.write_text("Q: {question}\n{answer_format}\nA:", encoding="utf-8")
    prompts = Prompts.load(answer_question=custom)
    assert prompts.for_answering(make_task("game24"), "1 2 3 4").startswith("Q: 1 2 3 4\nEnd with")
    bad = tmp_path / "bad.txt"
    bad.write_text("{questoin}", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"unknown placeholder\(s\) \['questoin'\]"):
        Prompts.load(write_question=bad)
    with pytest.raises(ConfigError, match="no such file"):
        Prompts.load(write_question=tmp_path / "missing.txt")


@pytest.mark.parametrize(
    ("completion", "question"),
    [
        (" Tom has 3 apples. How many?\n\nSolution: 3", "Tom has 3 apples. How many?"),
        ("Tom has 3 apples. How many?\nAnswer: 3", "Tom has 3 apples. How many?"),
        ("Tom has 3 apples.\nHow many?\nNew problem: another", "Tom has 3 apples.\nHow many?"),
        ("Tom has 3 apples. How many?\nProblem 2: Sue has", "Tom has 3 apples. How many?"),
        ("   \n\n", None),
        ("x" * (MAX_QUESTION_CHARS + 1), None),
    ],
)
def test_parse_question(completion: str, question: str | None) -> None:
    assert parse_question(completion) == question


def test_parse_answer_keeps_first_final_answer() -> None:
    task = make_task("gsm8k")
    assert parse_answer(task, " 2 + 3 = 5\n#### 5\n\nProblem: next\n#### 7") == "2 + 3 = 5\n#### 5"
    assert parse_answer(task, "  ") is None


def test_oracle_teacher_two_steps_and_tokens() -> None:
    task, teacher = make_task("arith"), OracleTeacher()
    written = teacher.write_questions(task, [ARITH_SEED, ARITH_SEED], [1, 2])
    assert written[0].text != written[1].text  # different request seeds, different problems
    assert teacher.write_questions(task, [ARITH_SEED], [1])[0] == written[0]  # reproducible
    answered = teacher.answer_questions(task, [w.text for w in written], [1, 2])
    for question, answer in zip(written, answered, strict=True):
        assert task.verify(question.text, answer.text)
        assert answer.prompt_tokens == approximate_tokens(
            Prompts.load().for_answering(task, question.text)
        )
        assert answer.completion_tokens == approximate_tokens(answer.text) > 0


def test_oracle_teacher_unparsable_seed_and_missing_oracle() -> None:
    teacher = OracleTeacher()
    output = teacher.write_questions(make_task("arith"), ["not a problem"], [0])[0]
    assert output.text is None and output.completion_tokens == 0
    with pytest.raises(ConfigError, match="task 'gsm8k' has no programmatic oracle"):
        teacher.write_questions(make_task("gsm8k"), ["q"], [0])


def test_approximate_tokens() -> None:
    assert approximate_tokens("12 + 7 = 19.\n#### 19") == 11  # each "#" is a mark
