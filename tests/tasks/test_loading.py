import json
from pathlib import Path

import pandas as pd
import pytest

from ray_asd.errors import DataError
from ray_asd.tasks import TABLE_COLUMNS, DataSource, load_table, make_task
from ray_asd.tasks.loading import question_key

ROWS = [
    {"question": "What is 2 + 3?", "answer": "2 + 3 = 5\n#### 5"},
    {"question": "What is 10 - 4?", "answer": "10 - 4 = 6\n#### 6"},
    {"question": "What is 3 * 7?", "answer": "3 * 7 = 21\n#### 21"},
]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture
def gsm8k():
    return make_task("gsm8k")


def test_jsonl(tmp_path: Path, gsm8k) -> None:
    table = load_table(gsm8k, DataSource(path=write_jsonl(tmp_path / "seeds.jsonl", ROWS)))
    assert list(table.columns) == list(TABLE_COLUMNS)
    assert table["question"].tolist() == [r["question"] for r in ROWS]
    assert table["id"].tolist() == ["1", "2", "3"]
    assert table["source_row"].tolist() == [1, 2, 3]


def test_jsonl_blank_lines_are_skipped_and_lines_keep_their_numbers(tmp_path: Path, gsm8k) -> None:
    path = tmp_path / "seeds.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n\n" + json.dumps(ROWS[1]) + "\n", encoding="utf-8")
    assert load_table(gsm8k, DataSource(path=path))["source_row"].tolist() == [1, 3]


def test_csv_and_parquet_with_column_mapping(tmp_path: Path, gsm8k) -> None:
    frame = pd.DataFrame(
        {
            "uid": ["a", "b", "c"],
            "q": [r["question"] for r in ROWS],
            "a": [r["answer"] for r in ROWS],
        }
    )
    frame.to_csv(tmp_path / "seeds.csv", index=False)
    frame.to_parquet(tmp_path / "seeds.parquet")
    for name in ("seeds.csv", "seeds.parquet"):
        source = DataSource(
            path=tmp_path / name, question_column="q", answer_column="a", id_column="uid"
        )
        table = load_table(gsm8k, source)
        assert table["id"].tolist() == ["a", "b", "c"]
        assert table["answer"].tolist() == [r["answer"] for r in ROWS]


def test_csv_multiline_quoted_answers(tmp_path: Path, gsm8k) -> None:
    pd.DataFrame(ROWS).to_csv(tmp_path / "seeds.csv", index=False)
    assert load_table(gsm8k, DataSource(path=tmp_path / "seeds.csv"))["answer"][2].endswith(
        "#### 21"
    )


def test_numeric_answers_become_text(tmp_path: Path) -> None:
    task = make_task("generic", checker="numeric")
    path = write_jsonl(
        tmp_path / "d.jsonl",
        [{"question": "1+1?", "answer": 2}, {"question": "half?", "answer": 0.5}],
    )
    assert load_table(task, DataSource(path=path))["answer"].tolist() == ["2", "0.5"]


def test_limit(tmp_path: Path, gsm8k) -> None:
    source = DataSource(path=write_jsonl(tmp_path / "s.jsonl", ROWS), limit=2)
    assert len(load_table(gsm8k, source)) == 2


def test_hub_code_path_on_a_local_dataset_folder(tmp_path: Path, gsm8k, monkeypatch) -> None:
    # datasets.load_dataset takes a folder of split files exactly as it takes a hub id.
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "my_dataset"
    folder.mkdir()
    write_jsonl(folder / "train.jsonl", ROWS[:2])
    write_jsonl(folder / "test.jsonl", ROWS[2:])
    train = load_table(gsm8k, DataSource(hub=str(folder), split="train"))
    test = load_table(gsm8k, DataSource(hub=str(folder), split="test"))
    assert train["question"].tolist() == [ROWS[0]["question"], ROWS[1]["question"]]
    assert test["answer"].tolist() == [ROWS[2]["answer"]]
    with pytest.raises(
        DataError, match=r"hub dataset .*my_dataset split 'validation': could not load"
    ):
        load_table(gsm8k, DataSource(hub=str(folder), split="validation"))


