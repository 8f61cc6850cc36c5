"""Session-wide fixtures: one model cache per test run, never the user's real cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from ray_asd.student import resolve_model


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache root holding the tiny model (building it converts the embedded GGUF once)."""
    root = tmp_path_factory.mktemp("ray-asd-cache")
    resolve_model("tiny:", cache_dir=root)
    return root
