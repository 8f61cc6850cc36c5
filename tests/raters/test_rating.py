import pytest

from ray_asd.raters.rating import parse_rating

# The tail of our judge prompt, as tiny models echo it back.
PROMPT_TAIL = (
    "First explain briefly what is right or wrong in the answer. Then give your verdict on the "
    'last line, in the form "Rating: N", where N is an integer from 1 (wrong, no valid '
    "reasoning) to 10 (correct, with clear and complete reasoning)."
)

CASES = [
    # Labelled verdicts as the prompt asks and as API models write them.
    pytest.param(
        "The student added the two prices and subtracted the discount correctly.\nRating: 9",
        9.0,
        id="plain-verdict-line",
    ),
    pytest.param(
        "## Evaluation\n\n"
        "### Correctness\nThe final answer, 42, matches the expected result.\n\n"
        "### Reasoning\nEach step is justified, though the unit conversion is implicit.\n\n"
        "**Rating:** 8",
        8.0,
        id="gpt4-markdown-headings-bold-label",
    ),
    pytest.param(
        "The answer is correct and well explained.\n\n**Rating: 8**",
        8.0,
        id="qwen-whole-line-bold",
    ),
    pytest.param("The derivation skips the check that x > 0.\n`Rating: 6`", 6.0, id="backticks"),
    pytest.param(
        "__Rating__: 5\nThe student set up the equation but solved it wrongly.",
        5.0,
        id="underscore-bold-then-explanation",
    ),
    pytest.param("Rating:7", 7.0, id="no-space-after-colon"),
    pytest.param("rating - 7", 7.0, id="dash-separator-lower-case"),
    pytest.param("RATING = 4", 4.0, id="equals-separator-upper-case"),
    pytest.param("Some steps are wrong.\nRating：3", 3.0, id="full-width-colon"),
    pytest.param("解释：学生的计算正确。\nRating：7", 7.0, id="chinese-model-full-width-colon"),
    pytest.param(
        "Rating: 8 (good reasoning, minor slip in notation)", 8.0, id="parenthetical-after-value"
    ),
    pytest.param("The answer is right.\nFinal rating: 6/10", 6.0, id="final-label-fraction"),
    pytest.param("Rating: 7/10", 7.0, id="label-with-over-ten"),
    pytest.param("Rating: 9 out of 10", 9.0, id="label-with-out-of-ten"),
    pytest.param("Score: 7\n", 7.0, id="score-label"),
    pytest.param("Overall score: 8.5", 8.5, id="decimal-score"),
    pytest.param("Rating: 7.5.", 7.5, id="decimal-then-full-stop"),
    pytest.param("Grade: 9", 9.0, id="grade-label"),
    pytest.param("Verdict: 3 - the final answer is off by a factor of two.", 3.0, id="verdict"),
    pytest.param("Rating: [[6]]", 6.0, id="label-with-double-brackets"),
    pytest.param("Rating (1-10): 7", 7.0, id="scale-in-parentheses-before-colon"),
    pytest.param("Rating on a scale of 1 to 10: 4", 4.0, id="scale-spelled-before-colon"),
    pytest.param(
        "The student's reasoning is sound.\n\n**Rating:**\n\n**8**\n\nExplanation: clear steps.",
        8.0,
        id="value-alone-on-next-line",
    ),
    pytest.param("Rating: seven", 7.0, id="number-word"),
    pytest.param("My rating is Ten.", 10.0, id="stated-number-word"),
    pytest.param("My rating is 7", 7.0, id="stated-verdict"),
    pytest.param(
        "Overall, the method is right but the arithmetic slips.\nMy final score would be 5.",
        5.0,
        id="stated-verdict-would-be",
    ),
    # Paraphrased verdicts from instruct models.
    pytest.param(
        "The student correctly identified that the train travels 3 hours at 60 km/h, giving "
        "180 km. The explanation is brief but complete.\n\n"
        "I would rate this response a 7 out of 10.",
        7.0,
        id="llama-rate-out-of-ten",
    ),
    pytest.param(
        "The answer forgets the remainder.\nI'd give it a 4/10.", 4.0, id="give-it-fraction"
    ),
    pytest.param(
        "The student got the right total but by guessing.\nI would give it a score of 5.",
        5.0,
        id="give-a-score-of",
    ),
    pytest.param("Mostly fine. I’d rate it an 8.", 8.0, id="curly-apostrophe-rate-an"),
    pytest.param(
        "Clear and correct, though it never checks the answer. I'd rate it 7.",
        7.0,
        id="rate-bare-value-ending-the-sentence",
    ),
    pytest.param(
        "I would rate the 3 steps as sound, but the answer itself is missing.",
        None,
        id="rate-followed-by-a-count-is-not-a-verdict",
    ),
    pytest.param(
        "On a scale of 1 to 10, where 1 is completely wrong and 10 is perfect, I would rate "
        "this answer 6.",
        6.0,
        id="scale-restated-then-rate",
    ),
    pytest.param(
        "I will rate it on a scale of 1 to 10.\nThe answer is correct but terse.\nRating: 8",
        8.0,
        id="scale-in-rate-sentence-ignored",
    ),
    # Benchmark formats.
    pytest.param(
        "The assistant's answer is correct and the reasoning is clear.\n\nRating: [[9]]",
        9.0,
        id="mt-bench-label-brackets",
    ),
    pytest.param(
        "The response computes 24 / 3 = 8 correctly. [[8]]", 8.0, id="mt-bench-brackets-only"
    ),
    pytest.param(
        "Feedback: The response sets up the system of equations correctly but makes a sign "
        "error in step 3, so the final value of y is wrong. [RESULT] 4",
        4.0,
        id="prometheus-result",
    ),
    # Restating, correcting, several numbers.
    pytest.param(
        "Rating: 3\n\nWait, I misread the question: the student's 15 is indeed the number of "
        "apples left. On reflection, Rating: 5",
        5.0,
        id="self-correction-last-wins",
    ),
    pytest.param(
        "Correctness score: 9\nReasoning score: 6\nOverall rating: 7",
        7.0,
        id="sub-scores-then-overall-last-wins",
    ),
    pytest.param(
        "Rating: 7/10, maybe 8/10 if the units were stated.",
        7.0,
        id="labelled-beats-later-bare-fraction",
    ),
    pytest.param(
        "Rating: 11\nSorry, the scale ends at 10.\nRating: 9",
        9.0,
        id="out-of-range-then-valid",
    ),
    pytest.param("Rating: 6\nRating: 12", 6.0, id="valid-then-out-of-range"),
    # Fallbacks without a label.
    pytest.param(
        "The answer is correct, the reasoning is clear. 10/10", 10.0, id="bare-ten-out-of-ten"
    ),
    pytest.param("Accuracy 8/10, clarity 6 out of 10.", 6.0, id="bare-fractions-last-wins"),
    pytest.param(
        "Correct answer with a short justification.\n\n**7**.", 7.0, id="last-line-bold-number"
    ),
    pytest.param("The final answer is wrong.\n2", 2.0, id="last-line-number"),
    # Nothing that is a rating.
    pytest.param("", None, id="empty"),
    pytest.param("   \n\t\n", None, id="whitespace"),
    pytest.param(
        "The student computed 12 + 7 = 19, which is correct.", None, id="math-numbers-no-verdict"
    ),
    pytest.param(
        "The student wrote x = 3/10 and then 3/10 + 1/2 = 4/5, which is right.",
        None,
        id="fractions-in-arithmetic",
    ),
    pytest.param(
        "The tank is 7/10 of the way full after the second pump starts.",
        None,
        id="fraction-of-a-quantity",
    ),
    pytest.param("The cyclist rides at a rate of 5 km/h for 2 hours.", None, id="rate-as-a-noun"),
    pytest.param(
        "I give 5 apples to Tom in the problem, so 12 - 5 = 7 remain.",
        None,
        id="first-person-give-in-maths",
    ),
    pytest.param(
        "The student's work:\nStep 1: 48 / 2 = 24\nStep 2: 24 + 5 = 29\n#### 7",
        None,
        id="gsm8k-final-marker-is-not-a-verdict",
    ),
    pytest.param(
        "Please rate the answer on a scale of 1 to 10, 1 being worst and 10 being best "
        "(1-10). Rate 1-10 from 1-10.",
        None,
        id="scale-only",
    ),
    pytest.param(PROMPT_TAIL, None, id="tiny-model-echoes-prompt"),
    pytest.param(
        (PROMPT_TAIL + "\n") * 3 + "Rating: Rating: Rating:",
        None,
        id="tiny-model-loops",
    ),
    pytest.param("Rating: 1-10", None, id="label-with-range"),
    pytest.param("Score: 7 to 8", None, id="label-with-spelled-range"),
    pytest.param(
        "The student's setup is right, but the final division is off, so I would rate this a",
        None,
        id="truncated-before-value",
    ),
    pytest.param(
        "## Evaluation\nThe student correctly computes 6 * 7 = 42 and then\n\nRating:",
        None,
        id="truncated-after-label",
    ),
    pytest.param(
        "Score:\n1. The student restates the problem.\n2. The student multiplies.",
        None,
        id="label-before-numbered-list",
    ),
    pytest.param("Everything is wrong. 0/10", None, id="zero-out-of-ten"),
    pytest.param("Rating: 0", None, id="label-zero"),
    pytest.param("Rating: 11", None, id="label-eleven"),
    pytest.param("Rating: 15/10 - outstanding!", None, id="fraction-above-scale"),
    pytest.param("Rating: -3", None, id="negative"),
    pytest.param("Rating: 4/5", None, id="other-denominator"),
    pytest.param("I would rate it 3 out of 5.", None, id="other-denominator-out-of"),
    pytest.param("Grade: A", None, id="letter-grade"),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_parse_rating(text: str, expected: float | None) -> None:
    assert parse_rating(text) == expected


def test_rating_is_a_float() -> None:
    rating = parse_rating("Rating: 7")
    assert isinstance(rating, float)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("Rating: 4", 4.0, id="label-in-range"),
        pytest.param("The reasoning is mostly right. 4/5", 4.0, id="bare-fraction-over-five"),
        pytest.param("I would rate this 3 out of 5.", 3.0, id="rate-out-of-five"),
        pytest.param("Rating: 7", None, id="label-above-five"),
        pytest.param("Rating: 7/10", None, id="denominator-ten-is-not-high"),
        pytest.param("Rating: 0.5", None, id="below-low"),
    ],
)
def test_five_point_scale(text: str, expected: float | None) -> None:
    assert parse_rating(text, low=1.0, high=5.0) == expected


def test_zero_based_scale_accepts_zero() -> None:
    assert parse_rating("Rating: 0", low=0.0) == 0.0
