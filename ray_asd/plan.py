"""A trial resolved before anything runs: its strategy, the columns its scorer reads, the
producers those imply, its schedule. Pure and torch-free, so `ray-asd run` validates a whole
grid (and `ray_asd.preflight` sizes it) before a model loads; `ray_asd.assemble` builds the
trial's parts from it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ray_asd.columns import column
from ray_asd.config import TrialConfig
from ray_asd.errors import ConfigError
from ray_asd.kinds import teacher_kind
from ray_asd.models import check_model_spec
from ray_asd.raters.judge import PLACEHOLDERS
from ray_asd.schedule import Schedule
from ray_asd.strategies import Strategy, compose, compose_bandit, make_strategy
from ray_asd.strategies.bandit import Exp3S
from ray_asd.student.backend import check_backend
from ray_asd.teacher.prompts import read_template


@dataclass(frozen=True)
class TrialPlan:
    """What one trial needs.

    Attributes:
        config: the trial's config.
        strategy: its strategy.
        student_columns: columns the student computes on every seed before scoring.
        rater_columns: columns other models compute from the student's answers.
        schedule: picks per iteration, the teacher budget, static's rule.
    """

    config: TrialConfig
    strategy: Strategy
    student_columns: tuple[str, ...]
    rater_columns: tuple[str, ...]
    schedule: Schedule

    @property
    def answers_seeds(self) -> bool:
        """The student answers every seed each iteration (random, static and difficulty read
        nothing from the student and skip that compute)."""
        return bool(self.student_columns or self.rater_columns)

    @property
    def needs_judge(self) -> bool:
        """An LLM judge rates answers (judge, lion)."""
        return any(column(name).judged for name in self.rater_columns)

    @property
    def needs_reward(self) -> bool:
        return any(column(name).producer == "reward" for name in self.rater_columns)


def plan(config: TrialConfig) -> TrialPlan:
    """The trial's plan; fails before any model loads when the config cannot give what the
    strategy needs.

    Raises:
        ConfigError: an unknown strategy, scorer or selector; a judge the config cannot give
            (the oracle cannot judge) or whose prompt file is bad; a missing or malformed
            reward model.
    """
    strategy = build_strategy(config)
    producers = {name: column(name).producer for name in strategy.scorer.columns}
    result = TrialPlan(
        config=config,
        strategy=strategy,
        student_columns=tuple(c for c, p in producers.items() if p == "student"),
        rater_columns=tuple(c for c, p in producers.items() if column(c).rated),
        schedule=Schedule.of(config, strategy.upfront),
    )
    _check_raters(result)
    check_backend(config, result.student_columns)
    return result


def build_strategy(config: TrialConfig) -> Strategy:
    """The strategy a config names: a preset, a scorer and selector pairing, or a bandit
    over arms (``scorer: bandit``).

    Raises:
        ConfigError: neither a name nor both parts; an unknown name or parameter; a bandit arm
            that is neither a strategy nor a scorer.
    """
    spec = config.strategy
    if spec.bandit:
        rule = Exp3S(spec.bandit_gamma, spec.bandit_eta, spec.bandit_alpha, spec.bandit_window)
        return compose_bandit(
            spec.arms,
            rule,
            name=spec.name or "bandit",
            selector=spec.selector or "top_k",  # the scorer arms' (strategy.arms' description)
            selector_params=spec.selector_params,
        )
    if spec.scorer is not None and spec.selector is not None:
        # A pairing without a name of its own is named after its parts, not the default "loss".
        name = spec.name if "name" in spec.model_fields_set else None
        return compose(spec.scorer, spec.selector, name=name, selector_params=spec.selector_params)
    if spec.name is None:
        raise ConfigError("strategy: give a name or a scorer and a selector")
    return make_strategy(spec.name)


def _check_raters(trial: TrialPlan) -> None:
    config, name = trial.config, trial.strategy.name
    if trial.needs_judge:
        if config.judge.llm is None and not teacher_kind(config.teacher.backend).llm:
            raise ConfigError(
                f"strategy {name!r} needs an LLM judge: set judge.llm (backend, model), or use "
                f"an LLM teacher (the {config.teacher.backend} teacher cannot judge)"
            )
        if config.judge.prompt is not None:
            read_template(config.judge.prompt, PLACEHOLDERS)
    if trial.needs_reward:
        if config.reward.model is None:
            raise ConfigError(
                f"strategy {name!r} needs reward.model (a hub id or folder of a sequence "
                "classifier; tiny: for a random one in tests)"
            )
        try:
            check_model_spec(config.reward.model)
        except ConfigError as error:
            raise ConfigError(f"reward.model: {error}") from None
