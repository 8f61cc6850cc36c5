"""Student fixtures; the session-wide `model_cache` lives in tests/conftest.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from ray_asd.student.model import Student


@pytest.fixture
def tiny_student(model_cache: Path) -> Student:
    """A fresh tiny student per test (loading the cached folder takes ~0.1 s)."""
    return Student.load("tiny:", cache_dir=model_cache, device="cpu")
