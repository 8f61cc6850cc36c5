"""One trial in-process (`ray-asd trial CONFIG`): plan it, assemble its parts, run the loop.

The Ray runner assembles the same parts with scoring actors and a shared teacher pool
(`ray_asd.runner.trial`).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from ray_asd.assemble import assemble, seeds_and_test
from ray_asd.config import TrialConfig
from ray_asd.errors import ConfigError
from ray_asd.loop import run_trial
from ray_asd.plan import plan
from ray_asd.redact import redact
from ray_asd.state import latest_checkpoint, load_checkpoint
from ray_asd.tracking import leaves, read_record

CONFIG_FILE = "config.json"  # in the trial's folder: the config it runs under, redacted


def config_record(config: TrialConfig) -> dict[str, Any]:
    """The config as persisted and compared: JSON values, secrets masked (`ray_asd.redact`)."""
    return redact(config.model_dump(mode="json"))


def config_hash(record: dict[str, Any]) -> str:
    """The SHA-256 of a config record's canonical JSON."""
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


def write_config(path: Path, config: TrialConfig) -> None:
    """Writes a trial's ``config.json``: redacted (loadable again as a trial config, secrets
    masked), whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(path.name + ".tmp")
    staging.write_text(json.dumps(config_record(config), indent=2), encoding="utf-8")
    os.replace(staging, path)


def check_same_config(out: Path, config: TrialConfig) -> None:
    """A trial resumed from ``out`` runs under the config it began with (its ``config.json``):
    compared by hash, then key by key to name what changed. A key the earlier record lacks
    and that is at its default now (a field a newer version added) is no change; secrets are
    masked on both sides, so a rotated API key is none either.

    Raises:
        ConfigError: naming the keys whose values differ.
    """
    record = out / CONFIG_FILE
    if not record.is_file():
        return
    before = read_record(record, "", "delete it to resume unchecked, or --out elsewhere")
    now = config_record(config)
    before = redact(before)  # a record of an older version holds its secrets in clear
    if config_hash(before) == config_hash(now):
        return
    old, new = leaves(before), leaves(now)  # whole values: MLflow's params cut at 6000 chars
    default = leaves(config_record(TrialConfig()))
    changed = sorted(
        key
        for key in old.keys() | new.keys()
        if old.get(key) != new.get(key) and not (key not in old and new[key] == default.get(key))
    )
    if changed:
        raise ConfigError(
            f"{out}: --resume: the trial ran with other settings of {', '.join(changed)} "
            f"(see {record}); resume with those, or --out elsewhere"
        )


def run(config: TrialConfig, out: Path, *, cache_dir: Path | None = None) -> pd.DataFrame:
    """Runs one trial in-process (resuming from ``out`` if it holds a checkpoint).

    Writes ``out/config.json``, ``out/metrics.csv``, ``out/metrics.json`` and
    ``out/items.jsonl`` (every teacher output, accepted or rejected, with provenance) and
    ``out/evaluations.jsonl`` (each test item's correctness at every evaluation).

    Raises:
        ConfigError: ``out`` holds a trial that ran under another config.
    """
    if (out / "checkpoints").exists():
        check_same_config(out, config)
    trial = plan(config)
    from ray_asd.student.model import Student  # imports torch: after every check

    write_config(out / CONFIG_FILE, config)
    student = Student.from_config(config.student, cache_dir)
    parts = assemble(trial, student, cache_dir=cache_dir, teacher_cache=out / "teacher_cache")
    pool, test = seeds_and_test(trial, parts.task)
    metrics = run_trial(parts, pool, test, out)
    if parts.teacher.completions is not None:
        stats = parts.teacher.completions.stats()
        print(f"[trial] teacher backend: {stats}")
        (out / "teacher_stats.json").write_text(json.dumps(stats, indent=2), encoding="utf-8")
    checkpoint = latest_checkpoint(out)
    assert checkpoint is not None  # run_trial wrote one at least
    metrics.to_csv(out / "metrics.csv", index=False)
    # The rows as the checkpoint holds them: a phase's absent keys stay absent (the table's
    # NaN would be written as a bare NaN, which strict JSON readers refuse).
    rows = load_checkpoint(checkpoint).metrics
    (out / "metrics.json").write_text(json.dumps(rows, indent=2), encoding="utf-8")
    for name in ("items.jsonl", "evaluations.jsonl"):
        (out / name).write_bytes((checkpoint / name).read_bytes())
    return metrics
