"""CausalLM on the tiny random model: teacher-forced NLL, batched greedy and sampled answers,
token counts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ray_asd.models.causal_lm import CausalLM

pytestmark = pytest.mark.slow

PROMPTS = [
    "Question: What is 2 + 3?\nAnswer:",
    "Hi",
    "Question: A farmer has 17 cows and buys 25 more. How many cows now?\nAnswer:",
    "Question: 9 * 9?\nAnswer:",
    "Tell me a story about a cat.",
]
COMPLETIONS = [" 5", " there, friend", " 17 + 25 = 42.\n#### 42", " 81", " Once upon a time"]


def hand_nll(lm: CausalLM, prompt: str, completion: str) -> tuple[float, float]:
    """(mean, sum) NLL of the completion's tokens: one unbatched forward, log_softmax, gather."""
    tok = lm.tokenizer
    p = tok(prompt)["input_ids"]
    c = tok(completion, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([p + c])
    with torch.no_grad():
        logprobs = torch.log_softmax(lm.model(input_ids=ids).logits[0].double(), dim=-1)
    # The token at position t is predicted by the logits at t - 1.
    picked = [-logprobs[t - 1, ids[0, t]].item() for t in range(len(p), len(p) + len(c))]
    return float(np.mean(picked)), float(np.sum(picked))


def hand_greedy(lm: CausalLM, prompt: str, max_new: int) -> tuple[list[int], float]:
    """Greedy decoding one token at a time with full forwards (no cache, no padding)."""
    ids = lm.tokenizer(prompt)["input_ids"]
    new: list[int] = []
    nlls: list[float] = []
    with torch.no_grad():
        while len(new) < max_new:
            logits = lm.model(input_ids=torch.tensor([ids + new])).logits[0, -1]
            logprobs = torch.log_softmax(logits.double(), dim=-1)
            token = int(logprobs.argmax())
            new.append(token)
            nlls.append(-logprobs[token].item())
            if token in lm.stop_ids:
                break
    return new, float(np.mean(nlls))


def test_nll_matches_a_hand_computation(tiny_lm: CausalLM) -> None:
    mean = tiny_lm.nll(PROMPTS, COMPLETIONS, batch_size=4)
    total = tiny_lm.nll(PROMPTS, COMPLETIONS, batch_size=4, reduction="sum")
    expected = np.array(
        [hand_nll(tiny_lm, p, c) for p, c in zip(PROMPTS, COMPLETIONS, strict=True)]
    )
    np.testing.assert_allclose(mean, expected[:, 0], atol=1e-4)
    np.testing.assert_allclose(total, expected[:, 1], atol=1e-3)
    assert mean.dtype == np.float64 and mean.shape == (len(PROMPTS),)


def test_nll_does_not_depend_on_batching(tiny_lm: CausalLM) -> None:
    one = tiny_lm.nll(PROMPTS, COMPLETIONS, batch_size=1)
    four = tiny_lm.nll(PROMPTS, COMPLETIONS, batch_size=4)
    np.testing.assert_allclose(one, four, atol=1e-4)


def test_nll_rejects_bad_arguments(tiny_lm: CausalLM) -> None:
    with pytest.raises(ValueError, match="reduction"):
        tiny_lm.nll(PROMPTS, COMPLETIONS, batch_size=2, reduction="max")
    with pytest.raises(ValueError, match="completions"):
        tiny_lm.nll(PROMPTS, COMPLETIONS[:2], batch_size=2)


def test_greedy_answers_match_step_by_step_decoding(tiny_lm: CausalLM) -> None:
    """Batched, left-padded, cached generation equals naive decoding, in input order."""
    max_new = 6
    got = tiny_lm.answer(PROMPTS, max_new_tokens=max_new, batch_size=3)
    assert got == tiny_lm.answer(PROMPTS, max_new_tokens=max_new, batch_size=3)
    for prompt, gen in zip(PROMPTS, got, strict=True):
        ids, mean_nll = hand_greedy(tiny_lm, prompt, max_new)
        assert gen.text == tiny_lm.tokenizer.decode(ids, skip_special_tokens=True)
        assert gen.n_tokens == len(ids) <= max_new
        assert gen.mean_nll == pytest.approx(mean_nll, abs=1e-4)


def test_answers_stop_at_a_stop_token_which_counts(model_cache: Path) -> None:
    """Make the 3rd greedy token of a prompt a stop token: answers end there, EOS included."""
    lm = CausalLM.load("tiny:", cache_dir=model_cache, device="cpu")
    prompt = PROMPTS[2]
    ids, _ = hand_greedy(lm, prompt, 3)
    lm.stop_ids = sorted({*lm.stop_ids, ids[2]})
    expected_ids, mean_nll = hand_greedy(lm, prompt, 8)
    [gen, other] = lm.answer([prompt, PROMPTS[0]], max_new_tokens=8, batch_size=2)
    assert gen.n_tokens == len(expected_ids) <= 3
    assert gen.mean_nll == pytest.approx(mean_nll, abs=1e-4)
    assert other.n_tokens == len(hand_greedy(lm, PROMPTS[0], 8)[0])


def test_sampling_is_seeded(tiny_lm: CausalLM) -> None:
    kwargs = {"max_new_tokens": 8, "batch_size": 5, "greedy": False, "temperature": 1.5}
    a = tiny_lm.answer(PROMPTS, seed=1, **kwargs)
    assert a == tiny_lm.answer(PROMPTS, seed=1, **kwargs)
    assert a != tiny_lm.answer(PROMPTS, seed=2, **kwargs)
    # mean_nll is under the untempered model, not the tempered sampler: still finite, > 0.
    assert all(0 < g.mean_nll < 30 for g in a)


def test_count_tokens_adds_no_special_tokens(tiny_lm: CausalLM) -> None:
    counts = tiny_lm.count_tokens(COMPLETIONS)
    assert counts == [
        len(tiny_lm.tokenizer.encode(c, add_special_tokens=False)) for c in COMPLETIONS
    ]
    assert tiny_lm.count_tokens([""]) == [0]
