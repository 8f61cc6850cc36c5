"""Teachers: one protocol (a new item per picked seed), the oracle and LLM teachers over
completion backends (transformers, vllm, openai), with a cache of completions."""

from ray_asd.teacher.base import (
    Completion,
    CompletionBackend,
    Generated,
    Teacher,
    approximate_tokens,
)
from ray_asd.teacher.cache import CachedBackend
from ray_asd.teacher.llm import LLMTeacher
from ray_asd.teacher.oracle import OracleTeacher
from ray_asd.teacher.prompts import Prompts, parse_answer, parse_one_step, parse_question

__all__ = [
    "CachedBackend",
    "Completion",
    "CompletionBackend",
    "Generated",
    "LLMTeacher",
    "OracleTeacher",
    "Prompts",
    "Teacher",
    "approximate_tokens",
    "parse_answer",
    "parse_one_step",
    "parse_question",
]
