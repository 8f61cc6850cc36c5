"""A learning-progress bandit over arms (strategies or scorers): each iteration it splits the m
picks among its arms, and after training it is paid in the learning progress each arm's items
bought. Exp3.S (Auer et al. 2002), as Graves et al. 2017 use it to choose among tasks:

- policy: ``pi_i = (1 - gamma) softmax(w)_i + gamma / N``, so every arm keeps at least
  gamma / N of the picks in expectation (uniform exploration);
- split: the m picks are m draws from pi (a multinomial: ``n_i`` picks for arm i);
- reward: an arm's progress ``v_i`` is divided by the mean magnitude of the iteration's
  observed progress values, then rescaled to [-1, 1] by the 20th and 80th percentiles
  ``q_lo``, ``q_hi`` of the recent such values of every arm (Graves' rescaling: -1 under
  ``q_lo``, 1 over ``q_hi``, linear between), so the step does not depend on the units of
  progress. Two departures from Graves: every arm is measured on the same training step, and
  all their drops shrink together as the student learns (on the fake student, 4.5 at t = 0
  to 0.04 at t = 3: raw values put every later reward at -1), hence the division; and the
  history is a window of the newest values, not a reservoir sample, so it draws no
  randomness;
- update: the importance-weighted reward ``r~_i = (n_i / m) r_i / pi_i`` (the mean over the m
  plays of Exp3's estimator, unbiased as ``E[n_i / m] = pi_i``), then Exp3.S's
  ``w_i <- log((1 - alpha) e^(w_i + eta r~_i) + alpha / (N - 1) sum_(j != i) e^(w_j + eta r~_j))``:
  alpha passes weight between the arms, so an arm that fell behind comes back when which arm
  teaches most changes (the problem is non-stationary: the student moves).

Pure numpy: the loop hands in the trial's checkpointed generator and checkpoints
:class:`BanditState`, so a resumed trial makes the same choices as an uninterrupted one.

References: Graves, Bellemare, Menick, Munos, Kavukcuoglu 2017, "Automated Curriculum Learning
for Neural Networks" (sections 2 and 3); Auer, Cesa-Bianchi, Freund, Schapire 2002, "The
Nonstochastic Multiarmed Bandit Problem" (Exp3.S).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

QUANTILES = (0.2, 0.8)  # Graves et al.'s q_lo and q_hi: the 20th and 80th percentiles


@dataclass(frozen=True)
class BanditState:
    """What the bandit has learned, checkpointed with the trial.

    Attributes:
        weights: one log-weight per arm (the largest kept at 0: the policy is shift-invariant).
        history: the newest relative progress values of every arm (each divided by its
            iteration's mean magnitude), oldest first, for the rescaling.
        choices: per iteration, the arm of each pick, in pick order (parallel to the trial's
            picks).
    """

    weights: tuple[float, ...]
    history: tuple[float, ...] = ()
    choices: tuple[tuple[int, ...], ...] = ()

    @classmethod
    def start(cls, arms: int) -> BanditState:
        """Equal weights: the first iteration splits uniformly (up to the draw)."""
        return cls(weights=(0.0,) * arms)

    def to_json(self) -> dict[str, Any]:
        return {
            "weights": list(self.weights),
            "history": list(self.history),
            "choices": [list(c) for c in self.choices],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BanditState:
        return cls(
            tuple(map(float, data["weights"])),
            tuple(map(float, data["history"])),
            tuple(tuple(map(int, c)) for c in data["choices"]),
        )


@dataclass(frozen=True)
class Exp3S:
    """Exp3.S's parameters (the module docstring gives the rule).

    Attributes:
        gamma: the share of the policy spread uniformly over the arms, in (0, 1].
        eta: the step of a log-weight per unit of importance-weighted reward, > 0.
        alpha: the weight shared between arms per update, in [0, 1).
        window: the relative progress values the rescaling's percentiles are taken over, >= 2.
    """

    gamma: float
    eta: float
    alpha: float
    window: int

    def __post_init__(self) -> None:
        if not 0 < self.gamma <= 1:
            raise ValueError(f"gamma must be in (0, 1], got {self.gamma}")
        if not self.eta > 0:
            raise ValueError(f"eta must be > 0, got {self.eta}")
        if not 0 <= self.alpha < 1:
            raise ValueError(f"alpha must be in [0, 1), got {self.alpha}")
        if self.window < 2:
            raise ValueError(f"window must be >= 2, got {self.window}")

    def policy(self, weights: tuple[float, ...]) -> np.ndarray:
        """The probability of each arm: softmax of the weights mixed with uniform."""
        w = np.asarray(weights, dtype=float)
        soft = np.exp(w - w.max())
        return (1 - self.gamma) * soft / soft.sum() + self.gamma / len(w)

    def split(self, weights: tuple[float, ...], m: int, rng: np.random.Generator) -> np.ndarray:
        """How many of the m picks each arm makes: m draws from the policy."""
        return rng.multinomial(m, self.policy(weights))

    def rescale(
        self, progress: np.ndarray, history: tuple[float, ...]
    ) -> tuple[np.ndarray, tuple[float, ...]]:
        """(rewards in [-1, 1], the history with this iteration's relative values added).

        ``progress`` holds NaN for an arm not observed this iteration (no picks, or none the
        teacher wrote from); its reward is NaN and it adds nothing to the history. An
        iteration whose observed progress is all 0 counts as 0 each. Where every recent value
        is equal (``q_lo == q_hi``) a reward is the sign of its difference.
        """
        seen = np.isfinite(progress)
        if not seen.any():
            return np.full(len(progress), np.nan), history
        scale = np.abs(progress[seen]).mean()
        relative = progress / scale if scale > 0 else np.where(seen, 0.0, np.nan)
        window = (*history, *relative[seen].tolist())[-self.window :]
        lo, hi = np.quantile(window, QUANTILES)
        if hi > lo:
            rewards = np.clip(2 * (relative - lo) / (hi - lo) - 1, -1.0, 1.0)
        else:
            rewards = np.sign(relative - lo)
        return rewards, tuple(window)

    def update(
        self, state: BanditState, choices: np.ndarray, progress: np.ndarray
    ) -> tuple[BanditState, np.ndarray]:
        """Pays the arms in an iteration's progress.

        Args:
            state: the state the iteration's picks were split by.
            choices: the arm of each pick.
            progress: each arm's raw learning progress; NaN where not observed.

        Returns:
            (the new state, each arm's reward in [-1, 1]; NaN where not observed).
        """
        arms = len(state.weights)
        counts = np.bincount(choices, minlength=arms)
        rewards, history = self.rescale(progress, state.history)
        paid = np.where(np.isfinite(rewards), rewards, 0.0)
        plays = max(int(counts.sum()), 1)
        estimate = counts / plays * paid / self.policy(state.weights)
        raised = np.asarray(state.weights) + self.eta * estimate
        top = raised.max()
        exp = np.exp(raised - top)
        shared = (1 - self.alpha) * exp + self.alpha / (arms - 1) * (exp.sum() - exp)
        weights = top + np.log(shared)
        return replace(
            state,
            weights=tuple((weights - weights.max()).tolist()),
            history=history,
            choices=(*state.choices, tuple(int(c) for c in choices)),
        ), rewards