def test_task_without_builtin_data_defaults_to_its_hub_dataset(gsm8k, monkeypatch) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(
        DataError, match=r"hub dataset openai/gsm8k \(main\) split 'train': could not load"
    ):
        load_table(gsm8k, DataSource())


def test_generic_task_without_origin_is_an_error() -> None:
    with pytest.raises(DataError, match="no built-in or default hub data"):
        load_table(make_task("generic"), DataSource())


def test_game24_tree_of_thoughts_csv(tmp_path: Path) -> None:
    path = tmp_path / "24.csv"
    path.write_text(
        "Rank,Puzzles,AMT (s),Solved rate,1-sigma Mean (s),1-sigma STD (s)\n"
        "1,1 1 4 6,4.4,99.20%,4.67,1.48\n"
        "2,10 4 4 10,4.41,99.60%,4.68,1.45\n"
        "3,1 1 3 8,4.45,99.20%,4.69,1.48\n",
        encoding="utf-8",
    )
    task = make_task("game24")
    table = load_table(task, DataSource(path=path))
    assert table["id"].tolist() == ["1", "2", "3"]  # file (difficulty) order is kept
    assert table["question"].tolist() == ["1 1 4 6", "4 4 10 10", "1 1 3 8"]
    assert table["difficulty"].tolist() == [1, 2, 3]
    for question, answer in zip(table["question"], table["answer"], strict=True):
        assert task.is_correct(question, answer, answer)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("Rank,Puzzles\n1,1 1 4 6\n2,1 1 1 1\n", r"row 2: puzzle '1 1 1 1' has no solution"),
        ("Rank,Puzzles\n7,1 1 4 6\n7,1 2 3 4\n", r"row 2: id '7' repeats row 1's"),
        ("Rank,Puzzles\n", r"the file has no data rows"),
    ],
    ids=["unsolvable", "repeated rank", "header only"],
)
def test_bad_game24_csv(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "24.csv").write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=r"24\.csv: " + message):
        load_table(make_task("game24"), DataSource(path=tmp_path / "24.csv"))


def test_game24_jsonl_uses_generic_reader(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "g.jsonl", [{"question": "4 6 1 1", "answer": "Answer: (4 + 6 * 1) ... "}]
    )
    assert load_table(make_task("game24"), DataSource(path=path))["question"][0] == "4 6 1 1"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.jsonl", "", r"empty\.jsonl: the file is empty"),
        ("blank.jsonl", "\n  \n", r"blank\.jsonl: the file has no data rows"),
        (
            "broken.jsonl",
            '{"question": "a", "answer": "#### 1"}\n{"question": "b", "answer": \n',
            r"broken\.jsonl: line 2: invalid JSON",
        ),
        ("list.jsonl", '["a", "b"]\n', r"list\.jsonl: line 1: expected a JSON object, got list"),
        (
            "nocol.jsonl",
            '{"q": "a", "answer": "#### 1"}\n',
            r"nocol\.jsonl: line 1: no question column 'question' \(columns: q, answer\); "
            r"set question_column",
        ),
        (
            "null.jsonl",
            '{"question": "a", "answer": "#### 1"}\n{"question": "b", "answer": null}\n',
            r"null\.jsonl: line 2: column 'answer' is missing, expected text",
        ),
        (
            "keyless.jsonl",
            '{"question": "a", "answer": "#### 1"}\n{"question": "b"}\n',
            r"keyless\.jsonl: line 2: column 'answer' is missing",
        ),
        (
            "nested.jsonl",
            '{"question": {"text": "a"}, "answer": "#### 1"}\n',
            r"nested\.jsonl: line 1: column 'question' is a dict, expected text",
        ),
        (
            "short.csv",
            "question,answer\nq1,#### 1\nq2\n",
            r"short\.csv: row 2: column 'answer' is missing",
        ),
        (
            "long.csv",
            "question,answer\nq1,#### 1,extra\n",
            r"long\.csv: row 1: more fields than the header's 2",
        ),
        ("header.csv", "question,answer\n", r"header\.csv: the file has no data rows"),
        ("data.txt", "hello\n", r"data\.txt: unknown file type '\.txt'"),
        ("bad.parquet", "not parquet", r"bad\.parquet: cannot read as parquet"),
        (
            "latin1.jsonl",
            b'{"question": "caf\xe9", "answer": "#### 1"}\n',
            r"latin1\.jsonl: not UTF-8 text",
        ),
    ],
)
def test_bad_files_name_file_row_and_column(
    tmp_path: Path, gsm8k, name: str, content, message: str
) -> None:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        load_table(gsm8k, DataSource(path=path))


