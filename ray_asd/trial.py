"""One trial in-process: build the student, teacher and strategy from a config, run the loop.

This is `ray-asd trial CONFIG`; the Ray runner builds the same TrialParts with scoring actors and a
shared teacher pool instead.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from ray_asd.config import TeacherConfig, TrialConfig
from ray_asd.errors import ConfigError
from ray_asd.loop import TrialParts, run_trial
from ray_asd.raters import JUDGED_COLUMNS, RATER_COLUMNS, Judge, Raters, RewardFn
from ray_asd.raters.judge import PLACEHOLDERS as JUDGE_PLACEHOLDERS
from ray_asd.redact import redact
from ray_asd.state import latest_checkpoint
from ray_asd.strategies import Strategy, compose, make_strategy
from ray_asd.strategies.scorers import (
    ANSWER_NLL,
    CORRECT,
    GRAD_EMBEDDING,
    REFERENCE_NLL,
    REWARD,
    normalise_nll,
)
from ray_asd.student import Student, TrainSettings, check_model_spec, resolve_model
from ray_asd.tasks import Task, load_table, make_task
from ray_asd.teacher import (
    CachedBackend,
    CompletionBackend,
    LLMTeacher,
    OracleTeacher,
    Prompts,
    Teacher,
)
from ray_asd.teacher.backends import make_backend
from ray_asd.teacher.prompts import read_template
from ray_asd.tracking import flatten

CONFIG_FILE = "config.json"  # in the trial's folder: the config it runs under, redacted


def build_strategy(config: TrialConfig) -> Strategy:
    spec = config.strategy
    if spec.scorer is not None and spec.selector is not None:
        # A pairing without a name of its own is named after its parts, not the default "loss".
        name = spec.name if "name" in spec.model_fields_set else None
        return compose(spec.scorer, spec.selector, name=name, selector_params=spec.selector_params)
    if spec.name is None:
        raise ConfigError("strategy: give a name or a scorer and a selector")
    return make_strategy(spec.name)


def build_raters(
    config: TrialConfig,
    task: Task,
    teacher: Teacher,
    *,
    reward: RewardFn | None = None,
    judge_backend: CompletionBackend | None = None,
    cache_dir: Path | None = None,
    teacher_cache: Path | None = None,
) -> Raters | None:
    """The raters the trial's strategy reads (None: it reads none).

    Args:
        config: the trial config (``reward``, ``judge``).
        task: the trial's task.
        teacher: the trial's teacher (``lion`` asks it to answer seeds).
        reward: the reward model (the runner's scoring actors); by default loaded here.
        judge_backend: the judge's backend (the runner's judge pool); by default one built
            here from ``judge.llm``, else the teacher's own LLM.
        cache_dir: where embedded and tiny models are materialised.
        teacher_cache: the teacher cache folder, for a judge built here.

    Raises:
        ConfigError: see :func:`check_raters`.
    """
    needed = RATER_COLUMNS.intersection(build_strategy(config).scorer.columns)
    if not needed:
        return None
    check_raters(config)
    judge = None
    if needed & JUDGED_COLUMNS:
        backend = judge_backend or _judge_backend(config, teacher, cache_dir, teacher_cache)
        judge = Judge.load(
            backend, config.judge.prompt, config.judge.attempts, config.judge.neutral
        )
    if REWARD in needed and reward is None:
        from ray_asd.raters.reward import load_reward_model

        reward = load_reward_model(config.reward, cache_dir).score
    return Raters(task, reward=reward, judge=judge, teacher=teacher)


def needs_judge(config: TrialConfig) -> bool:
    """Whether the trial's strategy reads ratings of an LLM judge (judge, lion)."""
    return bool(JUDGED_COLUMNS.intersection(build_strategy(config).scorer.columns))


