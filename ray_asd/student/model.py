"""The student: a causal LM that also LoRA-finetunes on (prompt, completion) pairs and gives
BADGE gradient embeddings.

Answering and scoring are :class:`ray_asd.models.causal_lm.CausalLM`'s. Training pads on the
right, as scoring does. Adapters: ``train`` creates a LoRA adapter when there is none and
continues the existing one otherwise ("continue" mode); ``reset_adapter`` drops it, so the next
``train`` starts from the base model again ("retrain" mode).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ray_asd.config import TrainConfig
from ray_asd.models.batching import IGNORE, length_batches, pad_rows
from ray_asd.models.causal_lm import CausalLM
from ray_asd.student.gradients import badge_embedding, head_inputs, sketch_matrices
from ray_asd.student.training import BatchLoss, TrainStats, run_training


class Student(CausalLM):
    """A :class:`CausalLM` with LoRA training, adapters and BADGE gradient embeddings.

    Args:
        model: A causal LM (already on its device).
        tokenizer: Its tokenizer; must have a pad token.
        autocast: bf16 autocast for answering, scoring and training (fp32 master weights).
    """

    def __init__(
        self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, *, autocast: bool = False
    ) -> None:
        super().__init__(model, tokenizer, autocast=autocast)
        self._base = model
        # grad_embeddings' sketch matrices, keyed by (seed, vocab, hidden, r1, r2, device).
        self._sketches: dict[tuple[object, ...], tuple[torch.Tensor, torch.Tensor]] = {}

    # ---- gradient embeddings ------------------------------------------------------------

    @torch.no_grad()
    def grad_embeddings(
        self,
        prompts: list[str],
        completions: list[str],
        *,
        batch_size: int,
        sketch: tuple[int, int] | None = (16, 32),
        seed: int = 0,
    ) -> np.ndarray:
        """BADGE gradient embeddings of each completion w.r.t. the output layer's weight.

        BADGE (Ash et al. 2020, "Deep Batch Active Learning by Diverse, Uncertain Gradient
        Lower Bounds") embeds an example by the gradient its loss would give the last layer
        if its label were the model's own prediction; k-means++ on these embeddings picks
        examples that are both uncertain (long gradients) and diverse (different directions).
        Here an example is a completion plus EOS after its prompt, built as ``nll(...,
        add_eos=True)`` builds it. At each completion position t, with ``h_t`` the hidden state
        fed to the output layer ``W`` (V x d), ``p_t`` the softmax of the logits and the
        pseudo-label ``y_t = argmax p_t``, the cross-entropy gradient w.r.t. ``W`` is
        ``g_t h_t^T`` with ``g_t = p_t - onehot(y_t)``; the embedding is the mean
        ``G = (1/T) sum_t g_t h_t^T``. For the student's own greedy answer ``y_t`` is the answer
        token itself. With tied embeddings this is the output-layer part of the shared
        matrix's gradient.

        ``G`` has V*d entries (28M for SmolLM2-135M), so by default it is sketched as
        ``vec(A G B)`` with ``A`` (r1 x V) and ``B`` (d x r2) Gaussian with variances 1/r1 and
        1/r2, computed without forming ``G`` as ``(1/T) sum_t (A g_t) kron (B^T h_t)``. Then
        ``E||A G B||_F^2 = ||G||_F^2`` (``E[A^T A] = I`` and ``E[B B^T] = I``, independently),
        so k-means++ distances approximate the true ones; the embeddings are approximate, of
        dimension r1*r2 = 512 by default, and a single-token answer's squared norm has a
        relative standard deviation of ~45% at (16, 32), less as ``G`` spreads over more
        directions. ``A`` and ``B`` depend only on ``seed`` and the sizes.

        Args:
            prompts: Plain-text prompts.
            completions: Completions, one per prompt, tokenized on their own.
            batch_size: Examples per forward pass.
            sketch: ``(r1, r2)``, or None for the exact ``G`` (V*d floats: tiny models only).
            seed: Seed of the sketch matrices.

        Returns:
            float32 array of shape ``(len(prompts), r1 * r2)`` (or ``V * d``), in input order.

        Raises:
            ValueError: On mismatched lengths, ``batch_size < 1`` or a sketch dimension < 1.
        """
        if len(prompts) != len(completions):
            raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if sketch is not None and (len(sketch) != 2 or min(sketch) < 1):
            raise ValueError(f"sketch must be two dimensions >= 1, got {sketch!r}")
        vocab, hidden = self.model.get_output_embeddings().weight.shape
        projections = None if sketch is None else self._sketch_pair(seed, vocab, hidden, *sketch)
        dim = vocab * hidden if sketch is None else sketch[0] * sketch[1]
        inputs, labels = self.build_examples(prompts, completions, add_eos=True)
        out = np.zeros((len(prompts), dim), dtype=np.float32)
        self.model.eval()
        pad = self.tokenizer.pad_token_id
        for batch in length_batches(inputs, batch_size):
            input_ids, mask = pad_rows([inputs[i] for i in batch], pad, self.device, left=False)
            label_ids, _ = pad_rows([labels[i] for i in batch], IGNORE, self.device, left=False)
            autocast = self._maybe_autocast(self.autocast)
            states, logits = head_inputs(self.model, input_ids, mask, autocast)
            # Position t predicts token t + 1, as in _token_nll.
            counted = label_ids[:, 1:] != IGNORE
            # One example at a time, in chunks of positions (see gradients.PROB_CHUNK): a batch's
            # float32 probabilities at once would take 315 MB at 16 x 100 tokens.
            for row, i in enumerate(batch):
                positions = counted[row].nonzero().squeeze(1)
                out[i] = badge_embedding(states[row], logits[row], positions, projections)
        return out

    def _sketch_pair(
        self, seed: int, vocab: int, hidden: int, r1: int, r2: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The sketch matrices on this student's device, drawn once per key."""
        key = (seed, vocab, hidden, r1, r2, self.device)
        if key not in self._sketches:
            a, b = sketch_matrices(seed, vocab, hidden, r1, r2)
            self._sketches[key] = (a.to(self.device), b.to(self.device))
        return self._sketches[key]

    # ---- training and adapters ----------------------------------------------------------

    def train(
        self, prompts: list[str], completions: list[str], settings: TrainConfig, seed: int
    ) -> TrainStats:
        """LoRA-finetune on (prompt, completion + EOS) pairs, loss on completion tokens only.

        Continues the current adapter if there is one, else creates a fresh one (the caller
        resets the adapter first for ``settings.mode == "retrain"``).

        Args:
            prompts: Plain-text prompts.
            completions: Target completions (EOS is appended here).
            settings: The LoRA shape and the optimisation knobs.
            seed: Seeds the adapter's initialisation, LoRA dropout and the shuffling.

        Returns:
            Step count, first/last epoch mean loss and wall time.
        """
        if len(prompts) != len(completions) or not prompts:
            raise ValueError("need as many completions as prompts, and at least one of each")
        inputs, labels = self.build_examples(prompts, completions, add_eos=True)
        # The adapter's random init and LoRA dropout draw from torch's global RNG: seed it
        # for reproducible runs, inside a fork so the caller's random stream is untouched.
        with self._rng(seed):
            if not self.has_adapter:
                lora = LoraConfig(
                    r=settings.lora_r,
                    lora_alpha=settings.lora_alpha,
                    lora_dropout=settings.lora_dropout,
                    target_modules=list(settings.lora_target_modules),
                    task_type="CAUSAL_LM",
                )
                self.model = get_peft_model(self._base, lora)
            try:
                loss = self._batch_loss_fn(self.autocast)
                return run_training(self.model, inputs, labels, loss, settings, seed)
            finally:
                self.model.eval()

    def _batch_loss_fn(self, autocast: bool) -> BatchLoss:
        def loss(inputs: list[list[int]], labels: list[list[int]]) -> tuple[torch.Tensor, int]:
            # bf16 autocast with fp32 master weights: 2.4x faster on CPU, and still learns.
            with self._maybe_autocast(autocast):
                token_nll, mask = self._token_nll(inputs, labels)
            n = int(mask.sum())
            # Token-mean over the batch, as HF does: long answers weigh by their length.
            return (token_nll * mask).sum() / max(n, 1), n

        return loss

    @property
    def has_adapter(self) -> bool:
        """Whether a LoRA adapter is attached."""
        return isinstance(self.model, PeftModel)

    def reset_adapter(self) -> None:
        """Drop the adapter: back to the unchanged base model ("retrain" mode)."""
        if isinstance(self.model, PeftModel):
            # unload() removes the LoRA layers without merging them into the base weights.
            self._base = self.model.unload()
            self.model = self._base
        self.model.eval()

    def save_adapter(self, path: str | Path) -> None:
        """Save the adapter (peft format) to ``path``.

        Raises:
            ValueError: If there is no adapter.
        """
        if not isinstance(self.model, PeftModel):
            raise ValueError("no adapter to save: train or load one first")
        self.model.save_pretrained(str(path))

    def load_adapter(self, path: str | Path) -> None:
        """Replace any current adapter with the one saved at ``path`` (trainable)."""
        self.reset_adapter()
        self.model = PeftModel.from_pretrained(self._base, str(path), is_trainable=True)
        self.model.eval()
