"""`ray-asd export`: one trial's accepted synthetic items as a Hugging Face dataset and its
LoRA adapter as a peft folder, with a model card.

What it reads: an experiment's folder (``storage/NAME``: ``experiment.json``, the config the
grid ran with, unchanged by ``--resume``, and ``trials/<cell>/``) or one trial's (`ray-asd
trial`'s ``--out``: its ``config.json``; a runner's ``trials/<cell>``: through its experiment),
and the trial's newest readable checkpoint (``ray_asd.state``; stopped early: the one of the
last report, which blocks until Tune asks for the next): its items and adapter. To --out::

    README.md       the model card: experiment, cell, strategy, budget, accuracy, how to load
    dataset/        the accepted items, warm-up included (datasets.load_from_disk)
    items.parquet   the same rows
    adapter/        the checkpoint's LoRA adapter as saved (peft.PeftModel.from_pretrained)
    merged/         --merge only: the base model with the adapter merged in, and its tokenizer

Everything is written into a hidden folder next to ``--out`` and renamed into place at the
end, so an export that fails leaves nothing. No Ray and no MLflow here.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import types
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, get_type_hints

from ray_asd.config import StrategyConfig
from ray_asd.config_file import validate
from ray_asd.errors import ConfigError, DataError
from ray_asd.experiment import Cell, ExperimentConfig, cells
from ray_asd.plan import plan
from ray_asd.records import Item
from ray_asd.redact import MASK
from ray_asd.registry import suggest
from ray_asd.state import TrialState, latest_checkpoint, load_checkpoint
from ray_asd.tracking import STEP_OF_PHASE, flattened, leaves, nest
from ray_asd.trial import CONFIG_FILE

# The record `ray-asd run` writes into an experiment's folder (ray_asd.runner.checks.RECORD;
# a test keeps the two equal: this module must not import the runner).
EXPERIMENT_RECORD = "experiment.json"
FINAL = "final"  # a runner trial's folder of final artifacts (ray_asd.runner.trial)
ADAPTER_CONFIG = "adapter_config.json"  # what makes a folder a peft adapter
# What --out holds (module docstring).
DATASET, PARQUET, ADAPTER, MERGED = "dataset", "items.parquet", "adapter", "merged"
CARD = "README.md"
# datasets feature per Item field type, so a column that is None in every row (an analysis
# field of a trial that did not score) keeps its type in the dataset and the Parquet file.
FEATURE_OF_TYPE = {str: "string", int: "int64", float: "float64", bool: "bool"}


@dataclass(frozen=True)
class Experiment:
    """The cells an export can pick from, and where each trial's folder is."""

    name: str
    folder: Path
    cells: list[Cell]  # in grid order
    trials: dict[str, Path]  # cell name -> the trial's folder


@dataclass(frozen=True)
class Trial:
    """One trial, read from its newest readable checkpoint."""

    experiment: Experiment
    cell: Cell
    checkpoint: Path
    state: TrialState

    @property
    def final(self) -> dict[str, Any]:
        """The metrics row the report shows last (its largest step; the later row on a tie)."""
        return max(enumerate(self.state.metrics), key=lambda pair: (_step(pair[1]), pair[0]))[1]


def open_experiment(folder: Path) -> Experiment:
    """The experiment (or single trial) in ``folder``, its cells rebuilt from its config.

    Raises:
        ConfigError: no such folder, or one that is neither an experiment's nor a trial's.
        DataError: its config record cannot be read or no longer validates.
    """
    if not folder.is_dir():
        raise ConfigError(
            f"EXPERIMENT {folder}: no such folder (an experiment's is its storage/NAME, e.g. "
            "runs/quickstart; a trial's is the --out of ray-asd trial)"
        )
    if (record := folder / EXPERIMENT_RECORD).is_file():
        data = _read_object(record)
        config = _validated(record, _from_flat(data) if flattened(data) else data)
        grid = cells(config, str(record))
        trials = {c.name: folder / "trials" / c.name for c in grid}
        return Experiment(config.name, folder, grid, trials)
    if (runner := _runner_trial(folder)) is not None:
        return runner
    # A trial is an experiment of one cell: ray-asd trial's --out, or a runner's finished one.
    for record in (folder / CONFIG_FILE, folder / FINAL / CONFIG_FILE):
        if record.is_file():
            [cell] = cells(_validated(record, _read_object(record)), str(record))
            return Experiment(folder.resolve().name, folder, [cell], {cell.name: folder})
    raise ConfigError(
        f"EXPERIMENT {folder}: not an experiment's folder (no {EXPERIMENT_RECORD}) nor a "
        f"trial's (no {CONFIG_FILE})"
    )


