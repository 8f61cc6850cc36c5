"""A causal LM with its tokenizer: batched answering and teacher-forced scoring.

Prompts are plain text, no chat template: SmolLM2-135M answered 0% of 100 arithmetic problems
with a plain ``Question: ...\\nAnswer:`` prompt and its chat template did not help (measured on
this project's 2-core machine). Prompt and completion are tokenized separately and their ids
concatenated, so the boundary between them is exact and the same in generation, scoring and
training. Scoring pads on the right (causal attention never looks at trailing pads, so padding
cannot change a result); generation pads on the left as ``generate`` needs. Torch's thread
count is left to the caller (Ray sets it).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import numpy as np
import torch
import torch.nn.functional as F
from transformers import GenerationConfig, PreTrainedModel, PreTrainedTokenizerBase

from ray_asd.config import StudentConfig
from ray_asd.models.batching import IGNORE, length_batches, pad_rows
from ray_asd.models.loading import load_model_and_tokenizer


@dataclass(frozen=True)
class Generation:
    """One generated answer.

    Attributes:
        text: The decoded answer, special tokens (EOS) removed.
        n_tokens: Generated tokens, EOS included when the model emitted it.
        mean_nll: Mean negative log-probability of those tokens under the model itself
            (temperature 1, no top-k/top-p), so it is comparable with :meth:`CausalLM.nll`.
    """

    text: str
    n_tokens: int
    mean_nll: float


def stop_ids(tokenizer: PreTrainedTokenizerBase, generation: GenerationConfig) -> list[int]:
    """Every id that ends an answer: the tokenizer's EOS plus any the model's generation config
    adds (instruct models often list the end-of-turn token too). The vLLM student stops on
    the same ids."""
    eos = generation.eos_token_id
    extra = eos if isinstance(eos, list) else [] if eos is None else [eos]
    return sorted({tokenizer.eos_token_id, *extra})


class CausalLM:
    """A causal LM plus tokenizer with batched answering and scoring.

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
        # The module every forward goes through; a subclass may wrap it (a LoRA adapter).
        self.model: torch.nn.Module = model
        self.tokenizer = tokenizer
        self.autocast = autocast
        self.device = next(model.parameters()).device
        self.stop_ids = stop_ids(tokenizer, model.generation_config)

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
    ) -> Self:
        """Load from a model spec (see :func:`ray_asd.models.loading.load_model_and_tokenizer`)."""
        model, tokenizer = load_model_and_tokenizer(
            spec,
            cache_dir=cache_dir,
            device=device,
            trust_remote_code=trust_remote_code,
            revision=revision,
        )
        return cls(model, tokenizer, autocast=autocast)

    @classmethod
    def from_config(cls, settings: StudentConfig, cache_dir: Path | None = None) -> Self:
        """The model a trial's ``student`` section names, at its revision."""
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

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Tokens of each text as a completion is tokenized (no special tokens added)."""
        return [len(ids) for ids in self._encode(texts, special=False)]

    # ---- helpers ------------------------------------------------------------------------

    def _encode(self, texts: list[str], *, special: bool) -> list[list[int]]:
        return self.tokenizer(list(texts), add_special_tokens=special)["input_ids"]

    @contextlib.contextmanager
    def _rng(self, seed: int | None) -> Iterator[None]:
        """Seed torch's global RNG inside a fork, so the caller's random stream is untouched."""
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
