import pandas as pd

from ray_asd.tasks import TABLE_COLUMNS, make_task
from ray_asd.tasks.check import check_table, format_report


def table(rows: list[tuple[str, str]]) -> pd.DataFrame:
    records = [(str(i), i, q, a) for i, (q, a) in enumerate(rows, start=1)]
    return pd.DataFrame.from_records(records, columns=list(TABLE_COLUMNS))


def test_counts_extraction_and_self_check_failures() -> None:
    rows = [
        ("q1", "2 + 3 = 5\n#### 5"),
        ("q2", "no final answer at all"),
        ("q3", "#### 7"),
    ]
    report = check_table(make_task("gsm8k"), table(rows), "fixture")
    assert (report.rows, report.extracted, report.self_correct, report.n_failures) == (3, 2, 2, 1)
    assert report.failures[0].source_row == 2
    assert report.failures[0].reason == "no final answer in the reference answer"


def test_reference_that_extracts_but_fails_its_checker() -> None:
    rows = [("1 2 3 4", "Answer: 1 + 2 + 3 + 4 = 24")]  # 10, not 24
    report = check_table(make_task("game24"), table(rows), "fixture")
    assert (report.extracted, report.self_correct) == (1, 0)
    assert "fails the task's checker" in report.failures[0].reason


def test_failures_kept_are_capped_but_all_counted() -> None:
    rows = [(f"q{i}", "nothing") for i in range(20)]
    report = check_table(make_task("gsm8k"), table(rows), "fixture", max_failures=3)
    assert len(report.failures) == 3 and report.n_failures == 20
    assert "first 3 of 20 failing rows" in format_report(report)


def test_builtin_comparison() -> None:
    rows = [("1 1 4 6", "Answer: 4 * 6 * 1 * 1 = 24"), ("1 1 1 1", "")]
    report = check_table(make_task("game24"), table(rows), "fixture", compare_builtin=True)
    assert report.in_builtin == 1  # 1 1 1 1 is unsolvable, so not in the built-in set
    assert report.builtin_missing == 1361
    assert report.self_correct == 1


def test_an_unsolvable_puzzle_is_named_as_such() -> None:
    report = check_table(make_task("game24"), table([("1 1 1 1", "")]), "fixture")
    assert report.failures[0].reason == (
        "no final answer in the reference answer, "
        "and the task's solver has none (unsolvable, or not in its format)"
    )


def test_repeated_questions_and_held_out_questions_are_counted() -> None:
    rows = [("q1", "#### 1"), ("q2", "#### 2"), ("q1 ", "#### 1"), ("q3", "#### 3")]
    held_out = table([("q9", "#### 9"), ("q3", "#### 3")])
    report = check_table(make_task("gsm8k"), table(rows), "fixture", held_out=held_out)
    assert (report.repeated, report.first_repeat) == (1, (1, 3))
    assert (report.in_held_out, report.first_leak) == (1, (4, 2))
    text = format_report(report)
    assert "repeated questions:         1 (row 3 repeats row 1)" in text
    assert "questions in held-out data: 1 (row 4 is held-out row 2)" in text
    assert report.n_failures == 0  # counted and shown, not failures


def test_clean_data_has_no_repeat_or_leak_lines() -> None:
    report = check_table(make_task("gsm8k"), table([("q1", "#### 1")]), "f", held_out=table([]))
    assert (report.repeated, report.in_held_out) == (0, 0)
    assert "repeated" not in format_report(report) and "held-out" not in format_report(report)
