import itertools
import json
import random
from pathlib import Path

import pytest

from ray_asd.cli import main
from ray_asd.errors import ConfigError, DataError
from ray_asd.tasks import DataSource, load_table, make_task
from ray_asd.tasks.bounds import MAX_OUTPUT_CHARS
from ray_asd.tasks.check import check_table
from ray_asd.tasks.logic import (
    MAX_QUESTION_CHARS,
    Atom,
    Op,
    Puzzle,
    depth,
    extract,
    generate,
    parse_question,
    random_statement,
)

# Alice: "Bob is a knave."  Bob: "Alice is a knight and Bob is a knight."
# Alice a knight makes Bob a knave whose statement must be false: it is (Bob is no knight).
# Alice a knave makes Bob a knight whose statement must be true: it is not (Alice is a knave).
PUZZLE = Puzzle(("Alice", "Bob"), (Atom(1, False), Op("and", Atom(0, True), Atom(1, True))))
QUESTION = (
    'Knights always tell the truth and knaves always lie. Alice says: "Bob is a knave." '
    'Bob says: "Alice is a knight and Bob is a knight." Who is a knight and who is a knave?'
)
REFERENCE = (
    'Alice is a knight, so "Bob is a knave" is true.\n'
    'Bob is a knave, so "Alice is a knight and Bob is a knight" is false.\n'
    "Answer: Alice=knight, Bob=knave"
)


def test_question_and_solution_format() -> None:
    assert PUZZLE.question() == QUESTION
    assert PUZZLE.solutions() == [(True, False)]
    assert PUZZLE.solution_text((True, False)) == REFERENCE
    task = make_task("logic")
    assert task.oracle.answer(QUESTION) == REFERENCE
    assert task.verify(QUESTION, REFERENCE) and task.difficulty(QUESTION) == 2


def test_every_connective_and_nesting_render_and_parse_back() -> None:
    a, b, c = Atom(0, True), Atom(1, False), Atom(2, True)
    statement = Op("if", Op("or", a, Op("iff", b, c)), Op("and", b, a))
    names = ("Ann", "Ben", "Cy")
    puzzle = Puzzle(names, (statement, a, b))
    said = puzzle.question().split("Ann says: ")[1].split('"')[1]
    assert said == (
        "if (Ann is a knight or (Ben is a knave if and only if Cy is a knight)) "
        "then (Ben is a knave and Ann is a knight)."
    )
    assert parse_question(puzzle.question()) == puzzle and depth(statement) == 4


def test_generation_round_trips_and_has_unique_solutions() -> None:
    for max_depth in (2, 3, 4):
        puzzles = generate(60, seed=max_depth, min_people=1, max_people=6, max_depth=max_depth)
        assert len({p.question() for p in puzzles}) == 60
        assert {len(p.names) for p in puzzles} == set(range(1, 7))  # people cycle 1..6
        for puzzle in puzzles:
            assert parse_question(puzzle.question()) == puzzle
            assert len(puzzle.solutions()) == 1 and max(map(depth, puzzle.statements)) == max_depth


def _truth(expr: Atom | Op, knights: tuple[bool, ...]) -> bool:
    """The plain reading of a statement, one assignment at a time."""
    if isinstance(expr, Atom):
        return knights[expr.person] == expr.knight
    left, right = _truth(expr.left, knights), _truth(expr.right, knights)
    return {"and": left and right, "or": left or right, "if": not left or right}.get(
        expr.op, left == right
    )


def test_the_bitwise_solver_agrees_with_trying_every_assignment() -> None:
    rng = random.Random(0)
    for people in range(1, 8):
        for _ in range(40):
            puzzle = Puzzle(
                tuple(f"P{i}" for i in range(people)),
                tuple(random_statement(rng, people, rng.randint(1, 3)) for _ in range(people)),
            )
            expected = [
                knights
                for knights in itertools.product((True, False), repeat=people)
                if all(
                    _truth(s, knights) == k for s, k in zip(puzzle.statements, knights, strict=True)
                )
            ]
            assert puzzle.solutions() == expected


def test_random_statement_has_the_asked_depth() -> None:
    rng = random.Random(0)
    assert all(depth(random_statement(rng, 3, d)) == d for d in (1, 2, 3, 4) for _ in range(50))


def test_puzzles_without_a_unique_solution_are_refused() -> None:
    task = make_task("logic")
    # "I am a knight" is true of a knight and false of a knave: two solutions.
    two = 'Alice says: "Alice is a knight." Who is a knight and who is a knave?'
    # A knight cannot say "I am a knave", and a knave saying it would tell the truth: none.
    none = 'Alice says: "Alice is a knave." Who is a knight and who is a knave?'
    for question in (two, none):
        assert parse_question(question) is not None
        assert task.oracle.answer(question) is None
        assert not task.verify(question, "Answer: Alice=knight")
        assert not task.verify(question, "Answer: Alice=knave")
        assert not task.is_correct(question, "Answer: Alice=knight", "Answer: Alice=knight")