def test_missing_file(tmp_path: Path, gsm8k) -> None:
    with pytest.raises(DataError, match=r"nope\.jsonl: no such file"):
        load_table(gsm8k, DataSource(path=tmp_path / "nope.jsonl"))


def test_a_folder_a_device_or_a_missing_path(tmp_path: Path, gsm8k) -> None:
    with pytest.raises(DataError, match=r": is a folder; give a data file \(\.csv, \.json, "):
        load_table(gsm8k, DataSource(path=tmp_path))
    with pytest.raises(DataError, match=r"gone\.jsonl: no such file$"):
        load_table(gsm8k, DataSource(path=tmp_path / "gone.jsonl"))
    with pytest.raises(DataError, match=r"^/dev/null: not a file$"):
        load_table(gsm8k, DataSource(path=Path("/dev/null")))


def test_repeated_questions_are_logged_with_both_rows(
    tmp_path: Path, gsm8k, caplog: pytest.LogCaptureFixture
) -> None:
    rows = [ROWS[0], ROWS[1], {**ROWS[0], "question": " What is  2 + 3?"}, ROWS[1]]
    path = write_jsonl(tmp_path / "r.jsonl", rows)
    assert len(load_table(gsm8k, DataSource(path=path))) == 4
    assert f"{path}: line 3 repeats the question of line 1 (2 repeated questions in all)" in (
        caplog.messages
    )


def test_repeated_ids(tmp_path: Path, gsm8k) -> None:
    rows = [{**ROWS[0], "id": "x"}, {**ROWS[1], "id": "y"}, {**ROWS[2], "id": "x"}]
    with pytest.raises(DataError, match=r"d\.jsonl: line 3: id 'x' repeats line 1's$"):
        load_table(gsm8k, DataSource(path=write_jsonl(tmp_path / "d.jsonl", rows), id_column="id"))


def test_bad_game24_puzzle_row(tmp_path: Path) -> None:
    path = tmp_path / "24.csv"
    path.write_text("Rank,Puzzles\n1,1 1 4 6\n2,1 2 3 99\n", encoding="utf-8")
    with pytest.raises(
        DataError, match=r"24\.csv: row 2: column 'Puzzles' must hold four numbers in 1\.\.13"
    ):
        load_table(make_task("game24"), DataSource(path=path))


def test_source_takes_one_origin() -> None:
    with pytest.raises(ValueError, match="either 'path' or 'hub'"):
        DataSource(path=Path("a.jsonl"), hub="openai/gsm8k")
    with pytest.raises(ValueError, match="Extra inputs"):
        DataSource(paht="a.jsonl")


def test_byte_order_mark_is_tolerated(tmp_path: Path, gsm8k) -> None:
    (tmp_path / "bom.csv").write_text("\ufeffquestion,answer\nq,#### 1\n", encoding="utf-8")
    (tmp_path / "bom.jsonl").write_text("\ufeff" + json.dumps(ROWS[0]) + "\n", encoding="utf-8")
    assert load_table(gsm8k, DataSource(path=tmp_path / "bom.csv"))["question"].tolist() == ["q"]
    assert len(load_table(gsm8k, DataSource(path=tmp_path / "bom.jsonl"))) == 1


