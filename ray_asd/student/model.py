"""The student: a causal LM that answers, scores and LoRA-finetunes on (prompt, completion) pairs.

Prompts are plain text (no chat template, see STACK-NOTES). Prompt and completion are
tokenized separately and their ids concatenated, so the boundary between them is exact and
the same in generation, scoring and training. Scoring and training pad on the right (causal
attention never looks at trailing pads, so padding cannot change a result); generation pads
on the left as ``generate`` needs.

Adapters: ``train`` creates a LoRA adapter when there is none and continues the existing one
otherwise ("continue" mode); ``reset_adapter`` drops it, so the next ``train`` starts from the
base model again ("retrain" mode). Torch's thread count is left to the caller (Ray sets it).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import GenerationConfig, PreTrainedModel, PreTrainedTokenizerBase

from ray_asd.config import StudentConfig
from ray_asd.student.batching import IGNORE, length_batches, pad_rows
from ray_asd.student.gradients import badge_embedding, sketch_matrices
from ray_asd.student.loading import load_model_and_tokenizer
from ray_asd.student.training import BatchLoss, TrainSettings, TrainStats, run_training


@dataclass(frozen=True)
class Generation:
    """One generated answer.

    Attributes:
        text: The decoded answer, special tokens (EOS) removed.
        n_tokens: Generated tokens, EOS included when the model emitted it.
        mean_nll: Mean negative log-probability of those tokens under the model itself
            (temperature 1, no top-k/top-p), so it is comparable with :meth:`Student.nll`.
    """

    text: str
    n_tokens: int
    mean_nll: float


class Student:
    """A causal LM plus tokenizer with batched answering, scoring and LoRA training.

    Args:
        model: A causal LM (already on its device).
        tokenizer: Its tokenizer; must have a pad token.
        autocast: Run ``answer`` and ``nll`` under bf16 autocast: ~2x faster for both on
            this 2-core CPU (SmolLM2-135M) at ~3e-3 absolute error in mean NLLs.
    """

    def __init__(
        self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, *, autocast: bool = False
    ) -> None:
        if tokenizer.pad_token_id is None:
            raise ValueError("the tokenizer needs a pad token (set it to the EOS token)")
        self._base = model
        self.model: PreTrainedModel | PeftModel = model
        self.tokenizer = tokenizer
        self.autocast = autocast
        self.device = next(model.parameters()).device
        # Every id that ends an answer: the tokenizer's EOS plus any the model's generation
        # config adds (instruct models often list the end-of-turn token too).
        eos = model.generation_config.eos_token_id
        extra = eos if isinstance(eos, list) else [] if eos is None else [eos]
        self.stop_ids = sorted({tokenizer.eos_token_id, *extra})
        # grad_embeddings' sketch matrices, keyed by (seed, vocab, hidden, r1, r2, device).
        self._sketches: dict[tuple[object, ...], tuple[torch.Tensor, torch.Tensor]] = {}

    @classmethod
    def load(
        cls,
        spec: str,
        *,
        cache_dir: Path | None = None,
        device: str | torch.device | None = None,
        trust_remote_code: bool = False,
        autocast: bool = False,
        revision: str | None = None,
    ) -> Student:
        """Load a student from a model spec (see :func:`load_model_and_tokenizer`)."""
        model, tokenizer = load_model_and_tokenizer(
            spec,
            cache_dir=cache_dir,
            device=device,
            trust_remote_code=trust_remote_code,
            revision=revision,
        )
        return cls(model, tokenizer, autocast=autocast)

    @classmethod
    def from_config(cls, settings: StudentConfig, cache_dir: Path | None = None) -> Student:
        """The student a trial's ``student`` section names, at its revision."""
        return cls.load(
            settings.model,
            cache_dir=cache_dir,
            autocast=settings.autocast,
            trust_remote_code=settings.trust_remote_code,
            revision=settings.revision,
        )

    # ---- generation ---------------------------------------------------------------------

    @torch.no_grad()
    def answer(
        self,
        prompts: list[str],
        *,
        max_new_tokens: int,
        batch_size: int,
        greedy: bool = True,
        temperature: float = 1.0,
        top_p: float = 1.0,
        seed: int | None = None,
    ) -> list[Generation]:
        """Generate one answer per prompt, returned in input order.

        Prompts are sorted by length into batches so that little compute goes to padding.

        Args:
            prompts: Plain-text prompts.
            max_new_tokens: Longest answer in tokens (EOS included).
            batch_size: Prompts per ``generate`` call.
            greedy: Greedy decoding; otherwise sample at ``temperature`` (no top-k/top-p).
            temperature: Sampling temperature, ignored when greedy.
            top_p: Nucleus sampling mass, ignored when greedy.
            seed: Seed for sampling; the global RNG is restored afterwards.

        Returns:
            One :class:`Generation` per prompt.
        """
        if max_new_tokens < 1 or batch_size < 1 or temperature <= 0:
            raise ValueError("need max_new_tokens >= 1, batch_size >= 1 and temperature > 0")
        config = GenerationConfig(
            max_new_tokens=max_new_tokens,
            do_sample=not greedy,
            # Explicit values: generate() fills unset ones from the model's generation config
            # and then from global defaults (top_k=50), which would truncate sampling.
            temperature=1.0 if greedy else temperature,
            top_k=None if greedy else 0,
            top_p=1.0 if greedy else top_p,
            repetition_penalty=1.0,
            eos_token_id=self.stop_ids,
            pad_token_id=self.tokenizer.pad_token_id,
            output_logits=True,
            return_dict_in_generate=True,
        )
        ids = self._encode(prompts, special=True)
        results: list[Generation | None] = [None] * len(prompts)
        self.model.eval()
        with self._rng(seed), self._maybe_autocast(self.autocast):
            for batch in length_batches(ids, batch_size):
                generations = self._generate([ids[i] for i in batch], config)
                for i, gen in zip(batch, generations, strict=True):
                    results[i] = gen
        return results  # type: ignore[return-value]

    def _generate(self, rows: list[list[int]], config: GenerationConfig) -> list[Generation]:
        input_ids, mask = pad_rows(rows, self.tokenizer.pad_token_id, self.device, left=True)
        out = self.model.generate(
            input_ids=input_ids, attention_mask=mask, generation_config=config
        )
        new = out.sequences[:, input_ids.shape[1] :]
        # Log-probs under the raw logits (not the processed scores), so a sampled answer's
        # mean_nll means the same as a greedy one's and as nll() of the same tokens.
        logits = torch.stack(out.logits, dim=1).float()
        token_nll = -torch.log_softmax(logits, dim=-1).gather(-1, new.unsqueeze(-1)).squeeze(-1)
        # Everything after the first stop token is padding; the stop token itself counts.
        is_stop = torch.isin(new, torch.tensor(self.stop_ids, device=new.device))
        after_stop = (is_stop.cumsum(dim=1) - is_stop.long()) > 0
        keep = ~after_stop
        n_tokens = keep.sum(dim=1)
        mean_nll = (token_nll * keep).sum(dim=1) / n_tokens
        kept = [row[:n] for row, n in zip(new.tolist(), n_tokens.tolist(), strict=True)]
        texts = self.tokenizer.batch_decode(kept, skip_special_tokens=True)
        return [
            Generation(text=t, n_tokens=int(n), mean_nll=float(m))
            for t, n, m in zip(texts, n_tokens.tolist(), mean_nll.tolist(), strict=True)
        ]

    # ---- scoring ------------------------------------------------------------------------

    @torch.no_grad()
    def nll(
        self,
        prompts: list[str],
        completions: list[str],
        *,
        batch_size: int,
        reduction: str = "mean",
        add_eos: bool = False,
    ) -> np.ndarray:
        """Negative log-likelihood of each completion given its prompt (completion tokens only).

        Args:
            prompts: Plain-text prompts.
            completions: Texts to score, one per prompt, tokenized on their own.
            batch_size: Examples per forward pass.
            reduction: ``"mean"`` (per completion token) or ``"sum"``.
            add_eos: Score an EOS after the completion too, as training teaches it.

        Returns:
            float64 array of shape ``(len(prompts),)``. An empty completion scores NaN for
            ``"mean"`` and 0 for ``"sum"``.
        """
        if reduction not in ("mean", "sum"):
            raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
        if len(prompts) != len(completions):
            raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
        inputs, labels = self.build_examples(prompts, completions, add_eos=add_eos)
        sums = np.zeros(len(prompts))
        counts = np.zeros(len(prompts))
        self.model.eval()
        with self._maybe_autocast(self.autocast):
            for batch in length_batches(inputs, batch_size):
                token_nll, mask = self._token_nll(
                    [inputs[i] for i in batch], [labels[i] for i in batch]
                )
                sums[batch] = (token_nll * mask).sum(dim=1).double().cpu().numpy()
                counts[batch] = mask.sum(dim=1).cpu().numpy()
        if reduction == "sum":
            return sums
        with np.errstate(invalid="ignore"):
            return sums / counts

    def _token_nll(
        self, inputs: list[list[int]], labels: list[list[int]]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-position NLL of the next token and the mask of positions that count."""
        pad = self.tokenizer.pad_token_id
        input_ids, mask = pad_rows(inputs, pad, self.device, left=False)
        label_ids, _ = pad_rows(labels, IGNORE, self.device, left=False)
        logits = self.model(input_ids=input_ids, attention_mask=mask).logits[:, :-1].float()
        targets = label_ids[:, 1:]
        token_nll = F.cross_entropy(
            logits.transpose(1, 2), targets, ignore_index=IGNORE, reduction="none"
        )
        return token_nll, (targets != IGNORE)

    def build_examples(
        self, prompts: list[str], completions: list[str], *, add_eos: bool
    ) -> tuple[list[list[int]], list[list[int]]]:
        """Input ids (prompt + completion [+ EOS]) and labels (IGNORE over the prompt).

        Labels are built explicitly rather than from ``input_ids != pad``: pad == EOS, so
        masking pads would also mask the EOS and the model would never learn to stop.
        """
        prompt_ids = self._encode(prompts, special=True)
        completion_ids = self._encode(completions, special=False)
        eos = [self.tokenizer.eos_token_id] if add_eos else []
        pairs = list(zip(prompt_ids, completion_ids, strict=True))
        inputs = [p + c + eos for p, c in pairs]
        labels = [[IGNORE] * len(p) + c + eos for p, c in pairs]
        return inputs, labels

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
        for batch in length_batches(inputs, batch_size):
            states, logits, counted = self._head_inputs(
                [inputs[i] for i in batch], [labels[i] for i in batch]
            )
            # One example at a time, in chunks of positions (see gradients.PROB_CHUNK): a batch's
            # float32 probabilities at once would take 315 MB at 16 x 100 tokens.
            for row, i in enumerate(batch):
                positions = counted[row].nonzero().squeeze(1)
                out[i] = badge_embedding(states[row], logits[row], positions, projections)
        return out

    def _head_inputs(
        self, inputs: list[list[int]], labels: list[list[int]]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Hidden states fed to the output layer, logits, and the mask of positions that count.

        A hook captures exactly what the output layer sees (after the final norm, whatever the
        architecture or adapter), without keeping every layer's states as
        ``output_hidden_states`` would.
        """
        input_ids, mask = pad_rows(inputs, self.tokenizer.pad_token_id, self.device, left=False)
        label_ids, _ = pad_rows(labels, IGNORE, self.device, left=False)
        captured: list[torch.Tensor] = []

        def capture(_: torch.nn.Module, args: tuple[torch.Tensor, ...]) -> None:
            captured.append(args[0])

        hook = self.model.get_output_embeddings().register_forward_pre_hook(capture)
        try:
            # Only the forward runs under autocast: the gradient maths stays float32.
            with self._maybe_autocast(self.autocast):
                logits = self.model(input_ids=input_ids, attention_mask=mask).logits
        finally:
            hook.remove()
        # Position t predicts token t + 1, as in _token_nll.
        return captured[0][:, :-1], logits[:, :-1], label_ids[:, 1:] != IGNORE

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
        self, prompts: list[str], completions: list[str], config: TrainSettings
    ) -> TrainStats:
        """LoRA-finetune on (prompt, completion + EOS) pairs, loss on completion tokens only.

        Continues the current adapter if there is one, else creates a fresh one.

        Args:
            prompts: Plain-text prompts.
            completions: Target completions (EOS is appended here).
            config: Training knobs.

        Returns:
            Step count, first/last epoch mean loss and wall time.
        """
        if len(prompts) != len(completions) or not prompts:
            raise ValueError("need as many completions as prompts, and at least one of each")
        inputs, labels = self.build_examples(prompts, completions, add_eos=True)
        # The adapter's random init and LoRA dropout draw from torch's global RNG: seed it
        # for reproducible runs, inside a fork so the caller's random stream is untouched.
        with self._rng(config.seed):
            if not self.has_adapter:
                lora = LoraConfig(
                    r=config.r,
                    lora_alpha=config.alpha,
                    lora_dropout=config.dropout,
                    target_modules=list(config.target_modules),
                    task_type="CAUSAL_LM",
                )
                self.model = get_peft_model(self._base, lora)
            try:
                return run_training(
                    self.model, inputs, labels, self._batch_loss_fn(config.autocast), config
                )
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

    # ---- helpers ------------------------------------------------------------------------

    def _encode(self, texts: list[str], *, special: bool) -> list[list[int]]:
        return self.tokenizer(list(texts), add_special_tokens=special)["input_ids"]

    @contextlib.contextmanager
    def _rng(self, seed: int | None) -> Iterator[None]:
        if seed is None:
            yield
            return
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices, device_type=self.device.type):
            torch.manual_seed(seed)
            yield

    def _maybe_autocast(self, enabled: bool) -> contextlib.AbstractContextManager[object]:
        if not enabled:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
