"""`ray-asd data check`: does every reference answer extract, and does it pass its own checker?

A reference answer that does not self-check means the task's extractor or checker disagrees
with the data; every experiment on that data would then mis-score the student. Users run this
on their files before an experiment.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass, field

import pandas as pd

from ray_asd.tasks.base import Task
from ray_asd.tasks.loading import question_key, repeats

EXCERPT_CHARS = 160
PROGRESS_SECONDS = 5.0


@dataclass(frozen=True)
class Failure:
    """One row whose reference answer does not extract or does not self-check."""

    source_row: int
    id: str
    reason: str
    answer_excerpt: str


@dataclass
class DataCheckReport:
    """Counts over a whole table plus the first failures (all failures are counted)."""

    task: str
    origin: str
    rows: int = 0
    extracted: int = 0
    self_correct: int = 0
    failures: list[Failure] = field(default_factory=list)
    # Questions that repeat an earlier row's (up to whitespace); the first as (earlier, row).
    repeated: int = 0
    first_repeat: tuple[int, int] | None = None
    # For tasks with built-in data: how the checked rows' questions compare with it.
    in_builtin: int | None = None
    builtin_missing: int | None = None
    # With held-out data given: checked questions that are also held-out ones (a leak when the
    # checked table is the seed pool); the first as (row, held-out row).
    in_held_out: int | None = None
    first_leak: tuple[int, int] | None = None

    @property
    def n_failures(self) -> int:
        return self.rows - self.self_correct

    def to_dict(self) -> dict:
        return {**asdict(self), "n_failures": self.n_failures}


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 3] + "..."


def check_table(
    task: Task,
    table: pd.DataFrame,
    origin: str,
    *,
    max_failures: int = 5,
    compare_builtin: bool = False,
    held_out: pd.DataFrame | None = None,
) -> DataCheckReport:
    """Extracts and self-checks every reference answer of ``table``.

    Args:
        task: the task whose extractor and checker are under test.
        table: a loaded table (TABLE_COLUMNS).
        origin: where the table came from, for the report.
        max_failures: how many failing rows to keep in the report (all are counted).
        compare_builtin: also compare the questions with the task's built-in data set.
        held_out: test data (TABLE_COLUMNS) whose questions the table must not hold.

    Returns:
        The report; ``report.n_failures == 0`` means the data and the task agree.
    """
    report = DataCheckReport(task=task.name, origin=origin, rows=len(table))
    last_progress = started = time.monotonic()
    for i, row in enumerate(table.itertuples(index=False), start=1):
        final = task.extract(row.answer)
        if final is None:
            reason = "no final answer in the reference answer"
            if task.oracle is not None and task.oracle.answer(row.question) is None:
                reason += ", and the task's solver has none (unsolvable, or not in its format)"
        else:
            report.extracted += 1
            if task.is_correct(row.question, row.answer, row.answer):
                report.self_correct += 1
                reason = ""
            else:
                reason = f"reference final answer {final!r} fails the task's checker"
        if reason and len(report.failures) < max_failures:
            report.failures.append(Failure(row.source_row, row.id, reason, _excerpt(row.answer)))
        if time.monotonic() - last_progress > PROGRESS_SECONDS:
            last_progress = time.monotonic()
            print(
                f"[data check] {i}/{len(table)} rows, {last_progress - started:.0f} s",
                file=sys.stderr,
            )
    pairs = repeats(map(question_key, table["question"]), table["source_row"])
    report.repeated, report.first_repeat = len(pairs), pairs[0] if pairs else None
    if compare_builtin and task.builtin is not None:
        builtin = {question_key(q) for q in task.builtin("all")["question"]}
        checked = {question_key(q) for q in table["question"]}
        report.in_builtin = sum(question_key(q) in builtin for q in table["question"])
        report.builtin_missing = len(builtin - checked)
    if held_out is not None:
        leaks = shared_questions(table, held_out)
        report.in_held_out, report.first_leak = len(leaks), leaks[0] if leaks else None
    return report


def shared_questions(seeds: pd.DataFrame, held_out: pd.DataFrame) -> list[tuple[int, int]]:
    """(seed row, held-out row) for every seed whose question is also a held-out one (up to
    whitespace): training on it would leak the test into the score."""
    rows = dict(zip(map(question_key, held_out["question"]), held_out["source_row"], strict=True))
    keys = map(question_key, seeds["question"])
    return [
        (row, rows[key]) for key, row in zip(keys, seeds["source_row"], strict=True) if key in rows
    ]


def format_report(report: DataCheckReport) -> str:
    """The human-readable report printed by `ray-asd data check`."""

    def share(n: int) -> str:
        return f"{n}/{report.rows} ({100 * n / report.rows:.1f}%)" if report.rows else "0/0"

    lines = [
        f"task {report.task}: {report.origin}",
        f"  rows:                       {report.rows}",
        f"  reference answers extract:  {share(report.extracted)}",
        f"  references self-check:      {share(report.self_correct)}",
    ]
    if report.first_repeat is not None:
        earlier, row = report.first_repeat
        lines.append(
            f"  repeated questions:         {report.repeated} (row {row} repeats row {earlier})"
        )
    if report.first_leak is not None:
        row, test_row = report.first_leak
        lines.append(
            f"  questions in held-out data: {report.in_held_out} "
            f"(row {row} is held-out row {test_row})"
        )
    if report.in_builtin is not None:
        lines.append(f"  questions in built-in set:  {share(report.in_builtin)}")
        lines.append(f"  built-in questions absent:  {report.builtin_missing}")
    if report.failures:
        lines.append(f"  first {len(report.failures)} of {report.n_failures} failing rows:")
        lines += [
            f"    row {f.source_row} (id {f.id}): {f.reason}: {f.answer_excerpt!r}"
            for f in report.failures
        ]
    else:
        lines.append("  OK: every reference answer extracts and self-checks")
    return "\n".join(lines)