def check_raters(config: TrialConfig) -> None:
    """Fails early, before any model loads, when the strategy needs a rater the config
    cannot give: an LLM judge (the oracle cannot judge), its prompt file, a reward model.

    Raises:
        ConfigError: naming the fields to set.
    """
    strategy = build_strategy(config)
    columns = set(strategy.scorer.columns)
    if columns & JUDGED_COLUMNS:
        if config.judge.llm is None and config.teacher.backend == "oracle":
            raise ConfigError(
                f"strategy {strategy.name!r} needs an LLM judge: set judge.llm "
                "(backend, model), or use an LLM teacher (the oracle cannot judge)"
            )
        if config.judge.prompt is not None:
            read_template(config.judge.prompt, JUDGE_PLACEHOLDERS)
    if REWARD in columns:
        if config.reward.model is None:
            raise ConfigError(
                f"strategy {strategy.name!r} needs reward.model (a hub id or folder of a "
                "sequence classifier; tiny: for a random one in tests)"
            )
        try:
            check_model_spec(config.reward.model)
        except ConfigError as error:
            raise ConfigError(f"reward.model: {error}") from None


def _judge_backend(
    config: TrialConfig, teacher: Teacher, cache_dir: Path | None, teacher_cache: Path | None
) -> CompletionBackend:
    if config.judge.llm is None:
        assert isinstance(teacher, LLMTeacher)  # check_raters: not the oracle
        return teacher.backend
    if teacher_cache is None:
        raise ValueError("a judge built in-process needs a teacher_cache folder")
    return CachedBackend(make_backend(config.judge.llm, cache_dir), teacher_cache, "local-judge")


def build_prompts(config: TeacherConfig) -> Prompts:
    files = config.prompts
    return Prompts.load(
        files.family,
        {
            "write_question": files.write_question,
            "answer_question": files.answer_question,
            "one_step": files.one_step,
        },
    )


def build_teacher(
    config: TeacherConfig,
    cache_dir: Path | None = None,
    *,
    completions: CompletionBackend | None = None,
    teacher_cache: Path | None = None,
) -> Teacher:
    """The teacher a config names.

    Args:
        config: the teacher config.
        cache_dir: where embedded and tiny models are materialised.
        completions: the backend of an LLM teacher (the runner passes its shared pool);
            by default one is built here, its completions cached in ``teacher_cache``.
        teacher_cache: the folder of the teacher cache (required for an LLM teacher
            built here).
    """
    prompts = build_prompts(config)
    if config.backend == "oracle":
        if config.tokenizer is None:
            return OracleTeacher(prompts=prompts)
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(resolve_model(config.tokenizer, cache_dir))
        return OracleTeacher(
            count_tokens=lambda text: len(tokenizer(text)["input_ids"]), prompts=prompts
        )
    if completions is None:
        if teacher_cache is None:
            raise ValueError("an LLM teacher built in-process needs a teacher_cache folder")
        completions = CachedBackend(make_backend(config, cache_dir), teacher_cache, "local")
    return LLMTeacher(completions, prompts, config.prompts.mode)


def answer_table(
    config: TrialConfig,
    task: Task,
    student: Student,
    table: pd.DataFrame,
    columns: tuple[str, ...] = (),
) -> pd.DataFrame:
    """The student's answers to a table's questions: the rows plus ``student_answer`` (cut
    after its final answer, as graded), ``answer_tokens`` (generated), ``correct`` and each
    score named in ``columns`` (``answer_nll``, ``reference_nll``, ``grad_embedding``).
    In-process here, on scoring actors in the runner."""
    prompts = [task.prompt(q) for q in table["question"]]
    generations = student.answer(
        prompts, max_new_tokens=config.student.max_new_tokens, batch_size=config.student.batch_size
    )
    texts = [task.cut_after_final(g.text) for g in generations]
    result = table.assign(
        student_answer=texts,
        answer_tokens=[g.n_tokens for g in generations],
        **{
            CORRECT: [
                task.is_correct(q, a, r)
                for q, a, r in zip(table["question"], texts, table["answer"], strict=True)
            ]
        },
    )
    if ANSWER_NLL in columns:
        # The loss of exactly what is graded: the cut answer and its stop token, not the
        # rambling a small model writes after "#### 14" (which the checker never sees).
        result[ANSWER_NLL] = graded_nll(config, student, prompts, texts)
    if REFERENCE_NLL in columns:
        references = [" " + a for a in table["answer"]]
        result[REFERENCE_NLL] = graded_nll(config, student, prompts, references)
    if GRAD_EMBEDDING in columns:
        # The answer as graded (cut after its final answer) plus EOS, as the NLLs.
        embeddings = student.grad_embeddings(prompts, texts, batch_size=config.student.batch_size)
        result[GRAD_EMBEDDING] = list(embeddings)
    return result