def choose(experiment: Experiment, cell: str | None = None, best: bool = False) -> Trial:
    """The trial to export: ``cell``, the best one (``best``), or the only one.

    The best is the trial with the highest final accuracy, as the report's Trials table shows
    it ("last accuracy": the row of its largest step); ties go to fewer teacher tokens, then
    to grid order. Only trials with a readable checkpoint take part.

    Raises:
        ConfigError: an unknown cell, or several cells and neither ``cell`` nor ``best``.
        DataError: the chosen trial (or, for ``best``, every trial) has no checkpoint.
    """
    names = [c.name for c in experiment.cells]
    if cell is not None:
        if cell not in names:
            raise ConfigError(
                f"--cell {cell}: no such cell in {experiment.folder}{suggest(cell, names)}"
            )
        return _read_trial(experiment, names.index(cell))
    if not best and len(names) > 1:
        raise ConfigError(
            f"EXPERIMENT {experiment.folder}: {len(names)} cells; choose one with --cell NAME "
            f"or --best: {', '.join(names)}"
        )
    if not best:
        return _read_trial(experiment, 0)
    trials = [trial for i in range(len(names)) if (trial := _checkpointed(experiment, i))]
    if not trials:
        raise DataError(f"EXPERIMENT {experiment.folder}: no trial has a checkpoint yet")
    return max(enumerate(trials), key=lambda pair: _rank(pair[1], pair[0]))[1]


def check_out(out: Path, force: bool) -> None:
    """Refuses an output folder that holds something, unless ``force`` (then it is replaced).

    Raises:
        ConfigError: ``out`` is a non-empty folder and ``force`` is off.
    """
    if not force and out.is_dir() and any(out.iterdir()):
        raise ConfigError(f"--out {out}: not empty; pass --force to replace it, or --out elsewhere")


def export(
    trial: Trial, out: Path, *, merge: bool = False, log: Callable[[str], None] = print
) -> Path:
    """Writes the trial's accepted items, adapter (merged too with ``merge``) and model card
    to ``out`` (replacing what is there): into a hidden folder next to it, renamed at the end.

    Returns:
        ``out``.
    """
    adapter = trial.checkpoint / "student"
    made = [folder for folder in [out.parent, *out.parent.parents] if not folder.exists()]
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.{os.getpid()}.partial"
    shutil.rmtree(staging, ignore_errors=True)  # what a killed export of this pid left
    staging.mkdir()  # not mkdtemp: its 0700 would become --out's mode
    try:
        accepted = trial.state.accepted
        write_items(accepted, staging / DATASET, staging / PARQUET)
        log(f"[export] {len(accepted)} accepted items: {DATASET}/, {PARQUET}")
        shutil.copytree(adapter, staging / ADAPTER)
        if merge:
            _merge(trial, staging / ADAPTER, staging / MERGED)
            log(f"[export] adapter merged into {trial.cell.config.student.model}: {MERGED}/")
        (staging / CARD).write_text(card(trial, len(accepted), merge), encoding="utf-8")
        _publish(staging, out)
    except BaseException:  # nothing half written: the staging folder and the parents made
        shutil.rmtree(staging, ignore_errors=True)
        for folder in made:  # deepest first
            folder.rmdir()
        raise
    log(f"[export] {trial.experiment.name} / {trial.cell.name} ({trial.checkpoint.name}) in {out}")
    return out


def write_items(items: list[Item], dataset: Path, parquet: Path) -> None:
    """The items as a ``datasets`` folder and a Parquet file: one row per item, one column
    per :class:`~ray_asd.records.Item` field, typed by the field."""
    import datasets  # ~1 s to import: only when writing

    hints = get_type_hints(Item)
    features = datasets.Features(
        {f.name: datasets.Value(_feature(hints[f.name])) for f in fields(Item)}
    )
    table = datasets.Dataset.from_list([asdict(item) for item in items], features=features)
    quiet = datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()  # two bars for a write of a few MB; the log line says it
    try:
        table.save_to_disk(str(dataset))
        table.to_parquet(str(parquet))
    finally:
        if not quiet:
            datasets.enable_progress_bars()


