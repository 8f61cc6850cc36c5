"""`ray-asd export`: a trial's accepted items as a datasets folder and Parquet, its adapter as
a peft folder (merged too with --merge), a model card; every bad input one line, nothing
half written.

Fast tests build trial folders with the real checkpoint writer (``ray_asd.state``) around a
stand-in adapter folder that nothing loads; the slow ones export a real tiny trial, run once
per module, and load what they wrote with datasets, pyarrow, peft and transformers.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from ray_asd import export
from ray_asd.cli import main
from ray_asd.config import TrialConfig
from ray_asd.errors import ConfigError, DataError
from ray_asd.experiment import ExperimentConfig, cells
from ray_asd.records import Item
from ray_asd.redact import redact
from ray_asd.state import TrialState, latest_checkpoint, load_checkpoint, save_checkpoint
from ray_asd.tracking import MAX_PARAM, flatten, nest
from ray_asd.trial import CONFIG_FILE, write_config

CONFIG = {"student": {"model": "tiny:"}, "budget": {"iterations": 2, "per_iteration": 2}}
GRID = {"strategy": ["loss", "random", {"scorer": "loss", "selector": "balanced"}]}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def item(k: int, iteration: int, accepted: bool = True, **extra: Any) -> Item:
    return Item.from_json(
        {
            **{"id": f"i{k}", "seed_id": f"s{k % 3}", "iteration": iteration, "attempt": 1},
            **{"strategy": "warmup" if iteration < 0 else "loss", "teacher": "oracle"},
            **{"question": f"q{k}", "answer": f"a\n#### {k}", "final_answer": str(k)},
            **{"prompt_tokens": 10 + k, "completion_tokens": 5, "teacher_calls": 2},
            **{"teacher_retries": 0, "teacher_cached": 0, "teacher_error": None},
            "accepted": accepted,
            "reject_reason": None if accepted else "duplicate",
            **extra,
        }
    )


ITEMS = [
    item(0, -1),
    item(1, -1),
    item(2, 0, score=1.5, seed_score=2.0, student_correct=False, scorer="loss"),
    item(3, 0, accepted=False),
    item(4, 1),
]


def rows(accuracy: float, tokens: int) -> list[dict[str, Any]]:
    """Metrics rows as the loop writes them: base, warm-up, iterations 0 and 1."""
    return [
        {"phase": "base", "iteration": -1, "accuracy": 0.125, "n_synthetic": 0},
        {"phase": "warmup", "iteration": -1, "accuracy": 0.25, "n_synthetic": 2},
        {"phase": "iteration", "iteration": 0, "accuracy": 0.5, "n_synthetic": 3},
        {"phase": "iteration", "iteration": 1, "accuracy": accuracy, "n_synthetic": 4,
         "teacher_tokens": tokens},
    ]  # fmt: skip


def stand_in_adapter(path: Path) -> None:
    """An adapter folder's files (never loaded by the fast tests)."""
    path.mkdir()
    (path / export.ADAPTER_CONFIG).write_text('{"base_model_name_or_path": "/models/tiny"}')
    (path / "adapter_model.safetensors").write_bytes(bytes(range(256)))


def make_trial(folder: Path, accuracy: float = 0.75, tokens: int = 900) -> Path:
    """A trial's folder with one checkpoint (iteration 1), written by ``save_checkpoint``."""
    state = TrialState(np.random.default_rng(0), 2, list(ITEMS), rows(accuracy, tokens))
    save_checkpoint(folder, state, stand_in_adapter, lambda *_: None)
    return folder


def record_of(config: ExperimentConfig) -> dict[str, Any]:
    """``experiment.json`` as ``ray-asd run`` writes it (``runner.checks.settings_record``,
    which tests/runner/test_checks.py keeps equal to this: importing the runner imports Ray):
    the config nested and whole, a grid's strategy blocks as given, secrets masked."""
    data = config.model_dump(mode="json")
    data["grid"]["strategy"] = config.grid.model_dump(exclude_unset=True).get("strategy")
    return redact(data)


