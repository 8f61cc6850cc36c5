"""The item analyses (score fidelity, ordering) against numbers worked out by hand."""

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ray_asd.report import items
from tests.report import example


def test_fidelity_per_iteration_and_seed_by_hand() -> None:
    summary, groups, medians = items.fidelity(example.items())
    assert summary["strategy"].tolist() == ["loss"]  # random and static carry no scores
    # Per (iteration, seed), one student each:
    # (t0, seed 0): seeds 1..4, items (1.5, 1, 3.5, 5): ranks (2, 1, 3, 4), sum d^2 = 2,
    #   rho = 1 - 6 * 2 / (4 * 15) = 0.8;
    # (t1, seed 0): seeds 5, 6, 7, items (6, 7, 0.5): ranks (2, 3, 1), sum d^2 = 6, rho = -0.5;
    # (t0, seed 1): seeds 10, 20, 30, items (12, 25, 28): rho = 1.
    by_group = groups.set_index(["iteration", "seed"])["rho"]
    assert by_group.to_dict() == {
        (0, "0"): pytest.approx(0.8),
        (1, "0"): pytest.approx(-0.5),
        (0, "1"): pytest.approx(1.0),
    }
    # t = 1's p: t = rho sqrt(1 / (1 - rho^2)) = -1/sqrt(3) with 1 degree of freedom
    # (Cauchy): p = 2 (1/2 - atan(1/sqrt(3)) / pi) = 2/3.
    assert groups.set_index(["iteration", "seed"]).loc[(1, "0"), "p"] == pytest.approx(2 / 3)
    row = summary.iloc[0]
    assert [row["rho_median"], row["rho_min"], row["rho_max"]] == pytest.approx([0.8, -0.5, 1])
    assert row["groups"] == 3 and row["items"] == 10
    # Pooled over all 10 items (mixing students): seeds' ranks 1..10, items' ranks
    # (3, 2, 4, 5, 6, 7, 1, 8, 9, 10): sum d^2 = 44, rho = 1 - 6 * 44 / (10 * 99) = 11/15.
    assert row["pooled_rho"] == pytest.approx(11 / 15)
    # Dataset medians per (seed, iteration): (2.5, 2.5), (6, 6), (20, 25): 3 < 5 points.
    points = medians.set_index(["seed", "iteration"])
    assert points.loc[("0", 0), ["seed_median", "item_median"]].tolist() == [2.5, 2.5]
    assert row["points"] == 3 and math.isnan(row["dataset_rho"]) and math.isnan(row["null_p"])


def test_within_iteration_null_by_hand() -> None:
    # Two iterations of three seeds whose medians all rise with the iteration and keep their
    # order: rho = 1. Shuffling the links within each iteration gives 3! * 3! = 36 equally
    # likely pairings (scipy enumerates them all); only the identity reaches rho = 1, and none
    # goes below the common trend's floor, so p = 2 * min(1/36, 36/36) = 1/18.
    seed = np.array([1.0, 2, 3, 4, 5, 6])
    rho, p = items.within_iteration_null(seed, seed + 0.5, np.array([0, 0, 0, 1, 1, 1]))
    assert rho == pytest.approx(1.0)
    assert p == pytest.approx(1 / 18)


def test_within_iteration_null_matches_exact_enumeration_with_unequal_iterations() -> None:
    # Iteration 0 with three seeds, iteration 1 with two (a failed trial): 3! * 2! = 12
    # pairings, enumerated here by hand with scipy's spearmanr and its two-sided rule.
    seed = np.array([1.0, 2, 3, 4, 5])
    item = np.array([2.0, 1, 3, 5, 4])
    iteration = np.array([0, 0, 0, 1, 1])
    observed = stats.spearmanr(seed, item).statistic  # 0.8
    null = [
        stats.spearmanr(seed, np.concatenate([item[:3][list(a)], item[3:][list(b)]])).statistic
        for a in itertools.permutations(range(3))
        for b in itertools.permutations(range(2))
    ]
    tolerance = 1e-12
    greater = np.mean(np.array(null) >= observed - tolerance)
    less = np.mean(np.array(null) <= observed + tolerance)
    rho, p = items.within_iteration_null(seed, item, iteration, n_resamples=9999, rng_seed=0)
    assert rho == pytest.approx(observed) == pytest.approx(0.8)
    assert p == pytest.approx(min(1.0, 2 * min(greater, less)))
    # By hand: rho = 1 - sum d^2 / 20. Iteration 0's pairings give sum d^2 0 (identity), 2
    # (two adjacent swaps), 6 (two 3-cycles) or 8; iteration 1's 0 or 2; observed 2 + 2.
    # rho >= 0.8 (sum <= 4): 0 + {0, 2} and 2 + {0, 2} twice: 6 of 12; rho <= 0.8: 8 of 12.
    # p = 2 * min(6/12, 8/12) = 1: the within-iteration order says nothing here.
    assert (greater, less) == (pytest.approx(6 / 12), pytest.approx(8 / 12))
    assert p == pytest.approx(1.0)


def test_fidelity_dataset_level_from_five_points() -> None:
    # Five (seed, iteration) points: iteration 0 seeds 0, 1, 2 and iteration 1 seeds 0, 1;
    # each point is one item whose score equals its seed's score: rho 1 per point set.
    rows = [
        {"seed": str(s), "iteration": t, "seed_score": v, "score": v}
        for (s, t), v in zip(
            [(0, 0), (1, 0), (2, 0), (0, 1), (1, 1)], [1.0, 2, 3, 4, 5], strict=True
        )
    ]
    frame = pd.DataFrame(rows).assign(task="arith", student="tiny", strategy="loss")
    summary, _, _ = items.fidelity(frame, n_resamples=999, rng_seed=0)
    row = summary.iloc[0]
    # 12 pairings; only the identity has rho 1: p = 2 * 1/12.
    assert row["points"] == 5 and row["dataset_rho"] == pytest.approx(1.0)
    assert row["null_p"] == pytest.approx(2 / 12)
    assert row["groups"] == 0  # one item per (iteration, seed): no per-group rho