def card(trial: Trial, n_items: int, merged: bool) -> str:
    """The model card: what the trial was and where it ended, and how to load what is here."""
    config, final, tags = trial.cell.config, trial.final, trial.cell.tags
    budget, state, strategy = config.budget, trial.state, plan(config).strategy
    base_row = next((row for row in state.metrics if row["phase"] == "base"), None)
    adapter_config = _read_object(trial.checkpoint / "student" / ADAPTER_CONFIG)
    base = adapter_config.get("base_model_name_or_path") or config.student.model
    limit = budget.teacher_tokens
    lines = [
        "---",
        "library_name: peft",
        "tags: [ray-asd, lora, synthetic-data]",
        "---",
        f"# {trial.experiment.name}: {trial.cell.name}",
        "",
        "A LoRA adapter and the synthetic training items of one ray-asd trial (active synthetic "
        "data generation: the student's state chose the seeds the teacher wrote from).",
        "",
        f"- experiment: {trial.experiment.name} ({trial.experiment.folder})",
        f"- cell: {trial.cell.name} (strategy {tags['strategy']}, student {tags['student']}, "
        f"task {tags['task']}, seed {tags['seed']})",
        f"- strategy: {tags['strategy']} (scorer {strategy.scorer_name}, selector "
        f"{strategy.selector_name})",
        f"- student: {config.student.model}; teacher: {config.teacher.backend}"
        + (f" {config.teacher.model}" if config.teacher.model else ""),
        f"- budget: warm-up {budget.warmup} items, {budget.iterations} iterations of "
        f"{budget.per_iteration}, teacher-token limit {limit if limit is not None else 'none'}",
        f"- spent: {final.get('n_synthetic', n_items)} synthetic items, "
        f"{final.get('teacher_tokens', 0)} teacher tokens",
        f"- accuracy: {_number(final, 'accuracy'):.4f} on the test set at {_phase(final)}"
        + (f" (base model {_number(base_row, 'accuracy'):.4f})" if base_row else ""),
        f"- checkpoint: {trial.checkpoint.name}, {state.next_iteration} of {budget.iterations} "
        "iterations done",
        f"- items here: {n_items} accepted items (warm-up included; provenance per row: "
        "seed_id, iteration (-1: warm-up), attempt, strategy, teacher, tokens)",
        "",
        "## Load",
        "",
        "```python",
        "from datasets import load_from_disk",
        "from peft import PeftModel",
        "from transformers import AutoModelForCausalLM",
        "",
        f'items = load_from_disk("{DATASET}")  # or pandas.read_parquet("{PARQUET}")',
        f'base = AutoModelForCausalLM.from_pretrained("{base}")',
        f'model = PeftModel.from_pretrained(base, "{ADAPTER}")',
    ]
    if merged:
        lines.append(f'merged = AutoModelForCausalLM.from_pretrained("{MERGED}")  # no peft needed')
    return "\n".join([*lines, "```", ""])


# ---- helpers ------------------------------------------------------------------------------


def _runner_trial(folder: Path) -> Experiment | None:
    """A runner's ``storage/NAME/trials/<cell>`` (finished, stopped early, failed or running:
    only a finished one has ``final/config.json``) as its experiment narrowed to that cell."""
    here = folder.resolve()
    if here.parent.name != "trials" or not (here.parent.parent / EXPERIMENT_RECORD).is_file():
        return None
    experiment = open_experiment(here.parent.parent)
    mine = [cell for cell in experiment.cells if cell.name == here.name]
    return replace(experiment, cells=mine, trials={c.name: folder for c in mine}) if mine else None


def _read_trial(experiment: Experiment, index: int) -> Trial:
    trial = _checkpointed(experiment, index)
    if trial is None:
        folder = experiment.trials[experiment.cells[index].name]
        raise DataError(f"trial {folder}: no checkpoint yet (checkpoints/latest is missing)")
    return trial