def flat_record(config: ExperimentConfig) -> dict[str, str]:
    """``experiment.json`` as ``ray-asd run`` wrote it up to commit 3099be7 (its
    ``runner.checks.settings_record``): MLflow's flattened params, masked after flattening."""
    return flatten(redact(nest(flatten(config.model_dump(mode="json")))))


def make_experiment(
    folder: Path,
    trials: dict[str, tuple[float, int]],
    record: Callable[[ExperimentConfig], dict[str, Any]] = record_of,
) -> list[str]:
    """An experiment folder of GRID: ``experiment.json`` as ``record`` writes it and a trial
    for each cell index in ``trials`` (accuracy, tokens). Returns the cell names in grid order."""
    config = ExperimentConfig.model_validate({**CONFIG, "name": "exp", "grid": GRID})
    folder.mkdir()
    (folder / export.EXPERIMENT_RECORD).write_text(json.dumps(record(config)), encoding="utf-8")
    names = [cell.name for cell in cells(config)]
    for name, (accuracy, tokens) in trials.items():
        make_trial(folder / "trials" / name, accuracy, tokens)
    return names


@pytest.fixture
def trial_folder(tmp_path: Path) -> Path:
    folder = make_trial(tmp_path / "trial")
    write_config(folder / CONFIG_FILE, TrialConfig.model_validate(CONFIG))
    return folder


def accepted_rows() -> list[dict[str, Any]]:
    return [asdict(i) for i in ITEMS if i.accepted]


# ---- what an export holds ----------------------------------------------------------------


def test_a_trial_folder_exports_its_accepted_items_adapter_and_card(
    trial_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import datasets

    out = tmp_path / "out"
    code, printed, err = run(capsys, "export", str(trial_folder), "--out", str(out))
    assert (code, err) == (0, ""), err
    assert "4 accepted items" in printed
    written = sorted(p.name for p in out.iterdir())
    assert written == ["README.md", "adapter", "dataset", "items.parquet"]
    assert datasets.load_from_disk(str(out / "dataset")).to_list() == accepted_rows()
    assert pq.read_table(out / "items.parquet").to_pylist() == accepted_rows()
    checkpoint = trial_folder / "checkpoints" / "iter_001" / "student"
    for name in (export.ADAPTER_CONFIG, "adapter_model.safetensors"):
        assert (out / "adapter" / name).read_bytes() == (checkpoint / name).read_bytes()
    card = (out / "README.md").read_text()
    assert "# trial: loss-tiny-arith-seed0" in card
    assert "strategy: loss (scorer loss, selector top_k)" in card
    assert "budget: warm-up 0 items, 2 iterations of 2, teacher-token limit none" in card
    assert "spent: 4 synthetic items, 900 teacher tokens" in card
    assert "accuracy: 0.7500 on the test set at iteration 1 (base model 0.1250)" in card
    assert "checkpoint: iter_001, 2 of 2 iterations done" in card
    assert 'AutoModelForCausalLM.from_pretrained("/models/tiny")' in card
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging


def test_every_item_field_is_a_typed_column_even_when_no_row_has_a_value(tmp_path: Path) -> None:
    import datasets

    export.write_items([item(0, -1)], tmp_path / "d", tmp_path / "p.parquet")
    features = datasets.load_from_disk(str(tmp_path / "d")).features
    assert list(features) == list(asdict(item(0, -1)))
    assert features["score"] == datasets.Value("float64")  # None in every row
    assert features["correct_final"] == datasets.Value("bool")
    assert pq.read_schema(tmp_path / "p.parquet").field("seed_score").type == "double"


def test_a_finished_runner_trial_is_a_trial_folder_too(tmp_path: Path) -> None:
    names = make_experiment(tmp_path / "e", {"random-tiny-arith-seed0": (0.5, 100)})
    folder = tmp_path / "e" / "trials" / names[1]
    config = export.open_experiment(tmp_path / "e").cells[1].config
    write_config(folder / "final" / CONFIG_FILE, config)  # as ray_asd.runner.trial ends
    trial = export.choose(export.open_experiment(folder))
    assert (trial.cell.name, trial.cell.config) == (names[1], config)


def test_a_runner_trial_stopped_early_is_a_trial_folder_through_its_experiment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Stopped by tune.scheduler (or failed, or running): checkpoints, no final/config.json.
    names = make_experiment(
        tmp_path / "e", {"loss-tiny-arith-seed0": (0.5, 1), "random-tiny-arith-seed0": (0.5, 1)}
    )
    folder = tmp_path / "e" / "trials" / names[1]
    assert not (folder / "final").exists()
    experiment = export.open_experiment(folder)
    assert (experiment.name, [c.name for c in experiment.cells]) == ("exp", [names[1]])
    assert experiment.cells[0].config == export.open_experiment(tmp_path / "e").cells[1].config
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "export", str(folder))  # one cell: no --cell needed
    assert (code, err) == (0, "")
    assert (
        "# exp: random-tiny-arith-seed0"
        in (tmp_path / "exports/exp" / names[1] / "README.md").read_text()
    )
    # A folder under trials/ that is no cell of the record is neither.
    (tmp_path / "e" / "trials" / "other").mkdir()
    with pytest.raises(ConfigError, match="nor a trial's"):
        export.open_experiment(tmp_path / "e" / "trials" / "other")


