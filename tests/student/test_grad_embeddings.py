"""BADGE gradient embeddings on the tiny random model: exact, sketched, batched, with LoRA."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ray_asd.config import TrainConfig
from ray_asd.student.gradients import sketch_matrices
from ray_asd.student.model import Student
from tests.models.test_causal_lm import PROMPTS

pytestmark = pytest.mark.slow

# The empty completion still counts one position: the EOS.
COMPLETIONS = [" 5", " there, friend", " 17 + 25 = 42.\n#### 42", "", " Once upon a time"]


def autograd_embedding(student: Student, prompt: str, completion: str) -> np.ndarray:
    """The exact BADGE gradient by autograd, from one unbatched forward (no padding).

    The loss is the mean cross-entropy over the completion + EOS positions against the
    model's own argmax, through ``h @ W^T`` with ``W`` a leaf copy of the output layer's
    weight, so the gradient is w.r.t. the output layer alone (the tiny model ties it).
    """
    tok = student.tokenizer
    p = tok(prompt)["input_ids"]
    c = tok(completion, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    with torch.no_grad():
        out = student.model(input_ids=torch.tensor([p + c]), output_hidden_states=True)
    # The token at position t is predicted at t - 1.
    counted = slice(len(p) - 1, len(p) + len(c) - 1)
    h = out.hidden_states[-1][0, counted]
    w = student.model.get_output_embeddings().weight.detach().clone().requires_grad_(True)
    logits = h @ w.T
    # hidden_states[-1] is the normed state that feeds the output layer (transformers 5 swaps
    # the last layer's raw output for it); otherwise this reference would be wrong too.
    torch.testing.assert_close(logits.detach(), out.logits[0, counted])
    loss = F.cross_entropy(logits, logits.detach().argmax(dim=-1))
    (grad,) = torch.autograd.grad(loss, w)
    return grad.flatten().numpy()


def assert_exact(student: Student, got: np.ndarray) -> None:
    """Each row of ``got`` (sketch=None) equals the autograd gradient of its pair."""
    for row, prompt, completion in zip(got, PROMPTS, COMPLETIONS, strict=True):
        expected = autograd_embedding(student, prompt, completion)
        # float32 sums of ~V * d products, in a different order from autograd's.
        np.testing.assert_allclose(row, expected, rtol=1e-4, atol=1e-6 * np.abs(expected).max())


def test_exact_embedding_is_the_autograd_gradient(tiny_student: Student) -> None:
    assert not tiny_student.autocast  # bf16 would need looser tolerances
    got = tiny_student.grad_embeddings(PROMPTS, COMPLETIONS, batch_size=2, sketch=None)
    vocab, hidden = tiny_student.model.get_output_embeddings().weight.shape
    assert got.shape == (len(PROMPTS), vocab * hidden) and got.dtype == np.float32
    assert_exact(tiny_student, got)


def test_sketch_is_a_g_b_of_the_exact_embedding(tiny_student: Student) -> None:
    exact = tiny_student.grad_embeddings(PROMPTS, COMPLETIONS, batch_size=2, sketch=None)
    sketched = tiny_student.grad_embeddings(PROMPTS, COMPLETIONS, batch_size=2, seed=7)
    vocab, hidden = tiny_student.model.get_output_embeddings().weight.shape
    a, b = sketch_matrices(7, vocab, hidden, 16, 32)
    assert sketched.shape == (len(PROMPTS), 16 * 32) and sketched.dtype == np.float32
    for row, g in zip(sketched, exact, strict=True):
        expected = a.double() @ torch.from_numpy(g).double().view(vocab, hidden) @ b.double()
        np.testing.assert_allclose(
            row, expected.flatten().numpy(), rtol=1e-4, atol=1e-5 * expected.abs().max().item()
        )


def test_sketch_preserves_squared_norms_in_expectation(tiny_student: Student) -> None:
    """Mean over 48 seeds of ||A G B||^2 / ||G||^2 is within 0.25 of 1.

    Each ratio is a product of chi-square(16)/16 and chi-square(32)/32 at worst (a rank-one
    G), relative std 0.44; the mean of 48 independent seeds has std <= 0.064, so 0.25 is ~4
    standard deviations, while a wrongly scaled A or B is off by a factor of 16 or more.
    """
    exact = tiny_student.grad_embeddings(PROMPTS, COMPLETIONS, batch_size=5, sketch=None)
    norms = (exact.astype(np.float64) ** 2).sum(axis=1)
    ratios = [
        (tiny_student.grad_embeddings(PROMPTS, COMPLETIONS, batch_size=5, seed=seed) ** 2).sum(1)
        / norms
        for seed in range(48)
    ]
    assert np.mean(ratios) == pytest.approx(1.0, abs=0.25)


def test_batching_order_and_seeds(tiny_student: Student) -> None:
    one = tiny_student.grad_embeddings(PROMPTS, COMPLETIONS, batch_size=1, seed=3)
    three = tiny_student.grad_embeddings(PROMPTS, COMPLETIONS, batch_size=3, seed=3)
    np.testing.assert_allclose(three, one, rtol=1e-4, atol=1e-6)
    for row, prompt, completion in zip(three, PROMPTS, COMPLETIONS, strict=True):
        alone = tiny_student.grad_embeddings([prompt], [completion], batch_size=1, seed=3)
        np.testing.assert_allclose(row, alone[0], rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(
        tiny_student.grad_embeddings(PROMPTS, COMPLETIONS, batch_size=3, seed=3), three
    )
    other = tiny_student.grad_embeddings(PROMPTS, COMPLETIONS, batch_size=3, seed=4)
    assert not np.allclose(other, three)
    # One pair of sketch matrices per seed, drawn once and reused.
    assert len(tiny_student._sketches) == 2


def test_works_with_a_lora_adapter_which_changes_them(tiny_student: Student) -> None:
    before = tiny_student.grad_embeddings(PROMPTS, COMPLETIONS, batch_size=5)
    # One optimizer step on the same pairs: enough to move the (zero-initialised) adapter.
    settings = TrainConfig(learning_rate=1e-2, epochs=1, batch_size=5)
    tiny_student.train(PROMPTS, COMPLETIONS, settings, seed=0)
    assert tiny_student.has_adapter
    after = tiny_student.grad_embeddings(PROMPTS, COMPLETIONS, batch_size=5)
    assert not np.allclose(after, before, rtol=1e-3, atol=1e-6)
    exact = tiny_student.grad_embeddings(PROMPTS, COMPLETIONS, batch_size=2, sketch=None)
    assert_exact(tiny_student, exact)


def test_rejects_bad_arguments(tiny_student: Student) -> None:
    with pytest.raises(ValueError, match="completions"):
        tiny_student.grad_embeddings(PROMPTS, COMPLETIONS[:2], batch_size=2)
    for bad in [(0, 32), (16, 0)]:
        with pytest.raises(ValueError, match="sketch"):
            tiny_student.grad_embeddings(PROMPTS, COMPLETIONS, batch_size=2, sketch=bad)
    with pytest.raises(ValueError, match="batch_size"):
        tiny_student.grad_embeddings(PROMPTS, COMPLETIONS, batch_size=0)
