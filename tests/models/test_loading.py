"""Loading models: the cache folders built, local folders, the tiny and embedded models."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ray_asd.models import MARKER_FILE, resolve_model
from ray_asd.models.causal_lm import CausalLM
from ray_asd.models.loading import load_model_and_tokenizer

pytestmark = pytest.mark.slow

EMBEDDED = "embedded:smollm2-135m"


def test_cache_folders_are_complete_and_no_temp_dirs_remain(model_cache: Path) -> None:
    models = model_cache / "models"
    names = sorted(p.name for p in models.iterdir())
    assert {"smollm2-135m-instruct", "tiny-llama-v3"} <= set(names)  # (and reward heads)
    assert not [name for name in names if name.startswith(".")]  # no ".name-xxxx" leftovers
    for folder in models.iterdir():
        assert (folder / MARKER_FILE).is_file()
        assert (folder / "config.json").is_file()
        config = json.loads((folder / "config.json").read_text())
        assert "quantization_config" not in config  # a plain fp32 folder, not a GGUF shim


def test_local_folder_spec_loads_with_left_padding(model_cache: Path) -> None:
    folder = resolve_model("tiny:", cache_dir=model_cache)
    assert isinstance(folder, Path)
    model, tokenizer = load_model_and_tokenizer(str(folder), device="cpu")
    assert tokenizer.padding_side == "left"
    assert tokenizer.pad_token_id == tokenizer.eos_token_id
    assert model.config.num_hidden_layers == 2
    assert not model.training


def test_tiny_model_is_reproducible(model_cache: Path, tmp_path: Path) -> None:
    """A second cache builds the same weights: the seed fixes them."""
    a = CausalLM.load("tiny:", cache_dir=model_cache, device="cpu")
    # Reuse the converted tokenizer by pointing a new cache at the same embedded folder.
    other = tmp_path / "cache"
    (other / "models").mkdir(parents=True)
    (other / "models" / "smollm2-135m-instruct").symlink_to(
        model_cache / "models" / "smollm2-135m-instruct"
    )
    b = CausalLM.load("tiny:", cache_dir=other, device="cpu")
    for (name, pa), (_, pb) in zip(
        a.model.state_dict().items(), b.model.state_dict().items(), strict=True
    ):
        assert (pa == pb).all(), name


def test_embedded_smollm2_answers_and_reuses_its_cache(
    model_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = model_cache / "models" / "smollm2-135m-instruct" / MARKER_FILE
    before = marker.read_text()  # written when the session fixture built the tiny model

    def refuse(gguf: Path, out: Path) -> None:
        raise AssertionError(f"reconverted {gguf} (~15-20 s) instead of loading the cache")

    monkeypatch.setattr("ray_asd.models.build.convert_gguf", refuse)
    lm = CausalLM.load(EMBEDDED, cache_dir=model_cache, device="cpu")
    assert marker.read_text() == before  # not rebuilt (that rewrites built_at)

    assert lm.model.config.num_hidden_layers == 30
    prompt = "Question: What is 2 + 3?\nAnswer:"
    [gen] = lm.answer([prompt], max_new_tokens=12, batch_size=1)
    assert 1 <= gen.n_tokens <= 12
    assert gen.text.strip()
    assert 0 < gen.mean_nll < 10

    # The same text scored by nll() gives the same mean NLL (this answer re-tokenizes to the
    # generated ids; an EOS, if generated, is not in the text and is scored via add_eos).
    ids = lm.tokenizer(gen.text, add_special_tokens=False)["input_ids"]
    ended = len(ids) == gen.n_tokens - 1
    assert ended or len(ids) == gen.n_tokens
    [again] = lm.nll([prompt], [gen.text], batch_size=1, add_eos=ended)
    assert again == pytest.approx(gen.mean_nll, abs=1e-3)


def test_a_revision_picks_that_snapshot_of_a_hub_model(model_cache: Path, tmp_path: Path) -> None:
    """A hub cache in the layout huggingface_hub writes (refs/<name> holds a commit,
    snapshots/<commit>/ its files), two revisions of the tiny model told apart by a config
    field, loaded offline in a fresh process (the hub reads its cache location at import)."""
    repo = tmp_path / "hub" / "models--ray-asd--tiny"
    for revision, commit in (("v1", "1" * 40), ("v2", "2" * 40)):
        snapshot = repo / "snapshots" / commit
        shutil.copytree(resolve_model("tiny:", cache_dir=model_cache), snapshot)
        config = json.loads((snapshot / "config.json").read_text())
        (snapshot / "config.json").write_text(json.dumps({**config, "which": revision}))
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / revision).write_text(commit)
    (repo / "refs" / "main").write_text("1" * 40)
    script = (
        "from ray_asd.models.loading import load_model_and_tokenizer as load\n"
        "for revision in ('v2', None, 'v1'):\n"
        "    model, _ = load('ray-asd/tiny', revision=revision, device='cpu')\n"
        "    print(revision, model.config.which)\n"
    )
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split("\n")[:3] == ["v2 v2", "None v1", "v1 v1"]  # None: main
