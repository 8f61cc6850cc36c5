"""Configuration of one trial: pydantic models that a YAML file maps onto one-to-one.

These models are the single home of defaults. Unknown keys, bad values and non-finite numbers
are refused; :mod:`ray_asd.config_file` reads a file into them with one line per problem naming
the dotted key (``budget.per_iteration: ...``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

# Re-exported: the sections' base and the engine sections live on the floor below.
from ray_asd.config_base import Free, OpenAIConfig, Section, StudentVllmConfig, VllmConfig
from ray_asd.kinds import TEACHER_KINDS
from ray_asd.tasks import DataSource


def _hub_revision(revision: str | None, info: ValidationInfo) -> str | None:
    """A revision only where it can apply: a hub id (``org/name``), not an ``embedded:`` or
    ``tiny:`` spec (they hold a ``:``, which no hub id does) or a local folder."""
    model = info.data.get("model")
    if revision is None:
        return None
    backend = info.data.get("backend")
    if backend in TEACHER_KINDS and not TEACHER_KINDS[backend].loads_model:
        raise ValueError(f"the {backend} backend loads no model to pin")
    if not isinstance(model, str) or not model:
        raise ValueError("no model to pin: set model to a hub id")
    local = model.startswith(("/", ".", "~")) or Path(model).expanduser().is_dir()
    if ":" in model or local:
        raise ValueError(f"{model!r} is not a hub model; a revision pins hub ids (org/name) only")
    return revision


class TaskConfig(Section):
    name: str = "arith"
    params: dict[str, Free] = Field(default_factory=dict, description="task factory arguments")
    train: DataSource = Field(default_factory=lambda: DataSource(split="train"))
    test: DataSource = Field(default_factory=lambda: DataSource(split="test"))


class StudentConfig(Section):
    model: str = Field(
        "embedded:smollm2-135m", description="hub id, local folder, embedded:, tiny:"
    )
    max_new_tokens: int = Field(96, ge=1, description="4-step arith answers reach ~60 tokens")
    batch_size: int = Field(16, ge=1, description="answering and scoring batch size")
    autocast: bool = Field(
        True, description="bf16 autocast for answering, scoring and training (~2x on CPU)"
    )
    trust_remote_code: bool = False
    revision: str | None = Field(
        None, description="hub models: the branch, tag or commit to load (default: main)"
    )
    backend: Literal["transformers", "vllm"] = Field(
        "transformers",
        description="who answers seeds and test items: the trained model itself, or a vLLM "
        "engine serving its adapter (training stays on transformers)",
    )
    vllm: StudentVllmConfig = Field(default_factory=StudentVllmConfig)

    _revision = field_validator("revision")(_hub_revision)


class PromptConfig(Section):
    family: str | None = Field(
        None,
        description="template family (generic, math_word, math, game24, logic); "
        "default: the task's own",
    )
    mode: Literal["two_step", "one_step"] = Field(
        "two_step", description="write then answer in two calls, or both in one call"
    )
    write_question: Path | None = Field(None, description="template file replacing the family's")
    answer_question: Path | None = None
    one_step: Path | None = None


class TeacherConfig(Section):
    backend: str = Field("oracle", description=f"one of {', '.join(TEACHER_KINDS)}")
    model: str | None = Field(
        None, description="transformers/vllm: hub id, folder, embedded:, tiny:; openai: its name"
    )
    revision: str | None = Field(
        None, description="hub models: the branch, tag or commit to load (default: main)"
    )
    tokenizer: str | None = Field(
        None,
        description="oracle: count tokens with this model's tokenizer, as an LLM teacher of "
        "that family would be charged (default: words and punctuation marks)",
    )
    max_new_tokens: int = Field(256, ge=1)
    temperature: float = Field(0.7, ge=0.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    chat: bool = Field(
        True, description="send prompts as a chat message (chat template); false: plain text"
    )
    engine_attempts: int = Field(
        2, ge=1, description="transformers/vllm: tries of a request that the engine fails"
    )
    prompts: PromptConfig = Field(default_factory=PromptConfig)
    vllm: VllmConfig = Field(default_factory=VllmConfig)
    openai: OpenAIConfig = Field(default_factory=OpenAIConfig)

    @field_validator("backend")
    @classmethod
    def _known_kind(cls, backend: str) -> str:
        if backend not in TEACHER_KINDS:
            raise ValueError(f"unknown backend {backend!r}; use one of {', '.join(TEACHER_KINDS)}")
        return backend

    _revision = field_validator("revision")(_hub_revision)

    @model_validator(mode="after")
    def _model_for_llm(self) -> TeacherConfig:
        if TEACHER_KINDS[self.backend].llm and not self.model:
            raise ValueError(f"teacher backend {self.backend!r} needs teacher.model")
        return self


class RewardConfig(Section):
    """The reward model of the ``reward`` strategy: a sequence classifier rating
    (question, student answer)."""

    backend: Literal["transformers", "vllm"] = Field(
        "transformers", description="vllm: the engine's classify path (runner pooling)"
    )
    model: str | None = Field(
        None,
        description="a sequence-classification model: hub id or folder (needed by reward); a "
        "causal LM spec (embedded:, tiny:) gets a new, random one-logit head (plumbing only)",
    )
    label: int | str | None = Field(
        None,
        description="the label whose log-probability is the reward, by index or name; "
        "default: the only logit of a one-label model",
    )
    input: Literal["auto", "chat", "pair"] = Field(
        "auto",
        description="chat: user question + assistant answer through the chat template; pair: "
        "the tokenizer's text pair; auto: chat where the tokenizer has a template",
    )
    max_length: int = Field(1024, ge=8, description="tokens per input; longer ones are cut")
    batch_size: int = Field(16, ge=1)
    autocast: bool = Field(True, description="transformers: bf16 autocast")
    trust_remote_code: bool = False
    revision: str | None = Field(
        None, description="hub models: the branch, tag or commit to load (default: main)"
    )
    vllm: VllmConfig = Field(default_factory=VllmConfig, description="vllm engine settings")

    _revision = field_validator("revision")(_hub_revision)


class JudgeConfig(Section):
    """The LLM judge of the ``judge`` and ``lion`` strategies."""

    llm: TeacherConfig | None = Field(
        None,
        description="a judge model of its own (backend, model, sampling as in teacher), "
        "served by a judge pool; null: the teacher's LLM judges",
    )
    prompt: Path | None = Field(
        None, description="template with {question} and {answer}; default: the built-in one"
    )
    attempts: int = Field(
        2, ge=1, description="requests per rating; a reply without one is asked again"
    )
    neutral: float = Field(
        5.5, ge=1, le=10, description="the rating of an answer the judge never rated"
    )

    @field_validator("llm")
    @classmethod
    def _an_llm(cls, llm: TeacherConfig | None) -> TeacherConfig | None:
        if llm is not None and not TEACHER_KINDS[llm.backend].llm:
            raise ValueError("the oracle cannot judge; name an LLM backend")
        return llm


class StrategyConfig(Section):
    """A named strategy (``name: loss``, or just ``strategy: loss``) or a pairing (``scorer:
    loss, selector: balanced``); a selector with parameters is ``selector: {name: power,
    temperature: 0.5}`` (or its parameters in ``selector_params``)."""

    name: str | None = "loss"
    scorer: str | None = None
    selector: str | None = None
    selector_params: dict[str, Free] = Field(default_factory=dict)
    stream: int = Field(
        0,
        ge=0,
        description="the random stream of the trial's picks and teacher requests (0: the "
        "trial's seed alone); two arms that differ only here are an A/A pair, the noise floor "
        "(labelled e.g. random_s1 in a grid)",
    )
    arms: list[str] = Field(
        default_factory=list,
        description="scorer: bandit: the strategies (loss, random, ...) or scorers (paired with "
        "selector, default top_k) among which a learning-progress bandit splits each "
        "iteration's picks (ray_asd.strategies.bandit)",
    )
    # Exp3.S's settings. A trial has few iterations (3 to 10, against Graves et al.'s
    # thousands of steps), so the steps are large: with eta 1, an arm paid +1 and one paid -1
    # end one iteration 2 apart in log-weight, a softmax ratio of e^2 = 7.4.
    bandit_gamma: float = Field(
        0.2, gt=0, le=1, description="bandit: the share of picks spread evenly (exploration)"
    )
    bandit_eta: float = Field(
        1.0, gt=0, description="bandit: the step of an arm's log-weight per unit of reward"
    )
    bandit_alpha: float = Field(
        0.05,
        ge=0,
        lt=1,
        description="bandit: the weight shared between arms per iteration (Exp3.S), so an arm "
        "that fell behind can come back",
    )
    bandit_window: int = Field(
        16,
        ge=2,
        description="bandit: the newest relative progress values (every arm's) whose 20th and "
        "80th percentiles rescale a reward to [-1, 1]",
    )

    @property
    def bandit(self) -> bool:
        """A learning-progress bandit over ``arms`` (``scorer: bandit``)."""
        return self.scorer == "bandit"

    @model_validator(mode="before")
    @classmethod
    def _selector_block(cls, data: Any) -> Any:
        if isinstance(data, str):  # `strategy: loss`, as the README writes it
            return {"name": data}
        if isinstance(data, dict) and data.get("scorer") == "bandit":
            data = {"name": "bandit", **data}  # named so in a grid (not after its parts)
        if not isinstance(data, dict) or not isinstance(data.get("selector"), dict):
            return data
        params = dict(data["selector"])
        name = params.pop("name", None)
        if not isinstance(name, str):
            raise ValueError("selector: a selector block needs a name, e.g. {name: power}")
        if params and data.get("selector_params"):
            raise ValueError("selector: give its parameters in the block or in selector_params")
        return {
            **data,
            "selector": name,
            "selector_params": params or data.get("selector_params", {}),
        }

    @model_validator(mode="after")
    def _named_or_composed(self) -> StrategyConfig:
        # Values, not keys set: a grid cell's section comes back whole (arms: [] included).
        fields = type(self).model_fields
        settings = [
            key
            for key, field in fields.items()
            if (key == "arms" or key.startswith("bandit_"))
            and getattr(self, key) != field.get_default(call_default_factory=True)
        ]
        if settings and not self.bandit:
            raise ValueError(f"{settings[0]}: only a bandit (scorer: bandit) takes it")
        if self.bandit:  # its selector, if any, is its scorer arms'
            return self
        composed = self.scorer is not None or self.selector is not None
        if composed and (self.scorer is None or self.selector is None):
            raise ValueError("give both scorer and selector, or a strategy name")
        return self


class BudgetConfig(Section):
    iterations: int = Field(3, ge=1, description="T")
    per_iteration: int = Field(32, ge=1, description="m: accepted items per iteration")
    warmup: int = Field(0, ge=0, description="random items trained before iteration 0, counted")
    teacher_tokens: int | None = Field(
        None, ge=1, description="stop the trial once its teacher calls cost this many tokens"
    )


class SeedsConfig(Section):
    n: int = Field(64, ge=1, description="seed pool: the first n rows of task.train")


class EvalConfig(Section):
    n: int = Field(60, ge=1, description="test set: the first n rows of task.test")


class TrainConfig(Section):
    """LoRA finetuning of the student; every training default lives here. The defaults were
    calibrated on SmolLM2-135M with arith on 2 CPU cores: r 16, alpha 32 on q/k/v/o, lr 1e-3
    with warm-up and linear decay, batch 8, 2 epochs took 64 random items from 0% to 20% test
    accuracy (256 items: 39%) at ~0.36 s per item per epoch."""

    mode: Literal["retrain", "continue"] = Field(
        "retrain", description="retrain: a fresh adapter each iteration; continue: keep training"
    )
    lora_r: int = Field(16, ge=1, description="LoRA rank")
    lora_alpha: int = Field(32, ge=1, description="the update is scaled by alpha / r")
    lora_dropout: float = Field(0.05, ge=0, lt=1, description="dropout on the LoRA input")
    lora_target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"],
        min_length=1,
        description="modules that get adapters (the attention projections)",
    )
    learning_rate: float = Field(1e-3, gt=0, description="peak learning rate")
    epochs: int = Field(2, ge=1)
    batch_size: int = Field(8, ge=1, description="examples per optimizer step")
    warmup_ratio: float = Field(
        0.1, ge=0, lt=1, description="share of steps warming the learning rate up from zero"
    )
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay")
    max_grad_norm: float = Field(1.0, gt=0, description="gradient clipping (global L2 norm)")


class AnalysisConfig(Section):
    score_items: bool = Field(
        True,
        description="score each accepted synthetic item with the strategy's scorer and the "
        "student that scored its seed, and at the last iteration every item's seed and answer "
        "with the first and the final iteration's student, for `ray-asd report`'s score "
        "fidelity and ordering (student passes over the few items and their seeds; judge calls "
        "counted apart; never charged to the budget, never changing a pick)",
    )
    scorer: str = Field(
        "loss",
        description="the scorer of those analyses for strategies without one (random, static), "
        "so that they get the unrestricted range of random picks",
    )


class GenerationConfig(Section):
    max_attempts: int = Field(3, ge=1, description="teacher tries per picked seed")
    near_duplicate_threshold: float = Field(0.7, gt=0, le=1, description="n-gram Jaccard")
    ngram: int = Field(3, ge=1)


class TrialConfig(Section):
    """One trial: a (strategy, student, task, seed) cell of an experiment."""

    seed: int = 0
    loss_normalisation: Literal["mean", "sum", "step"] = Field(
        "mean", description="answer NLL per token (paper), in total, or per reasoning step"
    )
    task: TaskConfig = Field(default_factory=TaskConfig)
    student: StudentConfig = Field(default_factory=StudentConfig)
    teacher: TeacherConfig = Field(default_factory=TeacherConfig)
    strategy: StrategyConfig = Field(default_factory=StrategyConfig)
    reward: RewardConfig = Field(default_factory=RewardConfig)
    judge: JudgeConfig = Field(default_factory=JudgeConfig)
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    seeds: SeedsConfig = Field(default_factory=SeedsConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    analysis: AnalysisConfig = Field(default_factory=AnalysisConfig)
