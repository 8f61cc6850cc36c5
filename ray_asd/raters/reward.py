"""The reward model of the ``reward`` strategy: a sequence classifier that rates
(question, student answer); the lowest-rated seeds are picked first.

Any transformers sequence-classification model loads (a hub id or a local folder): a
one-logit reward model (its logit is the reward) or a classifier (the log-probability of the
label that means "good", named in ``reward.label``). A causal LM spec (``embedded:``,
``tiny:``, or a causal LM's folder) gets a new, randomly initialised one-logit head on the
LM's body: a reward model built from a config, for plumbing and tests, not for science.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import numpy as np
import torch
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from ray_asd.config import RewardConfig
from ray_asd.errors import ConfigError
from ray_asd.student import pick_device, resolve_model
from ray_asd.student.batching import length_batches, pad_rows

log = logging.getLogger(__name__)
HEAD_SEED = 0


class RewardModel:
    """Batched rewards of (question, answer) pairs.

    Args:
        model: a sequence-classification model (on its device, eval mode).
        tokenizer: its tokenizer, with a pad token.
        config: how inputs are built and which logit is the reward.
    """

    def __init__(
        self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, config: RewardConfig
    ) -> None:
        self.model, self.tokenizer, self.config = model, tokenizer, config
        self.device = next(model.parameters()).device
        self.label = _label_index(model, config)
        chat = config.input == "chat" or (
            config.input == "auto" and getattr(tokenizer, "chat_template", None)
        )
        self.chat = bool(chat)

    @classmethod
    def load(cls, config: RewardConfig, cache_dir: Path | None = None) -> RewardModel:
        """The reward model ``config.model`` names (see the module docstring).

        Raises:
            ConfigError: a classifier with several labels and no ``reward.label``, or a
                label it does not have.
        """
        source = resolve_model(config.model, cache_dir)
        remote = config.trust_remote_code
        tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=remote)
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        architectures = AutoConfig.from_pretrained(source, trust_remote_code=remote).architectures
        causal_lm = any(name.endswith("ForCausalLM") for name in architectures or [])
        if causal_lm:
            log.warning(
                "reward.model %s is a causal LM: its reward head is new and random", config.model
            )
        # A new head is drawn from a fixed seed: every scoring actor must hold the same one.
        with torch.random.fork_rng():
            torch.manual_seed(HEAD_SEED)
            model = AutoModelForSequenceClassification.from_pretrained(
                source, trust_remote_code=remote, **({"num_labels": 1} if causal_lm else {})
            )
        model.config.pad_token_id = tokenizer.pad_token_id
        model.to(pick_device())
        model.eval()
        return cls(model, tokenizer, config)

    @torch.no_grad()
    def score(self, questions: list[str], answers: list[str]) -> np.ndarray:
        """One reward per (question, answer), in input order (float64)."""
        if len(questions) != len(answers):
            raise ValueError(f"{len(questions)} questions but {len(answers)} answers")
        rows = self._encode(questions, answers)
        rewards = np.zeros(len(rows))
        autocast = (
            torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
            if self.config.autocast
            else contextlib.nullcontext()
        )
        with autocast:
            for batch in length_batches(rows, self.config.batch_size):
                ids, mask = pad_rows(
                    [rows[i] for i in batch], self.tokenizer.pad_token_id, self.device, left=False
                )
                logits = self.model(input_ids=ids, attention_mask=mask).logits.float()
                if logits.shape[-1] > 1:
                    logits = torch.log_softmax(logits, dim=-1)
                rewards[batch] = logits[:, self.label].double().cpu().numpy()
        return rewards

    def _encode(self, questions: list[str], answers: list[str]) -> list[list[int]]:
        limit = {"truncation": True, "max_length": self.config.max_length}
        if self.chat:
            texts = [
                self.tokenizer.apply_chat_template(
                    [{"role": "user", "content": q}, {"role": "assistant", "content": a}],
                    tokenize=False,
                )
                for q, a in zip(questions, answers, strict=True)
            ]
            # The template already holds the special tokens.
            return self.tokenizer(texts, add_special_tokens=False, **limit)["input_ids"]
        return self.tokenizer(questions, answers, **limit)["input_ids"]


def _label_index(model: PreTrainedModel, config: RewardConfig) -> int:
    labels = model.config.num_labels
    if config.label is None:
        if labels == 1:
            return 0
        raise ConfigError(
            f"reward.label: {config.model} has {labels} labels {model.config.id2label}: "
            "name the one that means a good answer"
        )
    if isinstance(config.label, int):
        if not 0 <= config.label < labels:
            raise ConfigError(f"reward.label: {config.label} is not a label index of {labels}")
        return config.label
    by_name = {str(name).lower(): int(i) for i, name in model.config.id2label.items()}
    if config.label.lower() not in by_name:
        raise ConfigError(
            f"reward.label: {config.label!r} is not one of {sorted(by_name)} ({config.model})"
        )
    return by_name[config.label.lower()]
