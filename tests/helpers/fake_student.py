"""A student model for the loop's arithmetic: the `StudentModel` protocol in microseconds.

Its "skill" is the number of items its adapter was trained on; it answers a known question
right when a hash of the question falls under that skill, so accuracy rises with training, and
its NLLs and embeddings are hashes of what they score, so they are deterministic and differ by
answer. Adapters are JSON files, so checkpoints and resumes go through real folders.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ray_asd.config import TrainConfig


@dataclass(frozen=True)
class FakeGeneration:
    text: str
    n_tokens: int
    mean_nll: float = 0.0


@dataclass(frozen=True)
class FakeStats:
    steps: int
    first_epoch_loss: float
    last_epoch_loss: float
    seconds: float = 0.0


def _hash(text: str) -> int:
    return zlib.crc32(text.encode())


def _question(prompt: str) -> str:
    return prompt.removeprefix("Question: ").removesuffix("\nAnswer:")


@dataclass
class FakeStudent:
    """Answers from ``answers`` (question -> reference answer) once skilled enough.

    Attributes:
        answers: the reference answers it can learn (the pool's and the test set's).
        skill: items its current adapter was trained on (0: the base model).
        trained: (items, seed) of every training call.
        answered: the prompts of every answering call.
        fail_at_seed: training with this seed raises (a node lost mid-trial).
        lesson: how far a question's NLL falls as the skill grows (its NLL holds
            ``lesson(question) / (1 + skill)``); 1 for every question by default. A bandit's
            test plants which arm's items teach most with it.
    """

    answers: dict[str, str]
    skill: int = 0
    trained: list[tuple[int, int]] = field(default_factory=list)
    answered: list[list[str]] = field(default_factory=list)
    fail_at_seed: int | None = None
    lesson: Callable[[str], float] = lambda question: 1.0

    def answer(
        self, prompts: list[str], *, max_new_tokens: int, batch_size: int
    ) -> list[FakeGeneration]:
        self.answered.append(list(prompts))
        out = []
        for prompt in prompts:
            question = _question(prompt)
            known = question in self.answers and _hash(question) % 16 < self.skill
            text = " " + self.answers[question] if known else " 1 + 1 = 2.\n#### 2"
            out.append(FakeGeneration(text, len(text.split())))
        return out

    def nll(
        self,
        prompts: list[str],
        answers: list[str],
        *,
        batch_size: int,
        reduction: str = "mean",
        add_eos: bool = False,
    ) -> np.ndarray:
        means = [
            (_hash(p + a) % 1000) / 250 + self.lesson(_question(p)) / (1 + self.skill)
            for p, a in zip(prompts, answers, strict=True)
        ]
        if reduction == "sum":
            lengths = [n + add_eos for n in self.count_tokens(answers)]
            return np.array([m * n for m, n in zip(means, lengths, strict=True)])
        return np.array(means)

    def count_tokens(self, texts: list[str]) -> list[int]:
        return [len(text.split()) for text in texts]

    def grad_embeddings(
        self, prompts: list[str], answers: list[str], *, batch_size: int
    ) -> np.ndarray:
        rows = [_hash(p + a) for p, a in zip(prompts, answers, strict=True)]
        return np.array([[(h >> s) % 17 - 8 for s in (0, 5, 10, 15)] for h in rows], float)

    def train(
        self, prompts: list[str], completions: list[str], settings: TrainConfig, seed: int
    ) -> FakeStats:
        if seed == self.fail_at_seed:
            raise RuntimeError("node lost")
        self.trained.append((len(prompts), seed))
        self.skill += len(prompts)
        return FakeStats(settings.epochs * len(prompts), 2.0, 1.0 / (1 + self.skill))

    @property
    def has_adapter(self) -> bool:
        return self.skill > 0

    def reset_adapter(self) -> None:
        self.skill = 0

    def save_adapter(self, path: str | Path) -> None:
        Path(path).mkdir(parents=True, exist_ok=True)
        (Path(path) / "adapter.json").write_text(json.dumps({"skill": self.skill}))

    def load_adapter(self, path: str | Path) -> None:
        self.skill = json.loads((Path(path) / "adapter.json").read_text())["skill"]
