"""Loading seed and test tables from local files, the Hugging Face hub, or a task's own data.

Every loader returns a pandas table with TABLE_COLUMNS. Problems in the data raise DataError
with one line naming the file, the row (line number for JSONL, data row for CSV/Parquet) and
the column, so a user can fix their file without guessing.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ray_asd.columns import DIFFICULTY
from ray_asd.errors import DataError
from ray_asd.tasks.base import TABLE_COLUMNS, HubDataset, Task

log = logging.getLogger(__name__)

SUFFIXES = {".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv", ".parquet": "parquet"}


class DataSource(BaseModel):
    """Where a task's rows come from: a local file, a hub dataset, or the task's own data.

    With neither ``path`` nor ``hub`` set, the task's built-in data is used if it has any,
    else its default hub dataset.
    """

    model_config = ConfigDict(extra="forbid")

    path: Path | None = None
    hub: str | None = Field(None, description="Hugging Face dataset id, or a local dataset folder")
    hub_config: str | None = Field(None, description="dataset configuration name, e.g. 'main'")
    revision: str | None = None
    split: str = "train"
    question_column: str | None = Field(None, description="default: the task's")
    answer_column: str | None = Field(None, description="default: the task's")
    id_column: str | None = Field(None, description="default: the row number")
    sample: int | None = Field(
        None,
        ge=1,
        description="keep N distinct questions chosen by a seeded hash (`hash_sample`), in "
        "hash order: a fixed subset of the whole split, not its head (applied before limit)",
    )
    sample_seed: int = Field(0, description="the hash's seed: another seed, another subset")
    limit: int | None = Field(None, ge=1, description="keep the first N rows")

    @model_validator(mode="after")
    def _one_origin(self) -> DataSource:
        if self.path is not None and self.hub is not None:
            raise ValueError("give either 'path' or 'hub', not both")
        return self


def load_table(task: Task, source: DataSource) -> pd.DataFrame:
    """Loads ``source`` for ``task`` into a table with columns TABLE_COLUMNS.

    Raises:
        DataError: the file is missing, empty, malformed, or lacks a needed column or value.
    """
    if source.path is not None:
        table = _load_file(task, source, source.path)
    elif source.hub is not None or task.builtin is None:
        table = _load_hub(task, source)
    else:
        table = task.builtin(source.split)
    if source.sample is not None:
        table = hash_sample(table, source.sample, source.sample_seed, origin=_origin(task, source))
    if source.limit is not None:
        table = table.head(source.limit).reset_index(drop=True)
    if task.difficulty is not None and DIFFICULTY not in table.columns:
        table[DIFFICULTY] = [task.difficulty(q) for q in table["question"]]
    return table


def hash_sample(table: pd.DataFrame, n: int, seed: int, *, origin: str) -> pd.DataFrame:
    """The ``n`` rows whose questions have the smallest SHA-256 of ``f"{seed}:{question}"``
    (whitespace collapsed), in that order; a repeated question counts once (its first row).

    The rule reads each question alone, so the subset does not depend on the rows' order or
    on which other rows the split holds (a row added to the data replaces at most one chosen
    row), and any head of it (`limit`, `eval.n`) is the same rule's smaller subset.

    Raises:
        DataError: the table has fewer than ``n`` distinct questions.
    """
    keys = table["question"].map(question_key)
    distinct = table[~keys.duplicated()]
    if len(distinct) < n:
        raise DataError(
            f"{origin}: sample {n} needs {n} distinct questions, the data has {len(distinct)}"
        )
    digests = keys[distinct.index].map(
        lambda key: hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()
    )
    return distinct.loc[digests.sort_values(kind="stable").index[:n]].reset_index(drop=True)


def _origin(task: Task, source: DataSource) -> str:
    if source.path is not None:
        return str(source.path)
    if source.hub is None and task.builtin is not None:
        return f"task {task.name}: built-in data split {source.split!r}"
    return (
        f"hub dataset {source.hub or (task.hub.path if task.hub else '?')} split {source.split!r}"
    )


def _load_file(task: Task, source: DataSource, path: Path) -> pd.DataFrame:
    if path.is_dir():
        raise DataError(f"{path}: is a folder; give a data file ({', '.join(sorted(SUFFIXES))})")
    if not path.is_file():
        raise DataError(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise DataError(f"{path}: unknown file type {path.suffix!r}; use one of {sorted(SUFFIXES)}")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty")
    try:
        special = task.read_file(path) if task.read_file is not None else None
        if special is not None:
            return _checked(special, str(path), "row")
        if kind == "jsonl":
            rows, numbers = _read_jsonl(path)
        elif kind == "csv":
            rows, numbers = _read_csv(path)
        else:
            rows = pd.read_parquet(path).to_dict(orient="records")
            numbers = list(range(1, len(rows) + 1))
    except DataError:
        raise
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    except (OSError, ValueError) as error:  # pyarrow's ArrowInvalid is a ValueError
        raise DataError(f"{path}: cannot read as {kind} ({error})") from None
    where = "line" if kind == "jsonl" else "row"
    if not rows:
        raise DataError(f"{path}: the file has no data rows")
    return _to_table(task, source, rows, numbers, origin=str(path), where=where)


def _read_jsonl(path: Path) -> tuple[list[dict[str, Any]], list[int]]:
    rows, numbers = [], []
    with path.open(encoding="utf-8-sig") as lines:  # -sig: tolerate a byte-order mark
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(f"{path}: line {number}: invalid JSON ({error.msg})") from None
            if not isinstance(row, dict):
                raise DataError(
                    f"{path}: line {number}: expected a JSON object, got {type(row).__name__}"
                )
            rows.append(row)
            numbers.append(number)
    return rows, numbers


def _read_csv(path: Path) -> tuple[list[dict[str, Any]], list[int]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:  # Excel writes a BOM
        reader = csv.DictReader(handle)
        rows: list[dict[str, Any]] = []
        try:
            for row in reader:
                if None in row:  # DictReader files surplus fields under the key None
                    raise DataError(
                        f"{path}: row {len(rows) + 1}: more fields than the header's "
                        f"{len(reader.fieldnames or [])}"
                    )
                rows.append(row)
        except csv.Error as error:
            raise DataError(f"{path}: row {len(rows) + 1}: {error}") from None
    return rows, list(range(1, len(rows) + 1))


def _as_text(value: Any) -> Any:
    """Numbers in JSON or Parquet cells as the text a person would write; NaN as missing."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return None
        # 18.0 -> "18"; 1e20 -> "100000000000000000000"; 1e-07 -> "0.0000001" (never "1e-07").
        return (
            str(int(value)) if value.is_integer() else np.format_float_positional(value, trim="-")
        )
    return str(value)