def _checkpointed(experiment: Experiment, index: int) -> Trial | None:
    """The trial of cell ``index`` at its newest readable checkpoint; None before the first.

    Raises:
        DataError: the checkpoint holds no adapter.
    """
    cell = experiment.cells[index]
    folder = experiment.trials[cell.name]
    checkpoint = latest_checkpoint(folder)
    if checkpoint is None:
        return None
    if not (checkpoint / "student" / ADAPTER_CONFIG).is_file():
        raise DataError(f"trial {folder}: {checkpoint.name}/student holds no peft adapter")
    return Trial(experiment, cell, checkpoint, load_checkpoint(checkpoint))


def _read_object(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: unreadable ({error})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: not a JSON object")
    return data


def _from_flat(flat: dict[str, Any]) -> dict[str, Any]:
    """The nested config of an ``experiment.json`` in earlier versions' flat form (dotted keys,
    JSON text or raw strings; an empty environment's ``{}`` masked whole). What it lost stays
    lost: a value cut at 6000 characters, a string that reads as JSON, a block's keys as given."""
    empty = {k for k, v in leaves(ExperimentConfig().model_dump(mode="json")).items() if v == {}}
    nested = nest({k: {} if v == MASK and k in empty else _parsed(v) for k, v in flat.items()})
    if isinstance(grid := nested.get("grid"), dict) and isinstance(grid.get("strategy"), list):
        grid["strategy"] = [_as_written(entry) for entry in grid["strategy"]]
    return nested


def _parsed(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:  # a string value, flattened as itself
        return text


def _as_written(entry: Any) -> Any:
    """A grid strategy as its YAML gave it, guessed from a flat record's whole block: keys at
    their defaults dropped, a pairing's name too (as run named it, unless it was ``loss``)."""
    if not isinstance(entry, dict):
        return entry
    defaults = StrategyConfig().model_dump(mode="json")
    given = {key: value for key, value in entry.items() if value != defaults.get(key)}
    if entry.get("scorer") is None and "name" in entry:  # a named strategy keeps its name
        given["name"] = entry["name"]
    return given


def _validated(record: Path, data: dict[str, Any]) -> ExperimentConfig:
    try:
        return validate(ExperimentConfig, data, str(record))
    except ConfigError as error:  # written by another version: the record is the culprit
        raise DataError(str(error).splitlines()[0]) from None


def _publish(staging: Path, out: Path) -> None:
    """Moves the finished ``staging`` folder to ``out``; what was there is removed after."""
    old = staging.with_suffix(".old")
    if out.exists():
        out.rename(old)
    try:
        staging.rename(out)
    except OSError:
        if old.exists():
            old.rename(out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _merge(trial: Trial, adapter: Path, folder: Path) -> None:
    from ray_asd.student.model import Student  # imports torch: only for --merge

    student = Student.from_config(trial.cell.config.student)
    student.load_adapter(adapter)
    merged = student.model.merge_and_unload()
    merged.save_pretrained(str(folder))
    student.tokenizer.save_pretrained(str(folder))


def _feature(hint: Any) -> str:
    kinds = [t for t in getattr(hint, "__args__", (hint,)) if t is not types.NoneType]
    return FEATURE_OF_TYPE[kinds[0]]


def _rank(trial: Trial, order: int) -> tuple[float, float, int]:
    """Higher is better: accuracy (none logged: last), fewer teacher tokens, earlier cell."""
    accuracy, tokens = _number(trial.final, "accuracy"), _number(trial.final, "teacher_tokens")
    return (
        -math.inf if math.isnan(accuracy) else accuracy,
        0.0 if math.isnan(tokens) else -tokens,
        -order,
    )


def _step(row: dict[str, Any]) -> int:
    return int(STEP_OF_PHASE.get(row["phase"], row["iteration"]))


def _number(row: dict[str, Any], key: str) -> float:
    value = row.get(key)
    return float(value) if isinstance(value, int | float) else float("nan")


def _phase(row: dict[str, Any]) -> str:
    """``base``, ``warmup``, ``iteration 2``, ``stopped (iteration 2)``."""
    phase = row["phase"]
    if phase in STEP_OF_PHASE:
        return str(phase)
    at = f"iteration {row['iteration']}"
    return at if phase == "iteration" else f"{phase} ({at})"
