"""What the loop's parts need of a student, as a Protocol: :class:`ray_asd.student.model.Student`
is the in-process one; the runner's remote handles and the tests' fakes are others.

Importing this module imports neither torch nor peft (the types it names are only read by type
checkers), so code that types against it stays light.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from ray_asd.config import TrainConfig

if TYPE_CHECKING:
    from ray_asd.models.causal_lm import Generation
    from ray_asd.student.training import TrainStats


class StudentModel(Protocol):
    """A student that answers, scores, embeds, trains and keeps its LoRA adapter."""

    def answer(
        self, prompts: list[str], *, max_new_tokens: int, batch_size: int
    ) -> list[Generation]:
        """One greedy answer per prompt, in input order."""
        ...

    def nll(
        self,
        prompts: list[str],
        answers: list[str],
        *,
        batch_size: int,
        reduction: str = "mean",
        add_eos: bool = False,
    ) -> np.ndarray:
        """Mean (or summed) NLL of each answer's tokens given its prompt, float64."""
        ...

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Tokens of each text, no special tokens added."""
        ...

    def grad_embeddings(
        self, prompts: list[str], answers: list[str], *, batch_size: int
    ) -> np.ndarray:
        """BADGE gradient embeddings, one row per pair."""
        ...

    def train(
        self, prompts: list[str], completions: list[str], settings: TrainConfig, seed: int
    ) -> TrainStats:
        """LoRA-finetune on (prompt, completion + EOS), continuing any current adapter."""
        ...

    @property
    def has_adapter(self) -> bool:
        """Whether a LoRA adapter is attached."""
        ...

    def reset_adapter(self) -> None:
        """Drop the adapter: back to the base model."""
        ...

    def save_adapter(self, path: str | Path) -> None:
        """Save the adapter to ``path``."""
        ...

    def load_adapter(self, path: str | Path) -> None:
        """Replace any adapter with the one saved at ``path``."""
        ...