def test_missing_values_in_parquet_and_nan_in_json(tmp_path: Path, gsm8k) -> None:
    pd.DataFrame({"question": ["a", "b"], "answer": ["#### 1", None]}).to_parquet(
        tmp_path / "n.parquet"
    )
    with pytest.raises(DataError, match=r"n\.parquet: row 2: column 'answer' is missing"):
        load_table(gsm8k, DataSource(path=tmp_path / "n.parquet"))
    (tmp_path / "nan.jsonl").write_text('{"question": "a", "answer": NaN}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"nan\.jsonl: line 1: column 'answer' is missing"):
        load_table(gsm8k, DataSource(path=tmp_path / "nan.jsonl"))


def test_float_answers_are_written_out(tmp_path: Path) -> None:
    rows = [{"question": "q", "answer": a} for a in (1e20, 18.0, 1e-07, 0.5)]
    table = load_table(
        make_task("generic", checker="numeric"),
        DataSource(path=write_jsonl(tmp_path / "f.jsonl", rows)),
    )
    assert table["answer"].tolist() == ["100000000000000000000", "18", "0.0000001", "0.5"]


def test_non_utf8_game24_csv_and_huge_csv_field(tmp_path: Path) -> None:
    (tmp_path / "24.csv").write_bytes(b"Rank,Puzzles\n1,1 1 4 6\xe9\n")
    with pytest.raises(DataError, match=r"24\.csv: not UTF-8 text"):
        load_table(make_task("game24"), DataSource(path=tmp_path / "24.csv"))
    (tmp_path / "big.csv").write_text(
        'question,answer\nq,"' + "x" * 200_000 + '"\n', encoding="utf-8"
    )
    with pytest.raises(DataError, match=r"big\.csv: row 1: field larger than field limit"):
        load_table(make_task("gsm8k"), DataSource(path=tmp_path / "big.csv"))


def test_errors_are_not_wrapped_twice(tmp_path: Path, gsm8k) -> None:
    (tmp_path / "b.jsonl").write_text("{oops\n", encoding="utf-8")
    with pytest.raises(DataError) as error:
        load_table(gsm8k, DataSource(path=tmp_path / "b.jsonl"))
    assert str(error.value).count("b.jsonl") == 1


def _math_rows(n: int) -> list[dict]:
    return [
        {"problem": f"Compute ${i} + {i}$.", "solution": f"${i} + {i} = \\boxed{{{2 * i}}}$."}
        for i in range(n)
    ]


def test_hash_sample_is_a_fixed_subset_of_distinct_questions(tmp_path: Path) -> None:
    # The rule configs/paper/math-*.yaml applies to MATH's 5,000 test problems, on a fixture.
    math = make_task("math")
    rows = _math_rows(1200)
    rows += [dict(rows[7]), {**rows[9], "problem": "  " + rows[9]["problem"]}]  # two repeats
    source = DataSource(path=write_jsonl(tmp_path / "test.jsonl", rows), sample=500)
    table = load_table(math, source)
    assert len(table) == 500 and table["question"].nunique() == 500
    assert table["source_row"].tolist() != sorted(table["source_row"])  # hash order, not file
    assert table["source_row"].max() > 500  # not the head of the file
    # The file's order does not matter, and a head of the subset is the rule's smaller subset.
    shuffled = write_jsonl(tmp_path / "shuffled.jsonl", rows[::-1])
    again = load_table(math, DataSource(path=shuffled, sample=500))
    assert again["question"].map(question_key).tolist() == table["question"].tolist()
    head = load_table(math, DataSource(path=shuffled, sample=500, limit=100))
    assert head["question"].map(question_key).tolist() == table["question"].tolist()[:100]
    # Another seed, another subset; the rule is stable: only a new row can enter.
    other = load_table(math, source.model_copy(update={"sample_seed": 1}))
    assert 150 < len(set(other["question"]) & set(table["question"])) < 300  # ~500 * 500/1200
    more = write_jsonl(tmp_path / "more.jsonl", [*rows, *_math_rows(1300)[1200:]])
    grown = load_table(math, DataSource(path=more, sample=500))
    assert len(set(grown["question"]) - set(table["question"])) <= 100


def test_hash_sample_larger_than_the_data_names_the_file(tmp_path: Path, gsm8k) -> None:
    path = write_jsonl(tmp_path / "seeds.jsonl", [*ROWS, ROWS[0]])
    with pytest.raises(DataError, match=r"seeds.jsonl: sample 4 needs 4 distinct questions, .* 3"):
        load_table(gsm8k, DataSource(path=path, sample=4))
    with pytest.raises(DataError, match=r"task arith: built-in data split 'test': sample 999"):
        load_table(make_task("arith"), DataSource(split="test", sample=999))
