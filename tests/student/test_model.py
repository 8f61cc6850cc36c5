"""Student on the tiny random model: NLL, answering, LoRA training and adapters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ray_asd.student import Student, TrainSettings

PROMPTS = [
    "Question: What is 2 + 3?\nAnswer:",
    "Hi",
    "Question: A farmer has 17 cows and buys 25 more. How many cows now?\nAnswer:",
    "Question: 9 * 9?\nAnswer:",
    "Tell me a story about a cat.",
]
COMPLETIONS = [" 5", " there, friend", " 17 + 25 = 42.\n#### 42", " 81", " Once upon a time"]


def hand_nll(student: Student, prompt: str, completion: str) -> tuple[float, float]:
    """(mean, sum) NLL of the completion's tokens: one unbatched forward, log_softmax, gather."""
    tok = student.tokenizer
    p = tok(prompt)["input_ids"]
    c = tok(completion, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([p + c])
    with torch.no_grad():
        logprobs = torch.log_softmax(student.model(input_ids=ids).logits[0].double(), dim=-1)
    # The token at position t is predicted by the logits at t - 1.
    picked = [-logprobs[t - 1, ids[0, t]].item() for t in range(len(p), len(p) + len(c))]
    return float(np.mean(picked)), float(np.sum(picked))


def hand_greedy(student: Student, prompt: str, max_new: int) -> tuple[list[int], float]:
    """Greedy decoding one token at a time with full forwards (no cache, no padding)."""
    ids = student.tokenizer(prompt)["input_ids"]
    new: list[int] = []
    nlls: list[float] = []
    with torch.no_grad():
        while len(new) < max_new:
            logits = student.model(input_ids=torch.tensor([ids + new])).logits[0, -1]
            logprobs = torch.log_softmax(logits.double(), dim=-1)
            token = int(logprobs.argmax())
            new.append(token)
            nlls.append(-logprobs[token].item())
            if token in student.stop_ids:
                break
    return new, float(np.mean(nlls))


def test_nll_matches_a_hand_computation(tiny_student: Student) -> None:
    mean = tiny_student.nll(PROMPTS, COMPLETIONS, batch_size=4)
    total = tiny_student.nll(PROMPTS, COMPLETIONS, batch_size=4, reduction="sum")
    expected = np.array(
        [hand_nll(tiny_student, p, c) for p, c in zip(PROMPTS, COMPLETIONS, strict=True)]
    )
    np.testing.assert_allclose(mean, expected[:, 0], atol=1e-4)
    np.testing.assert_allclose(total, expected[:, 1], atol=1e-3)
    assert mean.dtype == np.float64 and mean.shape == (len(PROMPTS),)


def test_nll_does_not_depend_on_batching(tiny_student: Student) -> None:
    one = tiny_student.nll(PROMPTS, COMPLETIONS, batch_size=1)
    four = tiny_student.nll(PROMPTS, COMPLETIONS, batch_size=4)
    np.testing.assert_allclose(one, four, atol=1e-4)


def test_nll_rejects_bad_arguments(tiny_student: Student) -> None:
    with pytest.raises(ValueError, match="reduction"):
        tiny_student.nll(PROMPTS, COMPLETIONS, batch_size=2, reduction="max")
    with pytest.raises(ValueError, match="completions"):
        tiny_student.nll(PROMPTS, COMPLETIONS[:2], batch_size=2)


def test_greedy_answers_match_step_by_step_decoding(tiny_student: Student) -> None:
    """Batched, left-padded, cached generation equals naive decoding, in input order."""
    max_new = 6
    got = tiny_student.answer(PROMPTS, max_new_tokens=max_new, batch_size=3)
    assert got == tiny_student.answer(PROMPTS, max_new_tokens=max_new, batch_size=3)
    for prompt, gen in zip(PROMPTS, got, strict=True):
        ids, mean_nll = hand_greedy(tiny_student, prompt, max_new)
        assert gen.text == tiny_student.tokenizer.decode(ids, skip_special_tokens=True)
        assert gen.n_tokens == len(ids) <= max_new
        assert gen.mean_nll == pytest.approx(mean_nll, abs=1e-4)


def test_answers_stop_at_a_stop_token_which_counts(model_cache: Path) -> None:
    """Make the 3rd greedy token of a prompt a stop token: answers end there, EOS included."""
    student = Student.load("tiny:", cache_dir=model_cache, device="cpu")
    prompt = PROMPTS[2]
    ids, _ = hand_greedy(student, prompt, 3)
    student.stop_ids = sorted({*student.stop_ids, ids[2]})
    expected_ids, mean_nll = hand_greedy(student, prompt, 8)
    [gen, other] = student.answer([prompt, PROMPTS[0]], max_new_tokens=8, batch_size=2)
    assert gen.n_tokens == len(expected_ids) <= 3
    assert gen.mean_nll == pytest.approx(mean_nll, abs=1e-4)
    assert other.n_tokens == len(hand_greedy(student, PROMPTS[0], 8)[0])


def test_sampling_is_seeded(tiny_student: Student) -> None:
    kwargs = {"max_new_tokens": 8, "batch_size": 5, "greedy": False, "temperature": 1.5}
    a = tiny_student.answer(PROMPTS, seed=1, **kwargs)
    assert a == tiny_student.answer(PROMPTS, seed=1, **kwargs)
    assert a != tiny_student.answer(PROMPTS, seed=2, **kwargs)
    # mean_nll is under the untempered model, not the tempered sampler: still finite, > 0.
    assert all(0 < g.mean_nll < 30 for g in a)


ITEMS = [(a, b) for a in (3, 14, 25, 41) for b in (2, 7, 19, 30)]
TRAIN_PROMPTS = [f"Question: What is {a} + {b}?\nAnswer:" for a, b in ITEMS]
TRAIN_COMPLETIONS = [f" {a} + {b} = {a + b}.\n#### {a + b}" for a, b in ITEMS]


def test_lora_training_adapters_and_reset(
    tiny_student: Student, model_cache: Path, tmp_path: Path
) -> None:
    student = tiny_student
    score = lambda: student.nll(TRAIN_PROMPTS, TRAIN_COMPLETIONS, batch_size=16)  # noqa: E731
    base = score()
    settings = TrainSettings(lr=1e-2, epochs=4, batch_size=8)
    stats = student.train(TRAIN_PROMPTS, TRAIN_COMPLETIONS, settings)
    trained = score()
    assert stats.steps == 8
    assert stats.last_epoch_loss < stats.first_epoch_loss
    assert student.has_adapter
    assert trained.mean() < base.mean() - 1.0, (base.mean(), trained.mean())

    # Save, then load into a fresh student: identical NLLs.
    student.save_adapter(tmp_path / "adapter")
    fresh = Student.load("tiny:", cache_dir=model_cache, device="cpu")
    fresh.load_adapter(tmp_path / "adapter")
    np.testing.assert_allclose(
        fresh.nll(TRAIN_PROMPTS, TRAIN_COMPLETIONS, batch_size=16), trained, atol=1e-6
    )

    # "continue" mode: a second call trains the same adapter further.
    student.train(TRAIN_PROMPTS, TRAIN_COMPLETIONS, settings)
    assert score().mean() < trained.mean()

    # reset: the base model, bit for bit; saving now is an error.
    student.reset_adapter()
    assert not student.has_adapter
    np.testing.assert_allclose(score(), base, atol=1e-6)
    with pytest.raises(ValueError, match="no adapter"):
        student.save_adapter(tmp_path / "none")

    # "retrain" mode: after a reset, training starts a fresh adapter; same seed, same run.
    again = student.train(TRAIN_PROMPTS, TRAIN_COMPLETIONS, settings)
    assert again.first_epoch_loss == pytest.approx(stats.first_epoch_loss, abs=1e-5)
    assert again.last_epoch_loss == pytest.approx(stats.last_epoch_loss, abs=1e-4)
