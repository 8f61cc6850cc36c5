"""The `transformers` backend: a local causal LM (CPU or GPU), chat template applied if it has one.

Real LLM-teacher plumbing that runs anywhere; on this project's CPU machines it is exercised
with the embedded SmolLM2, which cannot teach (as a teacher it never wrote a new, solvable
problem in our trials), so quality is irrelevant there.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ray_asd.config import TeacherConfig
from ray_asd.models import resolve_model
from ray_asd.models.causal_lm import CausalLM
from ray_asd.teacher.base import Completion, isolate_failures, sampling_identity


class TransformersBackend:
    def __init__(self, config: TeacherConfig, cache_dir: Path | None = None) -> None:
        assert config.model is not None  # enforced by TeacherConfig's validator
        self.config = config
        self.lm = CausalLM.load(
            config.model, cache_dir=cache_dir, autocast=True, revision=config.revision
        )
        # Fingerprinted once, as loaded: the files of a local folder may change later.
        source = resolve_model(config.model, cache_dir)
        self._identity = sampling_identity(config, source if isinstance(source, Path) else None)
        self._counts = {"requests": 0, "calls": 0, "retries": 0, "failed": 0}

    @property
    def identity(self) -> dict[str, Any]:
        return self._identity

    def _as_text(self, prompt: str) -> str:
        tokenizer = self.lm.tokenizer
        if not self.config.chat or not getattr(tokenizer, "chat_template", None):
            return prompt
        messages = [{"role": "user", "content": prompt}]
        return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    def _generate(self, prompts: list[str], seeds: list[int]) -> list[Completion]:
        texts = [self._as_text(p) for p in prompts]
        # One sampling seed per batch, derived from every request's seed: the same requests
        # always give the same completions (transformers samples a batch from one generator).
        batch_seed = int.from_bytes(hashlib.sha256(repr(seeds).encode()).digest()[:4], "big")
        temperature = self.config.temperature
        generations = self.lm.answer(
            texts,
            max_new_tokens=self.config.max_new_tokens,
            batch_size=min(len(texts), 16),
            greedy=temperature == 0,
            temperature=temperature or 1.0,
            top_p=self.config.top_p,
            seed=batch_seed,
        )
        self._counts["calls"] += 1
        prompt_tokens = [len(ids) for ids in self.lm.tokenizer(texts)["input_ids"]]
        return [
            Completion(g.text, n, g.n_tokens)
            for g, n in zip(generations, prompt_tokens, strict=True)
        ]

    def complete(self, prompts: Sequence[str], seeds: Sequence[int]) -> list[Completion]:
        self._counts["requests"] += len(prompts)
        return isolate_failures(
            self._generate, list(prompts), list(seeds), self.config.engine_attempts, self._counts
        )

    def stats(self) -> dict[str, int]:
        return dict(self._counts)
