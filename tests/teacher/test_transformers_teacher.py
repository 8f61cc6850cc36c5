"""The transformers teacher with the embedded SmolLM2: plumbing, not quality (it cannot teach)."""

from pathlib import Path

from ray_asd.student import Student
from ray_asd.tasks import make_task
from ray_asd.teacher import Prompts
from ray_asd.teacher.transformers import TransformersTeacher


def test_one_round_of_writing_and_answering(model_cache: Path) -> None:
    lm = Student.load("embedded:smollm2-135m", cache_dir=model_cache, device="cpu")
    teacher = TransformersTeacher(
        lm, Prompts.load(), "embedded:smollm2-135m", max_new_tokens=48, temperature=0.7
    )
    task = make_task("gsm8k")
    seeds = ["Tom has 3 apples and buys 5 more. How many apples does he have?"]
    written = teacher.write_questions(task, seeds, [7])
    assert written == teacher.write_questions(task, seeds, [7])  # same request seed, same output
    output = written[0]
    assert output.raw and output.prompt_tokens > 30 and 0 < output.completion_tokens <= 48
    assert output.text is not None  # SmolLM2 writes *something* that parses as a question
    answered = teacher.answer_questions(task, [output.text], [7])[0]
    assert answered.raw and answered.completion_tokens > 0
    # The parsed answer, when there is one, ends at its first final-answer line.
    if answered.text is not None and "####" in answered.text:
        assert answered.text.rstrip().splitlines()[-1].lstrip().startswith("####")
