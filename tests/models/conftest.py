"""Models fixtures; the session-wide `model_cache` lives in tests/conftest.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from ray_asd.models.causal_lm import CausalLM


@pytest.fixture
def tiny_lm(model_cache: Path) -> CausalLM:
    """A fresh tiny causal LM per test (loading the cached folder takes ~0.1 s)."""
    return CausalLM.load("tiny:", cache_dir=model_cache, device="cpu")
