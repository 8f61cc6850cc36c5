"""The `transformers` teacher: a local causal LM (CPU or GPU) behind the teacher protocol.

Real LLM-teacher plumbing that runs anywhere; on this project's CPU machines it is exercised
with the embedded SmolLM2, which cannot teach (STACK-NOTES), so quality is irrelevant there.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ray_asd.config import TeacherConfig
from ray_asd.student import Student
from ray_asd.tasks import Task
from ray_asd.teacher.base import TeacherOutput
from ray_asd.teacher.prompts import Prompts, parse_answer, parse_question


@dataclass
class TransformersTeacher:
    """Samples completions from a transformers causal LM, chat template applied if it has one."""

    lm: Student
    prompts: Prompts
    model: str
    max_new_tokens: int = 256
    temperature: float = 0.7

    @classmethod
    def load(
        cls, config: TeacherConfig, prompts: Prompts, cache_dir: Path | None = None
    ) -> TransformersTeacher:
        assert config.model is not None  # enforced by TeacherConfig's validator
        lm = Student.load(config.model, cache_dir=cache_dir)
        return cls(lm, prompts, config.model, config.max_new_tokens, config.temperature)

    def _chat(self, prompt: str) -> str:
        tokenizer = self.lm.tokenizer
        if not getattr(tokenizer, "chat_template", None):
            return prompt
        messages = [{"role": "user", "content": prompt}]
        return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    def _complete(self, prompts: list[str], seeds: Sequence[int]) -> list[tuple[str, int, int]]:
        if not prompts:
            return []
        chats = [self._chat(p) for p in prompts]
        # One sampling seed per batch, derived from every request's seed: the same requests
        # always give the same completions.
        batch_seed = int.from_bytes(hashlib.sha256(repr(list(seeds)).encode()).digest()[:4], "big")
        generations = self.lm.answer(
            chats,
            max_new_tokens=self.max_new_tokens,
            batch_size=min(len(chats), 16),
            greedy=self.temperature == 0,
            temperature=self.temperature or 1.0,
            seed=batch_seed,
        )
        prompt_tokens = [len(ids) for ids in self.lm.tokenizer(chats)["input_ids"]]
        return [(g.text, n, g.n_tokens) for g, n in zip(generations, prompt_tokens, strict=True)]

    def write_questions(
        self, task: Task, seed_questions: Sequence[str], seeds: Sequence[int]
    ) -> list[TeacherOutput]:
        prompts = [self.prompts.for_writing(task, q) for q in seed_questions]
        return [
            TeacherOutput(parse_question(raw), raw, p, c)
            for raw, p, c in self._complete(prompts, seeds)
        ]

    def answer_questions(
        self, task: Task, questions: Sequence[str], seeds: Sequence[int]
    ) -> list[TeacherOutput]:
        prompts = [self.prompts.for_answering(task, q) for q in questions]
        return [
            TeacherOutput(parse_answer(task, raw), raw, p, c)
            for raw, p, c in self._complete(prompts, seeds)
        ]
