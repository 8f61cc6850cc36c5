"""A trial's budget over its iterations: how many seeds each iteration picks, when the teacher
budget stops the trial, and static's up-front rule (DESIGN section 2). Pure: the loop asks,
this answers.
"""

from __future__ import annotations

from dataclasses import dataclass

from ray_asd.config import TrialConfig
from ray_asd.records import Item, Spend, spend_of


@dataclass(frozen=True)
class Schedule:
    """The sample and compute budget of one trial.

    Attributes:
        per_iteration: m, the seeds picked (and items written) per iteration.
        iterations: T.
        warmup: items written from random seeds and trained on before iteration 0.
        upfront: pick and generate the whole budget (m x T) at t = 0 with the base model,
            then train on its first m x (t + 1) items in pick order at step t (``static``).
        teacher_tokens: the trial's teacher-token cap (generation and rating calls), or None.
    """

    per_iteration: int
    iterations: int
    warmup: int
    upfront: bool
    teacher_tokens: int | None

    @classmethod
    def of(cls, config: TrialConfig, upfront: bool) -> Schedule:
        budget = config.budget
        return cls(
            budget.per_iteration, budget.iterations, budget.warmup, upfront, budget.teacher_tokens
        )

    def picks(self, t: int) -> int:
        """Seeds to pick at iteration t (static: the whole budget once, at t = 0)."""
        if self.upfront:
            return self.per_iteration * self.iterations if t == 0 else 0
        return self.per_iteration

    def spent(self, tokens: int) -> bool:
        """The teacher budget is used up: no generation attempt begins."""
        return self.teacher_tokens is not None and tokens >= self.teacher_tokens

    def stops_before(self, t: int, tokens: int) -> bool:
        """The trial ends before iteration t: the budget is spent (static made every teacher
        call at t = 0; its cap limits the prefix it trains on instead)."""
        return not (self.upfront and t) and self.spent(tokens)

    def training_set(
        self, items: list[Item], first_picks: list[str], new: list[Item], t: int
    ) -> tuple[list[Item], list[Item], list[Item]]:
        """(accepted items to train on at iteration t, every item whose teacher calls they are
        charged, the items this iteration adds to that charge).

        Everyone but static trains on every accepted item, charged every call. Static trains
        on a prefix of its budget: the first m * (t + 1) items in *pick* order (acceptance
        order would move seeds whose first attempt was rejected to the end), charged the calls
        behind that prefix, rejected attempts included, and no more than the token cap with
        the warm-up's.
        """
        if not self.upfront:
            return [item for item in items if item.accepted], items, new
        m = self.per_iteration
        accepted, charged = self.static_prefix(items, first_picks, m * (t + 1))
        before = {item.id for item in self.static_prefix(items, first_picks, m * t)[1]}
        return accepted, charged, [item for item in charged if item.id not in before]

    def static_prefix(
        self, items: list[Item], picks: list[str], n: int
    ) -> tuple[list[Item], list[Item]]:
        """The warm-up plus the first ``n`` accepted items of an upfront budget in pick order,
        stopping before a seed whose calls would take the charge over the token cap:
        (accepted items, every item charged)."""
        charged = [item for item in items if item.iteration < 0]
        by_seed: dict[str, list[Item]] = {}
        for item in items:
            if item.iteration >= 0:
                by_seed.setdefault(item.seed_id, []).append(item)
        taken = 0
        for seed_id in picks:
            calls = by_seed.get(seed_id, [])
            right = sum(item.accepted for item in calls)
            cost: Spend = spend_of(charged) + spend_of(calls)
            if taken + right > n or (
                self.teacher_tokens is not None and cost.tokens > self.teacher_tokens
            ):
                break
            charged += calls
            taken += right
        return [item for item in charged if item.accepted], charged

    def describe(self, pool: int, test: int) -> str:
        """The derived quantities, printed when a trial starts."""
        cap = "none" if self.teacher_tokens is None else f"{self.teacher_tokens} tokens"
        rule = " (static: all picks at t=0)" if self.upfront else ""
        return (
            f"[trial] {pool} seeds, {test} test items; T={self.iterations} x "
            f"m={self.per_iteration} = {self.iterations * self.per_iteration} items{rule}; "
            f"warm-up {self.warmup}; teacher cap {cap}"
        )