def test_best_is_the_highest_final_accuracy_then_fewer_tokens(tmp_path: Path) -> None:
    trials = {"loss-tiny-arith-seed0": (0.5, 100), "random-tiny-arith-seed0": (0.75, 900)}
    names = make_experiment(
        tmp_path / "a", {**trials, "loss+balanced-tiny-arith-seed0": (0.75, 800)}
    )
    experiment = export.open_experiment(tmp_path / "a")
    assert [c.name for c in experiment.cells] == names
    assert export.choose(experiment, best=True).cell.name == "loss+balanced-tiny-arith-seed0"
    # Equal accuracy and tokens: the earlier cell; a cell with no trial folder is left out.
    make_experiment(tmp_path / "b", {names[2]: (0.5, 10), names[1]: (0.5, 10)})
    assert export.choose(export.open_experiment(tmp_path / "b"), best=True).cell.name == names[1]


def test_best_ranks_by_the_last_step_as_the_report_does(tmp_path: Path) -> None:
    names = make_experiment(tmp_path / "e", {"loss-tiny-arith-seed0": (0.5, 100)})
    trial = export.choose(export.open_experiment(tmp_path / "e"), names[0])
    # A stopped row (its iteration's step) after the iteration's own row: the later one counts.
    trial.state.metrics.append({"phase": "stopped", "iteration": 1, "accuracy": 0.625})
    assert trial.final["accuracy"] == 0.625
    assert "at stopped (iteration 1)" in export.card(trial, 4, merged=False)


def test_cell_picks_that_trial_and_the_default_out_names_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    names = make_experiment(tmp_path / "e", {"random-tiny-arith-seed0": (0.5, 100)})
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "export", "e", "--cell", names[1])
    assert (code, err) == (0, "")
    card = (tmp_path / "exports" / "exp" / names[1] / "README.md").read_text()
    assert "# exp: random-tiny-arith-seed0" in card


@pytest.mark.parametrize("record", [record_of, flat_record], ids=["nested", "flat"])
def test_the_experiment_record_gives_the_cells_the_run_had(
    tmp_path: Path, record: Callable[[ExperimentConfig], dict[str, Any]]
) -> None:
    grid = {**GRID, "strategy": [*GRID["strategy"], {"name": "random", "stream": 1}]}
    config = ExperimentConfig.model_validate({**CONFIG, "name": "exp", "grid": grid})
    (tmp_path / export.EXPERIMENT_RECORD).write_text(json.dumps(record(config)))
    read = export.open_experiment(tmp_path).cells
    assert [(c.name, c.config, c.tags) for c in read] == [
        (c.name, c.config, c.tags) for c in cells(config)
    ]
    assert read[3].name == "random_s1-tiny-arith-seed0"


