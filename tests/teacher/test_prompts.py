from pathlib import Path

import pytest

from ray_asd.errors import ConfigError
from ray_asd.tasks import TASKS, make_task
from ray_asd.teacher import Prompts, parse_answer, parse_one_step, parse_question
from ray_asd.teacher.prompts import _FIELD, MAX_QUESTION_CHARS, PLACEHOLDERS, STEPS, families


@pytest.mark.parametrize("family", families())
@pytest.mark.parametrize("step", STEPS)
def test_every_builtin_template_renders_question_and_format(family: str, step: str) -> None:
    task = make_task("gsm8k")
    prompts = Prompts.load(family)
    template = prompts.template(step, task)
    # Writing needs no answer format; answering does.
    wanted = {"question"} if step == "write_question" else PLACEHOLDERS
    assert set(_FIELD.findall(template)) == wanted
    rendered = prompts.render(step, task, "How many {braces} in \\frac{1}{2}?")
    assert "How many {braces} in \\frac{1}{2}?" in rendered
    assert ("#### <number>" in rendered) == (step != "write_question")


def test_each_task_has_its_family() -> None:
    prompts, family_of = Prompts.load(), {name: make_task(name).prompt_family for name in TASKS}
    assert family_of == {
        "gsm8k": "math_word",
        "arith": "math_word",
        "math": "math",
        "game24": "game24",
        "logic": "logic",
        "generic": "generic",
    }
    assert "Game of 24" in prompts.render("write_question", make_task("game24"), "1 2 3 4")
    assert "LaTeX" in prompts.render("answer_question", make_task("math"), "x")
    # A config's family replaces the task's.
    assert "logic puzzle" in Prompts.load("logic").render("write_question", make_task("gsm8k"), "x")


def test_template_override_and_errors(tmp_path: Path) -> None:
    custom = tmp_path / "answer.txt"
    custom.write_text("Q: {question}\n{answer_format}\nA:", encoding="utf-8")
    prompts = Prompts.load(files={"answer_question": custom})
    rendered = prompts.render("answer_question", make_task("game24"), "1 2 3 4")
    assert rendered.startswith("Q: 1 2 3 4\nEnd with")
    assert "New puzzle:" in prompts.render("write_question", make_task("game24"), "1 2 3 4")
    bad = tmp_path / "bad.txt"
    bad.write_text("{questoin}", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"unknown placeholder\(s\) \['questoin'\]"):
        Prompts.load(files={"write_question": bad})
    with pytest.raises(ConfigError, match="no such file"):
        Prompts.load(files={"one_step": tmp_path / "missing.txt"})
    with pytest.raises(ConfigError, match="unknown prompt family 'maths'; did you mean 'math'"):
        Prompts.load("maths")


@pytest.mark.parametrize(
    ("completion", "question"),
    [
        (" Tom has 3 apples. How many?\n\nSolution: 3", "Tom has 3 apples. How many?"),
        ("Tom has 3 apples. How many?\nAnswer: 3", "Tom has 3 apples. How many?"),
        ("Tom has 3 apples.\nHow many?\nNew problem: another", "Tom has 3 apples.\nHow many?"),
        ("Tom has 3 apples. How many?\nProblem 2: Sue has", "Tom has 3 apples. How many?"),
        ("Problem: Tom has 3 apples. How many?", "Tom has 3 apples. How many?"),
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


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        (
            "Problem: Sue has 2 pens and buys 3. How many?\nSolution: 2 + 3 = 5\n#### 5\nProblem:",
            ("Sue has 2 pens and buys 3. How many?", "2 + 3 = 5\n#### 5"),
        ),
        ("Sue has 2 pens. How many?\n\nsolution:\n#### 2", ("Sue has 2 pens. How many?", "#### 2")),
        ("Problem: Sue has 2 pens. How many?", ("Sue has 2 pens. How many?", None)),
        ("Solution: #### 4", (None, "#### 4")),
    ],
)
def test_parse_one_step(completion: str, expected: tuple[str | None, str | None]) -> None:
    assert parse_one_step(make_task("gsm8k"), completion) == expected