def graded_nll(
    config: TrialConfig, student: Student, prompts: list[str], answers: list[str]
) -> list[float]:
    """The NLL of each answer plus the EOS that ends it under the student, teacher-forced,
    normalised by ``loss_normalisation`` (default ``mean``: per token, the paper's)."""
    totals = student.nll(
        prompts, answers, batch_size=config.student.batch_size, reduction="sum", add_eos=True
    )
    # + 1: the EOS that add_eos scores
    lengths = [
        len(student.tokenizer(a, add_special_tokens=False)["input_ids"]) + 1 for a in answers
    ]
    how = config.loss_normalisation
    return [
        normalise_nll(total, n, a, how)
        for total, n, a in zip(totals, lengths, answers, strict=True)
    ]


def student_parts(config: TrialConfig, task: Task, student: Student) -> dict[str, Any]:
    """The student-side callables of TrialParts for an in-process Student."""
    settings = TrainSettings(
        r=config.train.lora_r,
        alpha=config.train.lora_alpha,
        lr=config.train.learning_rate,
        epochs=config.train.epochs,
        batch_size=config.train.batch_size,
    )

    def student_answers(table: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
        return answer_table(config, task, student, table, columns)

    def train(items: pd.DataFrame, t: int) -> dict[str, float]:
        if config.train.mode == "retrain":
            student.reset_adapter()
        stats = student.train(
            [task.prompt(q) for q in items["question"]],
            [" " + a for a in items["answer"]],
            # t = -1 is the warm-up; seeds must be non-negative.
            TrainSettings(**{**settings.__dict__, "seed": config.seed * 1000 + t + 1}),
        )
        return {
            "steps": stats.steps,
            "first_epoch_loss": stats.first_epoch_loss,
            "last_epoch_loss": stats.last_epoch_loss,
        }

    def save_student(path: Path) -> None:
        if student.has_adapter:
            student.save_adapter(path)

    def load_student(path: Path | None) -> None:
        if path is not None and path.exists():
            student.load_adapter(path)
        else:  # the base model, or a checkpoint taken before any training
            student.reset_adapter()

    return {
        "student_answers": student_answers,
        "train": train,
        "save_student": save_student,
        "load_student": load_student,
    }


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
    try:
        before = json.loads(record.read_text(encoding="utf-8"))
        if not isinstance(before, dict):
            raise ValueError("not a JSON object")
    except ValueError as error:
        raise ConfigError(
            f"{record}: unreadable ({error}); delete it to resume unchecked, or --out elsewhere"
        ) from None
    now = config_record(config)
    before = redact(before)  # a record of an older version holds its secrets in clear
    if config_hash(before) == config_hash(now):
        return
    old, new = flatten(before), flatten(now)
    default = flatten(config_record(TrialConfig()))
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
    task = make_task(config.task.name, **config.task.params)
    pool = load_table(task, config.task.train).head(config.seeds.n)
    test = load_table(task, config.task.test).head(config.eval.n)
    write_config(out / CONFIG_FILE, config)
    student = Student.from_config(config.student, cache_dir)
    teacher = build_teacher(config.teacher, cache_dir, teacher_cache=out / "teacher_cache")
    parts = TrialParts(
        task=task,
        strategy=build_strategy(config),
        teacher=teacher,
        rate=build_raters(
            config, task, teacher, cache_dir=cache_dir, teacher_cache=out / "teacher_cache"
        ),
        **student_parts(config, task, student),
    )
    metrics = run_trial(config, parts, pool, test, out)
    if isinstance(teacher, LLMTeacher):
        stats = teacher.backend.stats()
        print(f"[trial] teacher backend: {stats}")
        (out / "teacher_stats.json").write_text(json.dumps(stats, indent=2), encoding="utf-8")
    metrics.to_csv(out / "metrics.csv", index=False)
    (out / "metrics.json").write_text(
        json.dumps(metrics.to_dict("records"), indent=2), encoding="utf-8"
    )
    for name in ("items.jsonl", "evaluations.jsonl"):
        (out / name).write_bytes((latest_checkpoint(out) / name).read_bytes())
    return metrics
