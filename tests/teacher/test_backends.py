"""The completion backends' registry: one constructor per LLM kind, and the settings section
each reads (a `vllm` or `openai` section under another backend is ignored, not obeyed)."""

from __future__ import annotations

from ray_asd.config import TeacherConfig
from ray_asd.kinds import TEACHER_KINDS
from ray_asd.teacher.backends import BACKENDS, engine_shards, openai_settings, vllm_settings

TP2 = {"vllm": {"tensor_parallel_size": 2}, "openai": {"base_url": "http://127.0.0.1:1/v1"}}


def test_every_llm_kind_has_a_backend_and_the_oracle_none() -> None:
    assert set(BACKENDS) == {kind.name for kind in TEACHER_KINDS.values() if kind.llm}


def test_only_vllm_reads_the_vllm_section() -> None:
    vllm = TeacherConfig(backend="vllm", model="org/t", **TP2)
    assert vllm_settings(vllm) is vllm.vllm and engine_shards(vllm) == 2
    for backend in ("transformers", "openai"):
        other = TeacherConfig(backend=backend, model="org/t", **TP2)
        assert vllm_settings(other) is None and engine_shards(other) == 1
    assert vllm_settings(TeacherConfig(**TP2)) is None  # the oracle


def test_only_openai_reads_the_openai_section() -> None:
    openai = TeacherConfig(backend="openai", model="gpt", **TP2)
    assert openai_settings(openai) is openai.openai
    assert openai_settings(TeacherConfig(backend="vllm", model="org/t", **TP2)) is None
    assert openai_settings(TeacherConfig(**TP2)) is None
