"""The reward model of the ``reward`` strategy: a sequence classifier that rates
(question, student answer); the lowest-rated seeds are picked first.

Any transformers sequence-classification model loads (a hub id or a local folder): a
one-logit reward model (its logit is the reward) or a classifier (the log-probability of the
label that means "good", named in ``reward.label``). A causal LM spec (``embedded:``,
``tiny:``, or a causal LM's folder) gets a new one-logit head drawn from a fixed seed on the
LM's body, saved once as a classifier folder in the cache: a reward model built from a
config, for plumbing and tests, not for science. Two backends run the same folder on the
same token ids: ``transformers`` (batched forward passes) and ``vllm`` (the engine's
classify path, ``runner="pooling"``).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PretrainedConfig,
    PreTrainedTokenizerBase,
)

from ray_asd.config import RewardConfig
from ray_asd.errors import ConfigError
from ray_asd.models import default_cache_dir, resolve_model
from ray_asd.models.batching import length_batches, pad_rows
from ray_asd.models.loading import cached_folder, pick_device

log = logging.getLogger(__name__)
HEAD_SEED = 0


def reward_source(config: RewardConfig, cache_dir: Path | None = None) -> str:
    """What ``from_pretrained`` loads as the classifier: the model itself, or for a causal LM
    a copy with a new seeded one-logit head, written once into the cache."""
    if config.model is None:
        raise ConfigError("reward.model: no reward model given")
    source = resolve_model(config.model, cache_dir)
    remote = _loading(config, str(source))
    architectures = AutoConfig.from_pretrained(source, **remote).architectures
    if not any(name.endswith("ForCausalLM") for name in architectures or []):
        return str(source)
    log.warning("reward.model %s is a causal LM: its reward head is new and random", config.model)
    pinned = f"|{config.revision}" if config.revision else ""  # a head per revision
    digest = hashlib.sha256(f"{source}|{HEAD_SEED}{pinned}".encode()).hexdigest()[:12]
    folder = (cache_dir or default_cache_dir()) / "models" / f"reward-head-{digest}"

    def build(out: Path) -> None:
        with torch.random.fork_rng():
            torch.manual_seed(HEAD_SEED)
            model = AutoModelForSequenceClassification.from_pretrained(
                source, num_labels=1, **remote
            )
        tokenizer = AutoTokenizer.from_pretrained(source, **remote)
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        model.config.pad_token_id = tokenizer.pad_token_id
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)

    info = {"spec": config.model, "head_seed": str(HEAD_SEED), "revision": config.revision or ""}
    return str(cached_folder(folder, build, info))


def _loading(config: RewardConfig, source: str) -> dict[str, Any]:
    """``from_pretrained`` arguments for ``source``: the revision applies to the hub id itself,
    not to a reward-head folder built from it in the cache."""
    revision = config.revision if source == config.model else None
    return {"trust_remote_code": config.trust_remote_code, "revision": revision}


class RewardInputs:
    """How (question, answer) pairs become token ids, and which logit is the reward.

    Raises:
        ConfigError: a classifier with several labels and no ``reward.label``, or a label it
            does not have.
    """

    def __init__(
        self, tokenizer: PreTrainedTokenizerBase, model: PretrainedConfig, config: RewardConfig
    ) -> None:
        self.tokenizer, self.config = tokenizer, config
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        # A long input loses its start, not the answer's end where the final answer is.
        tokenizer.truncation_side = "left"
        self.label = _label_index(model, config)
        self.chat = config.input == "chat" or (
            config.input == "auto" and bool(getattr(tokenizer, "chat_template", None))
        )

    def encode(self, questions: list[str], answers: list[str]) -> list[list[int]]:
        if len(questions) != len(answers):
            raise ValueError(f"{len(questions)} questions but {len(answers)} answers")
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

    def rewards(self, logits: np.ndarray) -> np.ndarray:
        """(n, labels) logits -> n rewards: the logit, or the label's log-probability."""
        logits = np.asarray(logits, dtype=np.float64)
        if logits.shape[1] > 1:
            logits = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
        return logits[:, self.label]


