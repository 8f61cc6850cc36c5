"""What goes into the cache folders of :mod:`ray_asd.models.specs`: the embedded GGUF
dequantized to a plain transformers folder, and the tiny random Llama."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

from ray_asd.models.specs import TINY_SEED, TINY_SHAPE


def convert_gguf(gguf_path: Path, out: Path) -> None:
    """Dequantize a GGUF to an fp32 transformers folder (model, tokenizer, configs)."""
    kwargs = {"gguf_file": gguf_path.name}
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, **kwargs)
    model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, dtype=torch.float32, **kwargs)
    # save_pretrained refuses a model that still looks quantized; the weights are plain fp32
    # tensors after dequantization, so dropping the quantizer is all that is needed.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def build_tiny(out: Path, tokenizer_folder: Path) -> None:
    """Write the tiny random Llama with the tokenizer of ``tokenizer_folder`` into ``out``."""
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_folder)
    config = LlamaConfig(
        **TINY_SHAPE,
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    # Fork the RNG so that building the model never changes the caller's random stream.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_SEED)
        model = LlamaForCausalLM(config)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