def test_depth_one_puzzles_mirror_so_the_knob_starts_at_two() -> None:
    for puzzle in generate(1, seed=0, min_people=3, max_people=3, max_depth=2):
        atoms = Puzzle(puzzle.names, (Atom(1, True), Atom(2, False), Atom(0, False)))
        solutions = atoms.solutions()
        assert {tuple(not k for k in s) for s in solutions} == set(solutions)
    with pytest.raises(ConfigError, match="2 <= max_depth"):
        make_task("logic", max_depth=1)
    with pytest.raises(ConfigError, match="min_people <= max_people"):
        make_task("logic", min_people=4, max_people=3)


@pytest.mark.parametrize(
    ("output", "stated"),
    [
        (REFERENCE, "alice=knight, bob=knave"),
        ("Answer: Bob = knave, Alice = knight", "alice=knight, bob=knave"),
        ("**Answer:** alice=KNIGHT; bob=knave.", "alice=knight, bob=knave"),
        ("Answer: Alice is a knight and Bob is a knave", "alice=knight, bob=knave"),
        ("Answer: Alice: knight, Bob: knave", "alice=knight, bob=knave"),
        ("Alice=knight, Bob=knave", "alice=knight, bob=knave"),  # no Answer line: the last line
        ("Answer: Alice=knight\nAnswer: Alice=knight", "alice=knight"),  # agreeing: one answer
        ("Answer: Alice=knight", "alice=knight"),  # extracts; grading finds Bob missing
        ("Answer: Alice=knight, Alice=knave", None),  # one person, two roles
        ("Answer: Alice=knight, Bob=knave\nAnswer: Alice=knave, Bob=knight", None),  # two answers
        ("Answer: Alice=knight, Bob=maybe", None),  # a garbled part
        ("Answer: Alice is probably a knight", None),
        ("Alice is a knight, so Bob is a knave.", None),  # reasoning, not an answer line
        ("Answer:", None),
        ("", None),
        ("Answer: " + ", ".join(f"P{i}=knight" for i in range(13)), None),  # over MAX_PEOPLE
        ("Answer: Alice=knight, Bob=knave\n" + "x" * MAX_OUTPUT_CHARS, None),  # overlong
    ],
)
def test_extraction(output: str, stated: str | None) -> None:
    assert extract(output) == stated


@pytest.mark.parametrize(
    ("output", "correct"),
    [
        (REFERENCE, True),
        ("Answer: bob=knave, alice=knight", True),
        ("Answer: Alice=knave, Bob=knight", False),
        ("Answer: Alice=knight", False),  # Bob missing
        ("Answer: Alice=knight, Bob=knave, Carol=knight", False),  # a person not in the puzzle
        # Graded ends at the first answer line, as for every task: what follows is rambling.
        ("Answer: Alice=knight, Bob=knave\nAnswer: Alice=knave, Bob=knave", True),
        ("Let me think.\nAnswer: Alice=knight, Bob=knave\nQuestion: next\nAnswer: x=knave", True),
    ],
)
def test_checking(output: str, correct: bool) -> None:
    task = make_task("logic")
    assert task.is_correct(QUESTION, task.cut_after_final(output), REFERENCE) is correct


def test_two_conflicting_answer_lines_are_refused_where_both_are_read() -> None:
    task = make_task("logic")  # `data check` reads whole reference answers
    assert not task.is_correct(QUESTION, "Answer: Alice=knight, Bob=knave\nAnswer: Bob=knight", "")
    assert task.extract("Answer: Alice=knight, Bob=knave\nAnswer: Alice=knave") is None


def test_the_puzzle_outranks_a_wrong_reference_and_other_wordings_use_the_reference() -> None:
    task = make_task("logic")
    wrong = "Answer: Alice=knave, Bob=knight"
    assert task.is_correct(QUESTION, REFERENCE, wrong)
    assert not task.is_correct(QUESTION, wrong, wrong)  # so `data check` finds a wrong reference
    other = "Jack says Sophia is a knave; Sophia says both are knights. Who is what?"
    assert parse_question(other) is None
    assert task.is_correct(other, "Answer: Jack=knight, Sophia=knave", "Jack=knight, Sophia=knave")
    assert not task.is_correct(other, "Answer: Jack=knight", "Jack=knight, Sophia=knave")


@pytest.mark.parametrize(
    "question",
    [
        'Alice says: "Bob is a knave."',  # Bob is not one of the speakers
        'Alice says: "Alice is a knight." Alice says: "Alice is a knave."',  # speaks twice
        'Alice says: "__import__(os).system(ls)."',  # not the grammar: never evaluated
        'Alice says: "Alice is a knight and Alice is a knave or Alice is a knight."',  # no parens
        'Alice says: "(((Alice is a knight and Alice is a knave) or Alice is a knave) and Alice '
        'is a knight) or Alice is a knave."',  # depth 5 (three nested parentheses)
        'Alice says: "if Alice is a knight Alice is a knave."',
        'Alice says: "Alice is a knight."' + " " * 6000,  # over MAX_QUESTION_CHARS
        "No statements here.",
    ],
)
def test_parser_refuses_what_it_does_not_know(question: str) -> None:
    assert parse_question(question) is None


