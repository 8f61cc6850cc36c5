"""The student's answers to a table and the student columns computed from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from ray_asd.answers import answer_table
from ray_asd.config_file import load_config
from ray_asd.tasks import load_table, make_task
from tests.helpers.fake_student import FakeStudent


def test_only_the_columns_asked_for_are_computed() -> None:
    config = load_config(None, [])
    task = make_task("arith")
    table = load_table(task, config.task.test).head(3)
    student = FakeStudent(dict(zip(table["question"], table["answer"], strict=True)), skill=16)
    plain = answer_table(config, task, student, table)
    assert {"student_answer", "answer_tokens", "correct"} <= set(plain.columns)
    assert not {"answer_nll", "reference_nll", "grad_embedding"} & set(plain.columns)
    scored = answer_table(config, task, student, table, ("reference_nll", "grad_embedding"))
    assert "answer_nll" not in scored
    prompts = [task.prompt(q) for q in table["question"]]
    references = [" " + a for a in table["answer"]]
    totals = student.nll(prompts, references, batch_size=1, reduction="sum", add_eos=True)
    lengths = [n + 1 for n in student.count_tokens(references)]  # + the EOS
    assert scored["reference_nll"].tolist() == pytest.approx((totals / lengths).tolist())
    assert len(scored["grad_embedding"].iloc[0]) == 4


@pytest.mark.slow
def test_loss_scores_the_graded_answer_and_its_stop_token(model_cache: Path) -> None:
    from ray_asd.student.model import Student

    student = Student.load("tiny:", cache_dir=model_cache, device="cpu")
    config = load_config(None, ["student.model=tiny:", "student.max_new_tokens=16"])
    task = make_task("arith")
    table = load_table(task, config.task.test).head(4)
    scored = answer_table(config, task, student, table, ("answer_nll",))
    prompts = [task.prompt(q) for q in table["question"]]
    graded = scored["student_answer"].tolist()
    assert graded == [task.cut_after_final(a) for a in graded]  # cut as the checker reads it
    expected = student.nll(prompts, graded, batch_size=4, reduction="mean", add_eos=True)
    assert scored["answer_nll"].tolist() == pytest.approx(expected.tolist())
