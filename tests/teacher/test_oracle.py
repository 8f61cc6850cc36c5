import pytest

from ray_asd.errors import ConfigError
from ray_asd.tasks import make_task
from ray_asd.teacher import OracleTeacher, Prompts, approximate_tokens

ARITH_SEED = "Start with 12. Add 7, then subtract 5. What is the result?"


def test_oracle_writes_verified_items_charged_like_an_llm() -> None:
    task, teacher, prompts = make_task("arith"), OracleTeacher(), Prompts()
    items = teacher.generate(task, [ARITH_SEED, ARITH_SEED], [1, 2])
    assert items[0].question != items[1].question  # different request seeds, different problems
    assert teacher.generate(task, [ARITH_SEED], [1])[0] == items[0]  # reproducible
    for item in items:
        assert task.verify(item.question, item.answer) and item.calls == 2
        assert item.prompt_tokens == approximate_tokens(
            prompts.render("write_question", task, ARITH_SEED)
        ) + approximate_tokens(prompts.render("answer_question", task, item.question))
        assert item.completion_tokens == approximate_tokens(item.question) + approximate_tokens(
            item.answer
        )


def test_oracle_unparsable_seed_and_missing_oracle() -> None:
    teacher = OracleTeacher()
    item = teacher.generate(make_task("arith"), ["not a problem"], [0])[0]
    assert item.question is None and item.completion_tokens == 0 and item.calls == 1
    with pytest.raises(ConfigError, match="task 'gsm8k' has no programmatic oracle"):
        teacher.generate(make_task("gsm8k"), ["q"], [0])


def test_approximate_tokens() -> None:
    assert approximate_tokens("12 + 7 = 19.\n#### 19") == 11  # each "#" is a mark


def test_oracle_writes_logic_puzzles_of_the_seeds_structure() -> None:
    task, teacher = make_task("logic"), OracleTeacher()
    seeds = task.builtin("test")["question"].head(8).tolist()
    items = teacher.generate(task, seeds, list(range(8)))
    for seed, item in zip(seeds, items, strict=True):
        assert item.calls == 2 and item.question != seed
        assert task.difficulty(item.question) == task.difficulty(seed)  # as many people
        assert task.verify(item.question, item.answer)  # one solution, and the answer states it
    (answered,) = teacher.answer(task, [seeds[0]], [0])
    assert answered.answer == task.builtin("test")["answer"][0]