def test_adversarial_input_is_refused_by_the_bounds() -> None:
    """The work is bounded by size, not by a clock: inputs over the limits are refused before
    parsing, and nesting within the length limit is refused before recursion."""
    task = make_task("logic")
    deep = 'Alice says: "' + "(" * 50_000 + "Alice is a knight" + ")" * 50_000 + '."'
    many = " ".join(f'P{i} says: "P{i} is a knight."' for i in range(400))
    garbage = "Answer: " + "Alice=knight, " * 20_000
    assert len(deep) > MAX_QUESTION_CHARS and len(garbage) > MAX_OUTPUT_CHARS
    nested = 'Alice says: "' + "(" * 2_900 + "Alice is a knight" + ")" * 2_900 + '."'
    assert len(nested) < MAX_QUESTION_CHARS  # deeper than MAX_DEPTH: no RecursionError
    for question in (deep, many, nested):
        assert parse_question(question) is None
    assert not task.is_correct(QUESTION, garbage, REFERENCE)


def test_builtin_splits_are_disjoint_deterministic_and_self_check() -> None:
    task = make_task("logic")
    train, test = task.builtin("train"), task.builtin("test")
    assert len(test) == 200 and 950 <= len(train) <= 1000
    assert set(train["question"]).isdisjoint(test["question"])
    assert train.equals(make_task("logic").builtin("train"))
    assert set(test["difficulty"]) == {2, 3, 4}
    assert all(
        task.is_correct(q, a, a) and task.verify(q, a) and task.oracle.answer(q) == a
        for q, a in zip(test["question"], test["answer"], strict=True)
    )
    assert len(task.builtin("all")) == len(train) + len(test)
    with pytest.raises(DataError, match="unknown split"):
        task.builtin("dev")


def test_difficulty_knob() -> None:
    test = make_task("logic", min_people=3, max_people=3, max_depth=3).builtin("test")
    puzzles = [parse_question(q) for q in test["question"]]
    assert set(test["difficulty"]) == {3}
    assert {max(map(depth, p.statements)) for p in puzzles if p is not None} == {
        3
    } and None not in puzzles


def test_oracle_keeps_people_count_and_statement_depths() -> None:
    task = make_task("logic")
    seed = make_task("logic", min_people=4, max_people=4, max_depth=3).builtin("test")["question"][
        0
    ]
    structure = parse_question(seed)
    rng = random.Random(0)
    questions = [task.oracle.write(seed, rng) for _ in range(20)]
    assert len(set(questions)) == 20
    for question in questions:
        new = parse_question(question)
        assert len(new.names) == 4 and new.names != structure.names
        assert list(map(depth, new.statements)) == list(map(depth, structure.statements))
        assert task.verify(question, task.oracle.answer(question))
    assert task.oracle.write(seed, random.Random(5)) == task.oracle.write(seed, random.Random(5))
    assert task.oracle.write("gibberish", rng) is None
    assert task.oracle.answer("gibberish") is None


def _write_jsonl(path: Path, rows: list[dict[str, str]]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


def test_local_files_and_the_hub_code_path_load(tmp_path: Path, monkeypatch) -> None:
    task = make_task("logic")
    rows = task.builtin("test").head(6)[["question", "answer"]].to_dict(orient="records")
    _write_jsonl(tmp_path / "seeds.jsonl", rows)
    table = load_table(task, DataSource(path=tmp_path / "seeds.jsonl"))
    assert table["question"].tolist() == [r["question"] for r in rows]
    assert table["difficulty"].tolist() == [task.difficulty(r["question"]) for r in rows]
    # The hub code path (datasets.load_dataset) on a local dataset folder, offline.
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))
    (tmp_path / "hub").mkdir()
    _write_jsonl(tmp_path / "hub" / "test.jsonl", rows)
    hub = load_table(task, DataSource(hub=str(tmp_path / "hub"), split="test"))
    assert hub["answer"].tolist() == table["answer"].tolist()


def test_data_check_finds_wrong_references(tmp_path: Path, capsys) -> None:
    task = make_task("logic")
    rows = task.builtin("test").head(4)[["question", "answer"]].to_dict(orient="records")
    assert check_table(task, load_table(task, DataSource(split="test")), "built-in").n_failures == 0
    rows[1]["answer"] = rows[1]["answer"].replace("=knight", "=KNAVE").replace("=knave", "=knight")
    rows[2]["answer"] = "I am not sure."
    _write_jsonl(tmp_path / "seeds.jsonl", rows)
    assert main(["data", "check", "--task", "logic", "--path", str(tmp_path / "seeds.jsonl")]) == 1
    printed = capsys.readouterr().out
    assert "references self-check:      2/4 (50.0%)" in printed
    assert "row 2 (id 2): reference final answer" in printed
    assert "row 3 (id 3): no final answer in the reference answer" in printed
    assert "questions in built-in set:  4/4" in printed