def test_the_flat_record_is_the_one_earlier_versions_wrote() -> None:
    flat = flat_record(ExperimentConfig.model_validate({**CONFIG, "grid": GRID}))
    assert flat["budget.iterations"] == "2"
    assert json.loads(flat["grid.strategy"])[2]["selector"] == "balanced"  # whole blocks as text
    assert flat["teacher.vllm.env"] == "***"  # the text "{}" masked: export reads it as {}


# A setting each that the flat record lost: a value over MLflow's 6000 characters (a grid of 30
# strategy blocks), a string that reads as JSON, a pairing named after its default name.
LOST = {
    "long": {
        "grid": {
            "strategy": [
                {
                    "scorer": "loss",
                    "selector": "balanced",
                    "selector_params": {"hard_share": i / 40},
                }
                | {"stream": i}
                for i in range(30)
            ]
        }
    },
    "json-like": {"name": "2024"},
    "named-pairing": {
        "grid": {"strategy": [{"name": "loss", "scorer": "loss", "selector": "top_k"}]}
    },
}
FLAT_FAILURE = {
    "long": "experiment.json: grid.strategy: Input should be a valid list",
    "json-like": "experiment.json: name: Input should be a valid string",
}


def lost_config(case: str) -> ExperimentConfig:
    return ExperimentConfig.model_validate({**CONFIG, "name": "exp", **LOST[case]})


def test_the_long_grid_is_over_mlflows_limit() -> None:
    blocks = lost_config("long").model_dump(mode="json")["grid"]["strategy"]
    assert len(json.dumps(blocks)) > MAX_PARAM


def round_trip(folder: Path, record: dict[str, Any]) -> export.Experiment:
    """``record`` written as ``ray-asd run`` writes it, read back by export."""
    folder.mkdir()
    (folder / export.EXPERIMENT_RECORD).write_text(json.dumps(record, indent=2))
    return export.open_experiment(folder)


@pytest.mark.parametrize("case", LOST)
def test_the_record_rebuilds_what_the_flat_one_lost(tmp_path: Path, case: str) -> None:
    config = lost_config(case)
    read = round_trip(tmp_path / "nested", record_of(config))
    assert read.name == config.name
    assert [(c.name, c.config, c.tags) for c in read.cells] == [
        (c.name, c.config, c.tags) for c in cells(config)
    ]
    # The flat form of the same config fails, or names the cell otherwise:
    if case in FLAT_FAILURE:
        with pytest.raises(DataError, match=re.escape(FLAT_FAILURE[case]) + "$"):
            round_trip(tmp_path / "flat", flat_record(config))
    else:
        flat = round_trip(tmp_path / "flat", flat_record(config))
        assert [c.name for c in flat.cells] == ["loss+top_k-tiny-arith-seed0"]
        assert [c.name for c in read.cells] == ["loss-tiny-arith-seed0"]


@pytest.mark.slow  # imports Ray (the runner's package)
def test_the_record_name_is_the_runners() -> None:
    from ray_asd.runner.checks import RECORD

    assert export.EXPERIMENT_RECORD == RECORD