def test_non_finite_scores_are_left_out() -> None:
    frame = example.items()
    frame.loc[frame["score"] == 28.0, "score"] = np.inf
    frame.loc[frame["score"] == 25.0, "score"] = np.nan
    summary, _, _ = items.fidelity(frame)
    assert summary["items"].iloc[0] == 8


def test_spearman_p_value_by_hand_and_degenerate_inputs() -> None:
    # 4 pairs, rho 0.8: t = 0.8 sqrt(2 / 0.36) and with 2 degrees of freedom
    # F(t) = 1/2 + t / (2 sqrt(2 + t^2)) = 0.9: p = 0.2.
    rho, p = items.spearman(np.array([1, 2, 3, 4.0]), np.array([1.5, 1.0, 3.5, 5.0]))
    assert (rho, p) == (pytest.approx(0.8), pytest.approx(0.2))
    assert all(math.isnan(v) for v in items.spearman(np.array([1, 2.0]), np.array([2, 1.0])))
    constant = items.spearman(np.array([1, 2, 3.0]), np.array([5, 5, 5.0]))
    assert all(math.isnan(v) for v in constant)


def _judged(
    scores: list[float], correct: list[int], iteration: list[int] | None = None
) -> pd.DataFrame:
    n = len(scores)
    return pd.DataFrame(
        {
            "task": "arith",
            "student": "tiny",
            "strategy": "loss",
            "seed": "0",
            "iteration": iteration or [0] * n,
            "id": [f"i{k}" for k in range(n)],
            "seed_score_first": scores,
            "correct_first": [bool(c) for c in correct],
            "seed_score_final": scores,
            "correct_final": [bool(c) for c in correct],
        }
    )


def test_ordering_tie_blocks_count_as_their_expectation() -> None:
    # Seed scores (2, 2, 1, 1), correctness (1, 0, 1, 1): the block of 2s gives 0.5 at each
    # of its places, the block of 1s 1 and 1: cumulative 0.5/1, 1/2, 2/3, 3/4, whatever the
    # ids or the input order.
    curve = items.ordering(_judged([2, 2, 1, 1], [1, 0, 1, 1]))
    pooled = curve[(curve["judge"] == "first") & (curve["iteration"] == items.POOLED)]
    assert pooled["ordered"].tolist() == pytest.approx([0.5, 0.5, 2 / 3, 0.75])
    swapped = items.ordering(_judged([2, 2, 1, 1], [0, 1, 1, 1]))
    assert swapped["ordered"].tolist() == pytest.approx(curve["ordered"].tolist())


def test_a_scorer_that_ties_everything_is_the_random_order_mean() -> None:
    curve = items.ordering(_judged([3, 3, 3, 3, 3], [1, 0, 0, 1, 1]))
    assert curve["ordered"].tolist() == pytest.approx(curve["shuffled"].tolist())
    assert curve["shuffled"].tolist() == pytest.approx([0.6] * 20)  # t0 and pooled, first and final


def test_ordering_by_seed_score_first_and_final_student() -> None:
    curve = items.ordering(example.items())
    key = ["judge", "iteration"]
    by = {k: g for k, g in curve.groupby(key, sort=False)}
    # Final-iteration student, all iterations (seed 0 only: seed 1's trial did not finish):
    # 3.0 F | 2.0 T, F -> 0.5, 0.5 | 1.0 T, F -> 0.5, 0.5 | 0.5 T, T: sums 0, .5, 1, 1.5, 2,
    # 3, 4 over k.
    assert by[("final", items.POOLED)]["ordered"].tolist() == pytest.approx(
        [0, 0.25, 1 / 3, 0.375, 0.4, 0.5, 4 / 7]
    )
    # First-iteration student, all 10 items: 30 F, 20 F, 10 T, 7 F, 6 F, 5 T, (3 F, 3 F),
    # 2 F, 1 T.
    assert by[("first", items.POOLED)]["ordered"].tolist() == pytest.approx(
        [0, 0, 1 / 3, 1 / 4, 1 / 5, 2 / 6, 2 / 7, 2 / 8, 2 / 9, 3 / 10]
    )
    # Per iteration, the first student at t = 1: 7 F, 6 F, 5 T.
    assert by[("first", 1)]["ordered"].tolist() == pytest.approx([0, 0, 1 / 3])
    # The 4 unscored items (random, static) and seed 1's 3 unfinished ones are left out.
    assert curve.attrs["left_out"] == {"first": 4, "final": 7}
    # 2 of 10 at random with 3 right: P(0 right) = C(7,2)/C(10,2) = 21/45 > 0.05 and
    # P(<= 1 right) = 42/45 < 0.95, so the central 90% is [0, 1].
    second = by[("first", items.POOLED)].iloc[1]
    assert (second["shuffled_low"], second["shuffled_high"]) == (0.0, 1.0)
    summary = items.ordering_summary(curve).set_index(key)
    assert summary.loc[("first", items.POOLED), "items"] == 10
    assert summary.loc[("first", items.POOLED), "first_share_accuracy"] == pytest.approx(1 / 3)
    assert summary.loc[("final", 0), "items"] == 4


def test_ordering_without_the_new_fields_is_empty_with_a_count() -> None:
    old = example.items().drop(columns=["seed_score_first", "correct_first"])
    curve = items.ordering(old)
    assert set(curve["judge"]) == {"final"}
    assert curve.attrs["left_out"]["first"] == len(old)