class RewardModel:
    """Batched rewards of (question, answer) pairs with transformers."""

    def __init__(self, model: Any, inputs: RewardInputs, config: RewardConfig) -> None:
        self.model, self.inputs, self.config = model, inputs, config
        self.device = next(model.parameters()).device

    @classmethod
    def load(cls, config: RewardConfig, cache_dir: Path | None = None) -> RewardModel:
        source = reward_source(config, cache_dir)
        remote = _loading(config, source)
        tokenizer = AutoTokenizer.from_pretrained(source, **remote)
        model = AutoModelForSequenceClassification.from_pretrained(source, **remote)
        inputs = RewardInputs(tokenizer, model.config, config)
        model.to(pick_device())
        model.eval()
        return cls(model, inputs, config)

    @torch.no_grad()
    def score(self, questions: list[str], answers: list[str]) -> np.ndarray:
        """One reward per (question, answer), in input order (float64)."""
        rows = self.inputs.encode(questions, answers)
        logits = np.zeros((len(rows), self.model.config.num_labels))
        autocast = (
            torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
            if self.config.autocast
            else contextlib.nullcontext()
        )
        with autocast:
            for batch in length_batches(rows, self.config.batch_size):
                chunk = [rows[i] for i in batch]
                # Decoder classifiers pool the last token that is not the pad id: an input
                # that ends in the pad token (EOS-as-pad, a template closing with EOS) would
                # be pooled one token early. Padding with an id that no row holds avoids it
                # (padded positions are masked, so which id does not matter otherwise).
                pad = _absent_id(chunk, len(self.inputs.tokenizer))
                self.model.config.pad_token_id = pad
                ids, mask = pad_rows(chunk, pad, self.device, left=False)
                out = self.model(input_ids=ids, attention_mask=mask).logits
                logits[batch] = out.float().cpu().numpy()
        return self.inputs.rewards(logits)


class VllmRewardModel:
    """Rewards through vLLM's classify path, on the token ids the transformers backend uses."""

    def __init__(self, llm: Any, inputs: RewardInputs) -> None:
        self.llm, self.inputs = llm, inputs

    @classmethod
    def load(cls, config: RewardConfig, cache_dir: Path | None = None) -> VllmRewardModel:
        from ray_asd.teacher.vllm import start_engine

        source = reward_source(config, cache_dir)
        remote = _loading(config, source)
        tokenizer = AutoTokenizer.from_pretrained(source, **remote)
        inputs = RewardInputs(tokenizer, AutoConfig.from_pretrained(source, **remote), config)
        engine = start_engine(source, config.vllm, remote["revision"], runner="pooling")
        return cls(engine, inputs)

    def score(self, questions: list[str], answers: list[str]) -> np.ndarray:
        from vllm import PoolingParams

        prompts = [{"prompt_token_ids": ids} for ids in self.inputs.encode(questions, answers)]
        # Raw logits, as the transformers backend reads them (no sigmoid/softmax).
        outputs = self.llm.classify(
            prompts, pooling_params=PoolingParams(use_activation=False), use_tqdm=False
        )
        return self.inputs.rewards(np.array([o.outputs.probs for o in outputs]))


REWARD_BACKENDS = {"transformers": RewardModel.load, "vllm": VllmRewardModel.load}


def load_reward_model(
    config: RewardConfig, cache_dir: Path | None = None
) -> RewardModel | VllmRewardModel:
    """The reward model of ``config`` on its backend."""
    return REWARD_BACKENDS[config.backend](config, cache_dir)


def _absent_id(rows: list[list[int]], vocab: int) -> int:
    """The largest token id below ``vocab`` that no row holds."""
    used = {token for row in rows for token in row}
    return next(i for i in range(vocab - 1, -1, -1) if i not in used)


def _label_index(model: PretrainedConfig, config: RewardConfig) -> int:
    labels = model.num_labels
    if config.label is None:
        if labels == 1:
            return 0
        raise ConfigError(
            f"reward.label: {config.model} has {labels} labels {model.id2label}: "
            "name the one that means a good answer"
        )
    if isinstance(config.label, int):
        if not 0 <= config.label < labels:
            raise ConfigError(f"reward.label: {config.label} is not a label index of {labels}")
        return config.label
    by_name = {str(name).lower(): int(i) for i, name in model.id2label.items()}
    if config.label.lower() not in by_name:
        raise ConfigError(
            f"reward.label: {config.label!r} is not one of {sorted(by_name)} ({config.model})"
        )
    return by_name[config.label.lower()]
