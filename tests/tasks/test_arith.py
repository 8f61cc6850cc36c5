import random
from collections import Counter

import pytest

from ray_asd.errors import ConfigError, DataError
from ray_asd.tasks import make_task
from ray_asd.tasks.arith import Problem, generate, parse_problem, random_problem, verify

PROBLEM = Problem(12, (("+", 7), ("-", 5), ("*", 3)))


def test_question_and_solution_format() -> None:
    assert (
        PROBLEM.question()
        == "Start with 12. Add 7, then subtract 5, then multiply by 3. What is the result?"
    )
    assert PROBLEM.solution() == "12 + 7 = 19. 19 - 5 = 14. 14 * 3 = 42.\n#### 42"
    assert PROBLEM.result() == 42


def test_parse_round_trip() -> None:
    for problem in generate(200, seed=3):
        assert parse_problem(problem.question()) == problem
    assert parse_problem("What is 2 + 2?") is None


def test_verify() -> None:
    question = PROBLEM.question()
    assert verify(question, PROBLEM.solution())
    assert verify(question, "I think it is 42.")
    assert not verify(question, "12 + 7 = 19. 19 - 5 = 14. 14 * 3 = 41.\n#### 41")
    assert not verify("Not a problem", "#### 42")


def test_values_never_go_negative_and_difficulty_cycles() -> None:
    problems = generate(400, seed=0, min_ops=1, max_ops=4)
    assert len(set(problems)) == 400
    assert [p.ops for p in problems[:8]] == [1, 2, 3, 4, 1, 2, 3, 4]
    for problem in problems:
        value = problem.start
        for op, n in problem.steps:
            value = value + n if op == "+" else value - n if op == "-" else value * n
            assert value >= 0


def test_builtin_splits_are_disjoint_and_deterministic() -> None:
    task = make_task("arith")
    train, test = task.builtin("train"), task.builtin("test")
    assert len(test) == 200 and 950 <= len(train) <= 1000
    assert set(train["question"]).isdisjoint(test["question"])
    assert train.equals(make_task("arith").builtin("train"))
    assert all(
        task.is_correct(q, a, a) and task.verify(q, a)
        for q, a in zip(test["question"], test["answer"], strict=True)
    )
    assert set(test["difficulty"]) == {1, 2, 3, 4}
    assert len(task.builtin("all")) == len(train) + len(test)  # what `data check` compares with
    with pytest.raises(DataError, match="unknown split"):
        task.builtin("dev")


def test_difficulty_knob() -> None:
    test = make_task("arith", min_ops=2, max_ops=2).builtin("test")
    assert set(test["difficulty"]) == {2}
    with pytest.raises(ConfigError, match="min_ops <= max_ops"):
        make_task("arith", min_ops=3, max_ops=2)


def test_oracle_keeps_structure_with_new_numbers() -> None:
    task = make_task("arith")
    rng = random.Random(0)
    seed = PROBLEM.question()
    for _ in range(20):
        question = task.oracle.write(seed, rng)
        new = parse_problem(question)
        assert [op for op, _ in new.steps] == ["+", "-", "*"]
        answer = task.oracle.answer(question)
        assert task.verify(question, answer)
    assert task.oracle.write("gibberish", rng) is None
    assert task.oracle.answer("gibberish") is None


def test_random_problem_like_keeps_operators_even_when_subtraction_is_impossible() -> None:
    rng = random.Random(1)
    like = Problem(2, (("-", 2), ("-", 1)))  # after 2 - 2 = 0 nothing can be subtracted
    for _ in range(50):
        problem = random_problem(rng, 2, like=like)
        assert problem.ops == 2
        assert problem.result() >= 0


def test_game24_oracle_writes_solvable_neighbours() -> None:
    task = make_task("game24")
    rng = random.Random(0)
    for _ in range(30):
        question = task.oracle.write("1 1 4 6", rng)
        numbers = [int(n) for n in question.split()]
        assert numbers == sorted(numbers) and numbers != [1, 1, 4, 6]
        assert 1 <= sum((Counter(numbers) - Counter([1, 1, 4, 6])).values()) <= 2  # 1-2 replaced
        assert task.verify(question, task.oracle.answer(question))
    assert task.oracle.answer("1 1 1 1") is None