def _load_hub(task: Task, source: DataSource) -> pd.DataFrame:
    hub = HubDataset(source.hub, source.hub_config) if source.hub else task.hub
    if hub is None:
        raise DataError(
            f"task {task.name!r} has no built-in or default hub data; give a path or a hub id"
        )
    config = source.hub_config or hub.config
    import datasets  # heavy import (~2 s); only this path needs it

    origin = (
        f"hub dataset {hub.path}" + (f" ({config})" if config else "") + f" split {source.split!r}"
    )
    try:
        dataset = datasets.load_dataset(
            hub.path, config, split=source.split, revision=source.revision
        )
    except Exception as error:  # the hub raises many types; the user needs the message
        raise DataError(f"{origin}: could not load ({type(error).__name__}: {error})") from None
    rows = dataset.to_list()
    if not rows:
        raise DataError(f"{origin}: no rows")
    return _to_table(task, source, rows, list(range(1, len(rows) + 1)), origin=origin, where="row")


def _to_table(
    task: Task,
    source: DataSource,
    rows: list[dict[str, Any]],
    numbers: list[int],
    *,
    origin: str,
    where: str,
) -> pd.DataFrame:
    """Maps the source's columns onto TABLE_COLUMNS, checking every row has a text value."""
    columns = {
        "question": source.question_column or task.question_column,
        "answer": source.answer_column or task.answer_column,
    }
    if source.id_column:
        columns["id"] = source.id_column
    present = set(rows[0])
    for role, column in columns.items():
        if column not in present:
            raise DataError(
                f"{origin}: {where} {numbers[0]}: no {role} column {column!r} "
                f"(columns: {', '.join(map(str, rows[0]))}); set {role}_column"
            )
    records = []
    for row, number in zip(rows, numbers, strict=True):
        values = {}
        for role, column in columns.items():
            value = row.get(column)
            if role != "question":
                value = _as_text(value)
            if not isinstance(value, str):
                found = "missing" if value is None else f"a {type(value).__name__}"
                raise DataError(
                    f"{origin}: {where} {number}: column {column!r} is {found}, expected text"
                )
            values[role] = value
        records.append(
            {
                "id": values.get("id", str(number)),
                "source_row": number,
                **{k: values[k] for k in ("question", "answer")},
            }
        )
    return _checked(pd.DataFrame.from_records(records, columns=list(TABLE_COLUMNS)), origin, where)


def question_key(question: str) -> str:
    """A question up to whitespace, for finding repeats."""
    return " ".join(question.split())


def repeats(keys: Iterable[str], rows: Iterable[int]) -> list[tuple[int, int]]:
    """(earlier row, row) for every row whose key repeats an earlier row's, in order."""
    first: dict[str, int] = {}
    return [
        (first[key], row)
        for key, row in zip(keys, rows, strict=True)
        if first.setdefault(key, row) != row
    ]


def _checked(table: pd.DataFrame, origin: str, where: str) -> pd.DataFrame:
    """``table`` if it has rows and unique ids. Repeated questions are logged, not refused:
    published data sets hold some, and `ray-asd data check` counts them."""
    if table.empty:
        raise DataError(f"{origin}: the file has no data rows")
    rows = table["source_row"].tolist()
    ids = repeats(table["id"], rows)
    if ids:
        earlier, row = ids[0]
        repeated = table["id"][rows.index(row)]
        raise DataError(f"{origin}: {where} {row}: id {repeated!r} repeats {where} {earlier}'s")
    questions = repeats(map(question_key, table["question"]), rows)
    if questions:
        earlier, row = questions[0]
        log.warning(
            "%s: %s %d repeats the question of %s %d (%d repeated questions in all)",
            *(origin, where, row, where, earlier, len(questions)),
        )
    return table
