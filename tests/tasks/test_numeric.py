from fractions import Fraction

import pytest

from ray_asd.tasks.numeric import extract_number, numbers_equal, parse_number, strip_calculator


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("18", 18),
        ("18.0", 18),
        ("18.00", 18),
        ("+18", 18),
        ("-3", -3),
        ("−3", -3),  # Unicode minus
        ("- 3", -3),
        ("$18", 18),
        ("$ 18.50", Fraction(37, 2)),
        ("-$5", -5),
        ("€1,250", 1250),
        ("1,000,000", 1000000),
        ("12,345.67", Fraction(1234567, 100)),
        ("3/4", Fraction(3, 4)),
        ("3 / 4", Fraction(3, 4)),
        ("-1/2", Fraction(-1, 2)),
        (".5", Fraction(1, 2)),
        ("0.5", Fraction(1, 2)),
        ("50%", 50),
        ("18 dollars.", 18),
        ("18.", 18),
        ("007", 7),
    ],
)
def test_parse_number_values(text: str, value: Fraction) -> None:
    assert parse_number(text) == value


@pytest.mark.parametrize("text", ["", "no number here", "$", "1/0", "1234,567", "1,5"])
def test_parse_number_rejects(text: str) -> None:
    assert parse_number(text) is None


def test_binary_minus_is_not_a_sign() -> None:
    assert extract_number("So 10-3 = 7") == "7"
    assert parse_number("5-3") == 5


def test_calculator_annotations_are_stripped() -> None:
    assert strip_calculator("16 - 3 - 4 = <<16-3-4=9>>9 eggs") == "16 - 3 - 4 = 9 eggs"
    assert extract_number("She makes 9 * 2 = $<<9*2=18>>18.\n#### 18") == "18"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # GSM8K reference format.
        ("Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\n#### 18", "18"),
        ("#### 1,000", "1,000"),
        ("####-4", "-4"),
        ("#### $70,000", "$70,000"),
        # First #### wins: a model that rambles on into a new question after answering.
        ("... so 5.\n#### 5\n\nQuestion: Tom has 3 apples...\n#### 3", "5"),
        # No ####: the last line states the answer.
        ("He pays 3 * 4 = 12 dollars.\nThe answer is 12.", "12"),
        ("Step 1...\nFinal answer: $1,234.50", "$1,234.50"),
        ("Total = 7 + 5\nAnswer = 12", "12"),
        ("The answer is: 12, not 13.", "12"),
        ("So she makes $18 every day.", "$18"),
        ("So the total is 18 dollars for 3 days.\nThe answer is 18 dollars for 3 days.", "18"),
        ("The temperature drops to −5 degrees.", "−5"),
        ("  \n  \n", None),
        ("#### no number", None),
        ("I don't know.", None),
    ],
)
def test_extract_number(text: str, expected: str | None) -> None:
    assert extract_number(text) == expected


@pytest.mark.parametrize(
    ("predicted", "reference", "equal"),
    [
        ("18", "18", True),
        ("$18.00", "18", True),
        ("18.0", "18", True),
        ("1,000", "1000", True),
        ("+5", "5", True),
        ("0.5", "1/2", True),
        ("-7", "-7", True),
        ("7", "-7", False),
        ("18.01", "18", False),
        ("", "18", False),
        ("eighteen", "18", False),
    ],
)
def test_numbers_equal(predicted: str, reference: str, equal: bool) -> None:
    assert numbers_equal(predicted, reference) is equal


# Regressions from the adversarial review of the checkers.
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The answer is 3 * 6 = 18.", "18"),  # the stated result, not the first operand
        ("The answer is 20 - 2 = 18", "18"),
        ("The answer is 5-3=2", "2"),
        ("#### Step 1: eggs per day\n16 - 3 = 13\n#### 13", "13"),  # markdown heading is no answer
        ("She has 10 - 5", "5"),  # binary minus with spaces is not a sign
        ("####\n18", "18"),
        ("The answer is –5", "–5"),  # en dash as a typeset minus
        ("The answer is 18.\n\nQuestion: Tom has 3 apples and buys 5 more.", "18"),  # rambling cut
        ("1.000.000", None),
        ("The answer is " + "1" * 5000, None),  # degenerate output: no crash, no answer
        ("#### " + "9" * 4400, None),
    ],
)
def test_extract_number_review_cases(text: str, expected: str | None) -> None:
    assert extract_number(text) == expected


def test_signs_of_extracted_numbers() -> None:
    assert parse_number("–5") == -5
    assert parse_number("x = -5") == -5
    assert [parse_number(x) for x in ("10 - 5", "10 -5")] == [10, 10]