def test_force_replaces_a_folder_and_a_failed_export_leaves_nothing(
    trial_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trial = export.choose(export.open_experiment(trial_folder))
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("x")
    export.export(trial, out, log=lambda _: None)
    assert not (out / "old.txt").exists() and (out / "README.md").is_file()

    def broken(*_: object) -> str:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(export, "card", broken)
    with pytest.raises(OSError, match="No space"):
        export.export(trial, tmp_path / "new" / "deeper" / "out", log=lambda _: None)
    with pytest.raises(OSError, match="No space"):
        export.export(trial, out, log=lambda _: None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "trial"]  # no new, no staging
    assert (out / "README.md").is_file()  # the earlier export as it was


# ---- bad input: one line, exit 2, nothing written ------------------------------------------


CELLS = "loss-tiny-arith-seed0, random-tiny-arith-seed0, loss+balanced-tiny-arith-seed0"
NEITHER = "not an experiment's folder (no experiment.json) nor a trial's (no config.json)"
E, CELL = "EXPERIMENT {tmp}/e", "--cell los-tiny-arith-seed0"
BAD_INPUTS = [
    (None, ["{tmp}/missing"], "EXPERIMENT {tmp}/missing: no such folder"),
    ("empty", ["{tmp}/e"], f"{E}: {NEITHER}"),
    ("experiment", ["{tmp}/e"], f"{E}: 3 cells; choose one with --cell NAME or --best: {CELLS}"),
    (
        "experiment",
        ["{tmp}/e", *CELL.split()],
        f"{CELL}: no such cell in {{tmp}}/e; did you mean 'loss-tiny-arith-seed0'",
    ),
    (
        "experiment",
        ["{tmp}/e", "--cell", "random-tiny-arith-seed0"],
        "trial {tmp}/e/trials/random-tiny-arith-seed0: no checkpoint yet",
    ),
    ("bare", ["{tmp}/e", "--best"], f"{E}: no trial has a checkpoint yet"),
    ("damaged", ["{tmp}/e"], "{tmp}/e/experiment.json: unreadable (Expecting property name"),
    (
        "experiment",
        ["{tmp}/e", "--best", "--out", "{tmp}/e/trials"],
        "--out {tmp}/e/trials: not empty; pass --force to replace it",
    ),
    (
        "experiment",
        ["{tmp}/e", "--best", "--out", "{tmp}/e/experiment.json/x"],
        "--out {tmp}/e/experiment.json/x: not a folder (a file is there",
    ),
]


@pytest.mark.parametrize(("setup", "argv", "line"), BAD_INPUTS)
def test_bad_input_is_one_line_and_writes_nothing(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    setup: str | None,
    argv: list[str],
    line: str,
) -> None:
    folder = tmp_path / "e"
    if setup == "empty":
        folder.mkdir()
    elif setup in ("experiment", "bare", "damaged"):
        make_experiment(
            folder, {"loss-tiny-arith-seed0": (0.5, 1)} if setup == "experiment" else {}
        )
    if setup == "damaged":
        (folder / export.EXPERIMENT_RECORD).write_text("{cut sh")
    before = sorted(tmp_path.rglob("*"))
    code, out, err = run(capsys, "export", *[a.format(tmp=tmp_path) for a in argv])
    assert (code, out) == (2, "")
    assert err.startswith("ray-asd: error: " + line.format(tmp=tmp_path)), err
    assert err.count("\n") == 1
    assert sorted(tmp_path.rglob("*")) == before


def test_a_checkpoint_without_an_adapter_is_refused(trial_folder: Path) -> None:
    shutil.rmtree(trial_folder / "checkpoints" / "iter_001" / "student")
    (trial_folder / "checkpoints" / "iter_001" / "student").mkdir()
    with pytest.raises(DataError, match="iter_001/student holds no peft adapter"):
        export.choose(export.open_experiment(trial_folder))


def test_a_record_another_version_wrote_is_a_data_error(trial_folder: Path) -> None:
    (trial_folder / CONFIG_FILE).write_text('{"budget": {"iterations": 0}}')
    with pytest.raises(DataError, match=r"config\.json: budget\.iterations: Input should be"):
        export.open_experiment(trial_folder)
    with pytest.raises(ConfigError):  # and not a DataError: the path is the user's
        export.open_experiment(trial_folder / "nope")


# ---- a real tiny trial: what the export writes loads, and computes what the trial's does ----


@pytest.fixture(scope="module")
def real_trial(model_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A `ray-asd trial` folder: tiny student, oracle teacher, warm-up 4, one iteration of 4."""
    out = tmp_path_factory.mktemp("export") / "trial"
    small = ["student.model=tiny:", "student.max_new_tokens=16", "budget.iterations=1"]
    small += ["budget.per_iteration=4", "budget.warmup=4", "seeds.n=8", "eval.n=4"]
    small += ["train.epochs=1"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_ASD_CACHE", str(model_cache))
        argv = ["trial", "--out", str(out)]
        for override in small:
            argv += ["--set", override]
        assert main(argv) == 0
        yield out


def logits(model: Any, cache: Path) -> Any:
    import torch

    from ray_asd.models.loading import load_model_and_tokenizer

    _, tokenizer = load_model_and_tokenizer("tiny:", cache_dir=cache)
    batch = tokenizer(["What is 2 + 3?", "Start with 8. Add 2."], return_tensors="pt", padding=True)
    with torch.no_grad():
        return model(**batch).logits


def base(cache: Path) -> Any:
    from ray_asd.models.loading import load_model_and_tokenizer

    return load_model_and_tokenizer("tiny:", cache_dir=cache, device="cpu")[0]


def test_a_real_export_loads_with_datasets_and_peft(
    real_trial: Path, model_cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import datasets
    import torch
    from peft import PeftModel

    out = tmp_path / "out"
    assert run(capsys, "export", str(real_trial), "--out", str(out))[0] == 0
    checkpoint = latest_checkpoint(real_trial)
    assert checkpoint is not None
    state = load_checkpoint(checkpoint)
    expected = [asdict(i) for i in state.accepted]
    assert len(expected) == 8 and {r["iteration"] for r in expected} == {-1, 0}
    assert datasets.load_from_disk(str(out / "dataset")).to_list() == expected
    assert pq.read_table(out / "items.parquet").to_pylist() == expected
    with (real_trial / "items.jsonl").open() as lines:
        written = [Item.from_json(json.loads(line)) for line in lines]
    assert expected == [asdict(i) for i in written if i.accepted]  # as the trial wrote them
    exported = PeftModel.from_pretrained(base(model_cache), str(out / "adapter"))
    trained = PeftModel.from_pretrained(base(model_cache), str(checkpoint / "student"))
    untrained = logits(base(model_cache), model_cache)
    assert torch.equal(logits(exported, model_cache), logits(trained, model_cache))
    assert not torch.allclose(logits(exported, model_cache), untrained)  # the adapter acts
    final = json.loads((real_trial / "metrics.json").read_text())[-1]
    card = (out / "README.md").read_text()
    assert f"accuracy: {final['accuracy']:.4f} on the test set at iteration 0" in card
    assert f"spent: 8 synthetic items, {final['teacher_tokens']} teacher tokens" in card
    assert "budget: warm-up 4 items, 1 iterations of 4" in card


def test_merge_writes_a_model_that_computes_base_plus_adapter(
    real_trial: Path, model_cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    monkeypatch.setenv("RAY_ASD_CACHE", str(model_cache))
    out = tmp_path / "out"
    assert run(capsys, "export", str(real_trial), "--out", str(out), "--merge")[0] == 0
    merged = AutoModelForCausalLM.from_pretrained(str(out / "merged"))
    assert not any("lora" in name for name, _ in merged.named_parameters())
    adapted = PeftModel.from_pretrained(base(model_cache), str(out / "adapter"))
    torch.testing.assert_close(
        logits(merged, model_cache), logits(adapted, model_cache), atol=1e-5, rtol=1e-5
    )
    assert AutoTokenizer.from_pretrained(str(out / "merged")).eos_token is not None
    assert 'from_pretrained("merged")' in (out / "README.md").read_text()
