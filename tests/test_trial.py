"""`ray-asd trial` end to end with the tiny student: CLI, outputs, warm-up, resume."""

import json
from pathlib import Path

import pandas as pd
import pytest

from ray_asd.cli import main
from ray_asd.config import TrialConfig
from ray_asd.config_file import load_config
from ray_asd.errors import ConfigError
from ray_asd.redact import MASK
from ray_asd.trial import check_same_config, write_config

SMALL = [
    "student.model=tiny:",
    "student.max_new_tokens=16",
    "budget.iterations=1",
    "budget.per_iteration=4",
    "budget.warmup=4",
    "seeds.n=8",
    "eval.n=4",
    "train.epochs=1",
]


@pytest.fixture
def cache(model_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_ASD_CACHE", str(model_cache))


def trial(capsys, out: Path, *extra: str) -> tuple[int, str, str]:
    argv = ["trial", "--out", str(out)]
    for override in [*SMALL, *extra]:
        argv += [override] if override.startswith("--") else ["--set", override]
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.usefixtures("cache")
def test_trial_writes_results_and_prints_the_table(tmp_path: Path, capsys) -> None:
    code, out, _ = trial(capsys, tmp_path / "run")
    assert code == 0
    assert "base model accuracy" in out and "[trial] t= 0" in out
    metrics = pd.read_csv(tmp_path / "run" / "metrics.csv")
    assert metrics["phase"].tolist() == ["base", "warmup", "iteration"]
    assert metrics["n_synthetic"].tolist() == [0, 4, 8]  # the warm-up counts in the budget
    items = [json.loads(line) for line in (tmp_path / "run" / "items.jsonl").open()]
    assert {item["strategy"] for item in items} == {"warmup", "loss"}
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["budget"]["warmup"] == 4
    # One row per phase, the same columns in metrics.csv, metrics.json and the checkpoint.
    state = json.loads((tmp_path / "run" / "checkpoints" / "iter_000" / "state.json").read_text())
    assert pd.DataFrame(state["metrics"]).columns.tolist() == metrics.columns.tolist()
    written = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert written == state["metrics"]


@pytest.mark.usefixtures("cache")
def test_existing_trial_needs_resume(tmp_path: Path, capsys) -> None:
    assert trial(capsys, tmp_path / "run")[0] == 0
    code, _, err = trial(capsys, tmp_path / "run")
    assert code == 2 and "pass --resume" in err
    # Resuming a finished trial repeats nothing and reports the same metrics.
    before = pd.read_csv(tmp_path / "run" / "metrics.csv")
    code, out, _ = trial(capsys, tmp_path / "run", "--resume")
    assert code == 0 and "continuing at iteration 1" in out
    after = pd.read_csv(tmp_path / "run" / "metrics.csv")
    pd.testing.assert_frame_equal(before, after)
    # Under another config it refuses, naming what changed, and leaves the trial as it was.
    record = (tmp_path / "run" / "config.json").read_text()
    code, _, err = trial(capsys, tmp_path / "run", "--resume", "budget.iterations=2", "seed=3")
    assert code == 2 and err.count("\n") == 1
    assert "the trial ran with other settings of budget.iterations, seed" in err
    assert (tmp_path / "run" / "config.json").read_text() == record


def test_bad_override_is_one_clear_error(tmp_path: Path, capsys) -> None:
    code, _, err = trial(capsys, tmp_path / "run", "budget.iteratons=2")
    assert code == 2 and "budget.iteratons: Extra inputs are not permitted" in err


@pytest.mark.usefixtures("cache")
def test_a_teacher_whose_items_are_all_rejected_leaves_the_student_untrained(
    tmp_path: Path, capsys
) -> None:
    # The tiny random model as an LLM teacher (transformers backend) never writes a usable
    # item: the trial still runs to the end, training skipped, every rejection counted.
    llm_teacher = [
        "teacher.backend=transformers",
        "teacher.model=tiny:",
        "teacher.max_new_tokens=8",
        "generation.max_attempts=1",
    ]
    code, out, _ = trial(capsys, tmp_path / "run", *llm_teacher)
    assert code == 0 and "no accepted items yet, the student stays as it is" in out
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert [row["n_synthetic"] for row in metrics] == [0, 0, 0]
    assert [row["n_rejected"] for row in metrics[1:]] == [4, 4]
    assert metrics[-1]["teacher_calls"] > 0 and metrics[-1]["teacher_tokens"] > 0


@pytest.fixture
def judge_server():
    from tests.helpers.openai_server import FaultyOpenAIServer, arith_judge

    with FaultyOpenAIServer(arith_judge) as server:
        yield server


def judge_llm(server) -> str:
    return (
        "judge.llm={backend: openai, model: judge-7b, temperature: 0.0, "
        f"openai: {{base_url: '{server.base_url}'}}}}"
    )


@pytest.mark.usefixtures("cache")
def test_lion_charges_its_judge_calls_and_answers_each_seed_once(
    tmp_path: Path, capsys, judge_server
) -> None:
    run = tmp_path / "lion"
    extra = ["strategy.name=lion", "budget.iterations=2", judge_llm(judge_server)]
    code, out, _ = trial(capsys, run, *extra)
    assert code == 0, out
    assert "rating the student's answers (lion_gap)" in out
    metrics = pd.read_csv(run / "metrics.csv").set_index("phase", append=True)
    iterations = metrics.xs("iteration", level="phase")
    # t=0: 8 oracle answers + 8 ratings of them + 8 of the student's; t=1: the student's only.
    assert iterations["rating_calls_phase"].tolist() == [24, 8]
    assert (
        iterations["teacher_tokens"]
        == iterations["generation_tokens"] + iterations["rating_tokens"]
    ).all()
    assert iterations["rating_tokens"].is_monotonic_increasing
    state = json.loads((run / "checkpoints" / "iter_001" / "state.json").read_text())
    assert len(state["memo"]["lion"]) == 8
    assert state["rating"]["calls"] == 32
    # Resumed from iteration 0's checkpoint: the memo comes back, the teacher is not asked
    # again, and the rerun iteration equals the first run's.
    served, before = judge_server.served["ok"], pd.read_csv(run / "metrics.csv")
    (run / "checkpoints" / "latest").write_text("iter_000")
    code, out, _ = trial(capsys, run, *extra, "--resume")
    assert code == 0, out
    again = pd.read_csv(run / "metrics.csv")
    assert again.filter(like="rating").equals(before.filter(like="rating"))
    assert again["teacher_tokens"].equals(before["teacher_tokens"])
    assert again["rating_calls_phase"].tolist()[-1] == 8
    assert judge_server.served["ok"] == served  # the teacher cache answered the rerun


def test_config_json_is_redacted(tmp_path: Path) -> None:
    config = load_config(None, ["teacher.vllm.env={HF_TOKEN: hf_abcdefghijklmnopqrstu}"])
    write_config(tmp_path / "config.json", config)
    text = (tmp_path / "config.json").read_text()
    assert "hf_abcdefghijklmnopqrstu" not in text
    assert json.loads(text)["teacher"]["vllm"]["env"] == {"HF_TOKEN": MASK}
    assert TrialConfig.model_validate(json.loads(text)).seed == config.seed  # loadable again


def test_a_resume_under_another_config_names_the_keys_that_changed(tmp_path: Path) -> None:
    config = load_config(None, ["budget.iterations=3", "task.params={max_ops: 3}"])
    check_same_config(tmp_path, config)  # no record yet: nothing to compare
    write_config(tmp_path / "config.json", config)
    check_same_config(tmp_path, config)
    changed = load_config(None, ["budget.iterations=4", "task.params={}", "seed=1"])
    with pytest.raises(ConfigError) as error:
        check_same_config(tmp_path, changed)
    assert "other settings of budget.iterations, seed, task.params.max_ops (see" in str(error.value)


def test_a_change_past_mlflow_s_6000_characters_is_named(tmp_path: Path) -> None:
    """The record's values are compared whole: MLflow's params (`tracking.flatten`) cut
    each value at 6000 characters, and the change here lies beyond the cut."""
    long = "x" * 7000
    key = "teacher.vllm.engine_kwargs"
    write_config(tmp_path / "config.json", load_config(None, [f"{key}={{name: {long}a}}"]))
    with pytest.raises(ConfigError, match=f"other settings of {key}.name "):
        check_same_config(tmp_path, load_config(None, [f"{key}={{name: {long}b}}"]))


def test_a_field_added_since_the_trial_began_does_not_block_its_resume(tmp_path: Path) -> None:
    env = "teacher.vllm.env={HF_TOKEN: hf_zyxwvutsrqponmlkjihg}"
    config = load_config(None, ["budget.iterations=3", env])
    old = json.loads(config.model_dump_json())
    del old["student"]["revision"], old["loss_normalisation"]  # as an older version wrote it
    # ... with its secrets in clear, and a token rotated since: masked, no change either.
    old["teacher"]["vllm"]["env"] = {"HF_TOKEN": "hf_abcdefghijklmnopqrstu"}
    (tmp_path / "config.json").write_text(json.dumps(old))
    check_same_config(tmp_path, config)
    set_now = load_config(None, ["budget.iterations=3", env, "loss_normalisation=sum"])
    with pytest.raises(ConfigError, match="other settings of loss_normalisation "):
        check_same_config(tmp_path, set_now)
