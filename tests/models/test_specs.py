"""Model specs without loading anything: the cache location, checks, resolution of hub ids and
folders, the atomic cache folder, and a package import that stays free of torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ray_asd.errors import ConfigError
from ray_asd.models import MARKER_FILE, check_model_spec, default_cache_dir, resolve_model
from ray_asd.models.specs import cached_folder


def test_importing_the_package_imports_neither_torch_nor_transformers() -> None:
    script = (
        "import sys, ray_asd.models\n"
        "print(sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


def test_default_cache_dir_follows_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RAY_ASD_CACHE", str(tmp_path / "explicit"))
    assert default_cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("RAY_ASD_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "ray-asd"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "ray-asd"


def test_resolve_leaves_hub_ids_alone_and_finds_local_folders(tmp_path: Path) -> None:
    assert resolve_model("HuggingFaceTB/SmolLM2-135M-Instruct") == (
        "HuggingFaceTB/SmolLM2-135M-Instruct"
    )
    assert resolve_model(str(tmp_path)) == tmp_path


def test_unknown_specs_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="did you mean smollm2-135m"):
        resolve_model("embedded:smollm2-135", cache_dir=tmp_path)
    with pytest.raises(ConfigError, match="tiny"):
        resolve_model("tiny:big", cache_dir=tmp_path)
    assert not (tmp_path / "models").exists()  # nothing built for a bad spec


def test_check_model_spec_refuses_what_cannot_resolve(tmp_path: Path) -> None:
    for good in ("tiny:", "embedded:smollm2-135m", "org/name", str(tmp_path)):
        check_model_spec(good)
    refusals = {
        " ": "no model given",
        "embedded:smollm2": "did you mean smollm2-135m",
        "tiny:big": "takes no options",
        str(tmp_path / "missing"): "is not a folder",
        "a/b/c": "is not a folder",
    }
    for spec, message in refusals.items():
        with pytest.raises(ConfigError, match=message):
            check_model_spec(spec)


def test_cached_folder_builds_once_and_atomically(tmp_path: Path) -> None:
    folder = tmp_path / "models" / "thing"
    calls: list[Path] = []

    def build(out: Path) -> None:
        calls.append(out)
        (out / "weights.txt").write_text("w")

    assert cached_folder(folder, build, {"spec": "x"}) == folder
    assert cached_folder(folder, build, {"spec": "x"}) == folder
    assert len(calls) == 1 and calls[0] != folder  # built in a temporary sibling
    assert (folder / "weights.txt").read_text() == "w"
    assert json.loads((folder / MARKER_FILE).read_text())["spec"] == "x"
    assert sorted(p.name for p in folder.parent.iterdir()) == ["thing"]  # no temp left


def test_a_failed_build_leaves_nothing_and_an_unmarked_folder_is_rebuilt(tmp_path: Path) -> None:
    folder = tmp_path / "thing"

    def fail(out: Path) -> None:
        (out / "half.txt").write_text("half")
        raise RuntimeError("crashed mid-way")

    with pytest.raises(RuntimeError, match="mid-way"):
        cached_folder(folder, fail, {})
    assert list(tmp_path.iterdir()) == []

    folder.mkdir()  # an older writer's folder without the marker: not trusted
    (folder / "stale.txt").write_text("stale")
    cached_folder(folder, lambda out: (out / "fresh.txt").write_text("fresh"), {})
    assert sorted(p.name for p in folder.iterdir()) == sorted([MARKER_FILE, "fresh.txt"])
