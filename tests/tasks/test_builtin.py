import pytest

from ray_asd.errors import ConfigError, DataError
from ray_asd.tasks import TABLE_COLUMNS, make_task
from ray_asd.tasks.builtin import exact_equal, extract_choice, extract_final_line

GSM8K_REFERENCE = (
    "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n"
    "Natalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\n#### 72"
)


@pytest.mark.parametrize(
    ("output", "correct"),
    [
        (GSM8K_REFERENCE, True),
        ("She sold 24 in May, so 48 + 24 = 72.\n#### 72", True),
        ("48 + 24 = 72 clips.\nThe answer is 72.", True),  # no ####, number in the last line
        ("#### 72.00", True),
        ("#### 72 clips", True),
        ("#### $72", True),
        ("48 + 24 = 72\n#### 71", False),
        ("#### 72\nQuestion: next one\n#### 5", True),
        ("The answer is: 71, since 72 was wrong.", False),  # the stated answer, not the last number
        ("48/2 = 24", False),
        ("", False),
    ],
)
def test_gsm8k_checker(output: str, correct: bool) -> None:
    task = make_task("gsm8k")
    assert task.is_correct("How many clips?", output, GSM8K_REFERENCE) is correct


def test_gsm8k_negative_and_decimal_references() -> None:
    task = make_task("gsm8k")
    assert task.is_correct("q", "#### -3", "... so the change is -3.\n#### -3")
    assert task.is_correct("q", "It costs $2.50.", "#### 2.5")
    assert not task.is_correct("q", "#### 3", "#### -3")


@pytest.mark.parametrize(
    ("text", "final"),
    [
        ("reasoning\n#### Paris", "Paris"),
        ("reasoning\nThe answer is: Paris", "Paris"),
        ("Answer: blue", "blue"),
        ("just this", "just this"),
        ("", None),
        ("####   ", None),
    ],
)
def test_extract_final_line(text: str, final: str | None) -> None:
    assert extract_final_line(text) == final


@pytest.mark.parametrize(
    ("text", "letter"),
    [
        ("The answer is (B).", "B"),
        ("#### C", "C"),
        ("Answer: d", None),  # a bare lower-case letter is a word, not a choice
        ("Answer: (d)", "D"),
        ("I think B", "B"),
        ("B. Paris", "B"),
        ("Between A and C, it is C", "C"),
        ("no letter here", None),
    ],
)
def test_extract_choice(text: str, letter: str | None) -> None:
    assert extract_choice(text) == letter


def test_exact_equal_normalises_case_space_and_full_stop() -> None:
    assert exact_equal("  Paris. ", "paris")
    assert exact_equal("New   York", "new york")
    assert not exact_equal("Paris", "Lyon")


@pytest.mark.parametrize(
    ("checker", "output", "reference", "correct"),
    [
        ("exact", "Reasoning...\n#### Paris", "Paris", True),
        ("exact", "#### Lyon", "Paris", False),
        ("numeric", "so 1,000 in all\n#### 1,000", "1000", True),
        ("numeric", "The answer is 7.", "7.0", True),
        ("math", "$\\boxed{\\frac{1}{2}}$", "0.5", True),
        ("math", "#### 1/2", "\\frac12", True),
        ("choice", "The correct option is (c).", "C", True),
        ("choice", "The correct option is (c).", "(B)", False),
    ],
)
def test_generic_checkers(checker: str, output: str, reference: str, correct: bool) -> None:
    task = make_task("generic", checker=checker)
    assert task.is_correct("q", output, reference) is correct


def test_registry_errors_name_close_matches() -> None:
    with pytest.raises(ConfigError, match="did you mean 'gsm8k'"):
        make_task("gsm8")
    with pytest.raises(ConfigError, match=r"unknown checker 'numerc'.*'numeric'"):
        make_task("generic", checker="numerc")
    with pytest.raises(ConfigError, match="unknown parameter"):
        make_task("gsm8k", checker="exact")


def test_game24_builtin_splits_partition_the_full_set() -> None:
    task = make_task("game24")
    full, train, test = (task.builtin(split) for split in ("all", "train", "test"))
    assert list(full.columns) == list(TABLE_COLUMNS)
    assert (len(full), len(train), len(test)) == (1362, 1090, 272)
    assert set(train["id"]).isdisjoint(test["id"])
    assert set(train["id"]) | set(test["id"]) == set(full["id"])
    row = full.iloc[0]
    assert task.is_correct(row["question"], row["answer"], row["answer"])
    assert task.verify(row["question"], row["answer"])
    with pytest.raises(DataError, match="unknown split 'dev'"):
        task.builtin("dev")


def test_prompt_format() -> None:
    assert make_task("gsm8k").prompt("What is 2+2?") == "Question: What is 2+2?\nAnswer:"


@pytest.mark.parametrize(
    ("task", "text", "cut"),
    [
        ("gsm8k", "2 + 3 = 5\n#### 5\nQuestion: next\n#### 9", "2 + 3 = 5\n#### 5"),
        ("gsm8k", "no marker\nat all", "no marker\nat all"),
        (
            "game24",
            "4 * 6 = 24\nAnswer: 4 * 6 * 1 * 1 = 24\nNow try 2 3 4 5",
            "4 * 6 = 24\nAnswer: 4 * 6 * 1 * 1 = 24",
        ),
        ("math", "so $\\boxed{3}$.\nProblem: another", "so $\\boxed{3}$."),
        (
            "math",
            "$\\boxed{\\begin{pmatrix} 1 \\\\\n 2 \\end{pmatrix}}$",
            "$\\boxed{\\begin{pmatrix} 1 \\\\\n 2 \\end{pmatrix}}$",
        ),
    ],
)
def test_cut_after_final(task: str, text: str, cut: str) -> None:
    assert make_task(task).cut_after_final(text) == cut


@pytest.mark.parametrize(
    ("text", "letter"),
    [
        ("Answer: B. I am confident.", "B"),
        ("The answer is B, as I explained.", "B"),
        ("Final Answer: The final answer is C. I hope it is correct.", "C"),
        ("Answer: D\nI hope this helps", "D"),
        ("(i) is right", "I"),  # a parenthesised i is a choice
    ],
)
def test_extract_choice_ignores_the_pronoun_i(text: str, letter: str) -> None:
    assert extract_choice(text) == letter


def test_gsm8k_cut_ignores_markdown_headings_and_cuts_rambling() -> None:
    task = make_task("gsm8k")
    output = "#### Step 1\n16 - 3 = 13\n#### 13\nmore text"
    assert task.cut_after_final(output) == "#### Step 1\n16 - 3 = 13\n#### 13"
    assert task.cut_after_final("18 in all.\nQuestion: next?\n#### 5") == "18 in all."
