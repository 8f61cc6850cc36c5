"""The analyses against numbers worked out by hand (tests/report/example.py's experiment)."""

import math

import numpy as np
import pandas as pd
import pytest

from ray_asd.report import analyses
from tests.report import example

INF = float("inf")


@pytest.mark.parametrize(
    ("x", "y", "target", "expected"),
    [
        ([0, 4, 8], [0.1, 0.3, 0.5], 0.2, 2.0),  # inside the first segment
        ([0, 4, 8], [0.1, 0.3, 0.5], 0.3, 4.0),  # exactly on a point
        ([0, 4, 8], [0.3, 0.4, 0.5], 0.2, 0.0),  # at or below the start: nothing needed
        ([0, 4, 8], [0.3, 0.4, 0.5], 0.3, 0.0),
        ([0, 4, 8], [0.1, 0.3, 0.5], 0.6, INF),  # never reached
        ([0, 4, 8], [0.1, 0.3, 0.3], 0.3, 4.0),  # a plateau: its first point
        # Down then up: the first crossing, 0 + (0.3 - 0.1) / 0.3 * 4, then 8 + 0.25 / 0.3 * 4.
        ([0, 4, 8, 12], [0.1, 0.4, 0.2, 0.5], 0.3, 8 / 3),
        ([0, 4, 8, 12], [0.1, 0.4, 0.2, 0.5], 0.45, 8 + 10 / 3),
        ([0, 4], [0.1, 0.3], float("nan"), float("nan")),
        ([], [], 0.3, float("nan")),
    ],
)
def test_first_reach(x: list[float], y: list[float], target: float, expected: float) -> None:
    found = analyses.first_reach(np.array(x, float), np.array(y, float), target)
    if math.isnan(expected):
        assert math.isnan(found)
    else:
        assert found == pytest.approx(expected)


def test_mean_curves_average_the_seeds_and_count_them() -> None:
    mean = analyses.mean_curves(example.curves()).set_index(["strategy", "step"])
    assert mean.loc[("random", 0), "accuracy"] == pytest.approx(0.35)
    assert mean.loc[("random", 0), "accuracy_std"] == pytest.approx(np.std([0.3, 0.4], ddof=1))
    assert mean.loc[("random", 0), "teacher_tokens"] == 800
    # loss reached t = 1 with one seed only: its mean is that seed's, with no spread.
    assert mean.loc[("loss", 1), "accuracy"] == pytest.approx(0.6)
    assert mean.loc[("loss", 1), "seeds"] == 1
    assert math.isnan(mean.loc[("loss", 1), "accuracy_std"])


def test_a_nan_accuracy_is_left_out_of_the_mean() -> None:
    curves = example.curves()
    curves.loc[(curves["strategy"] == "random") & (curves["seed"] == "1"), "accuracy"] = np.nan
    mean = analyses.mean_curves(curves).set_index(["strategy", "step"])
    assert mean.loc[("random", 1), "accuracy"] == pytest.approx(0.5)
    assert mean.loc[("random", 1), "seeds"] == 1


def test_efficiency_against_random() -> None:
    # random's seed-mean curve: items (0, 4, 8, 12), accuracy (0.1, 0.2, 0.35, 0.45).
    table = analyses.efficiency(example.curves(), "random").set_index(["strategy", "step"])
    loss0, loss1 = table.loc[("loss", 0)], table.loc[("loss", 1)]
    # loss t=0: mean 0.45 at 8 items; random gets to 0.45 at 12 -> 1.5x.
    assert loss0["baseline_x"] == pytest.approx(12.0)
    assert loss0["ratio"] == pytest.approx(1.5)
    # loss t=1: 0.6, above random's best (0.45): never; random's largest budget 12 / 12.
    assert not loss1["reached"] and loss1["ratio"] == INF and loss1["bound"] == pytest.approx(1.0)
    # static t=0: mean 0.25 at 8; random: 4 + (0.25 - 0.2) / 0.15 * 4 = 5.33 -> 0.667x.
    assert table.loc[("static", 0), "baseline_x"] == pytest.approx(16 / 3)
    assert table.loc[("static", 0), "ratio"] == pytest.approx(2 / 3)
    assert table.loc[("static", 1), "ratio"] == INF  # 0.5 > 0.45
    assert "random" not in table.index.get_level_values("strategy")


def test_efficiency_per_seed_spread() -> None:
    # Per seed, against random's trial of the same seed:
    # seed 0 random (0.1, 0.2, 0.3, 0.5): loss t0 0.4 -> 8 + 0.5 * 4 = 10 -> 1.25x; loss t1
    #   0.6 never; static t0 0.3 -> 8 -> 1.0x; static t1 0.4 -> 10 / 12.
    # seed 1 random (0.1, 0.2, 0.4, 0.4): loss t0 0.5 never; static t0 0.2 -> 4 / 8; static t1
    #   0.6 never; loss t1 not logged (the trial failed).
    table = analyses.efficiency(example.curves(), "random").set_index(["strategy", "step"])
    assert table.loc[("loss", 0), ["seed_min", "seed_median", "seed_max"]].tolist() == [
        pytest.approx(1.25),
        INF,
        INF,
    ]
    assert table.loc[("loss", 0), "seed_pairs"] == 2
    assert table.loc[("loss", 1), ["seed_median", "seed_pairs"]].tolist() == [INF, 1]
    assert table.loc[("static", 0), "seed_median"] == pytest.approx(0.75)  # (1.0 + 0.5) / 2
    assert table.loc[("static", 1), "seed_min"] == pytest.approx(10 / 12)


def test_efficiency_against_static_and_on_teacher_tokens() -> None:
    # static's mean curve: (0.1, 0.2, 0.25, 0.5) at (0, 4, 8, 12) items.
    table = analyses.efficiency(example.curves(), "static").set_index(["strategy", "step"])
    # random t=0: 0.35 -> 8 + (0.35 - 0.25) / 0.25 * 4 = 9.6 items -> 1.2x.
    assert table.loc[("random", 0), "ratio"] == pytest.approx(1.2)
    # Teacher tokens are 100 per item here: the same ratios, in tokens.
    tokens = analyses.efficiency(example.curves(), "static", "teacher_tokens")
    tokens = tokens.set_index(["strategy", "step"])
    assert tokens.loc[("random", 0), "baseline_x"] == pytest.approx(960.0)
    assert tokens.loc[("random", 0), "ratio"] == pytest.approx(1.2)


def test_efficiency_without_the_baseline_is_empty() -> None:
    curves = example.curves()
    assert analyses.efficiency(curves[curves["strategy"] != "random"], "random").empty


def test_efficiency_with_a_single_seed() -> None:
    curves = example.curves()
    one = analyses.efficiency(curves[curves["seed"] == "0"], "random").set_index(
        ["strategy", "step"]
    )
    # seed 0 alone: the per-seed numbers above, and the mean curve is that seed's.
    assert one.loc[("loss", 0), "ratio"] == pytest.approx(1.25)
    assert one.loc[("loss", 0), "seed_median"] == pytest.approx(1.25)
    assert one.loc[("static", 1), "ratio"] == pytest.approx(10 / 12)


def test_win_rates_count_ties_half_and_skip_missing_cells() -> None:
    # Cells (seed 0: t0, t1; seed 1: t0, t1): random .3 .5 .4 .4 / static .3 .4 .2 .6 /
    # loss .4 .6 .5 (t1 of seed 1 missing).
    matrix, overall = analyses.win_rates(example.curves(), ["random", "static", "loss"])
    assert matrix.loc["random", "static"] == pytest.approx(2.5 / 4)  # tie, win, win, loss
    assert matrix.loc["static", "random"] == pytest.approx(1.5 / 4)
    assert matrix.loc["random", "loss"] == 0.0  # over the 3 cells both have
    assert matrix.loc["loss", "static"] == 1.0
    assert np.isnan(matrix.loc["loss", "loss"])
    overall = overall.set_index("strategy")
    assert overall.loc["random", "win_rate"] == pytest.approx(2.5 / 7)
    assert overall.loc["static", "win_rate"] == pytest.approx(1.5 / 7)
    assert overall.loc["loss", "win_rate"] == pytest.approx(1.0)
    assert overall["cells"].tolist() == [7, 7, 6]
    assert overall["rank"].tolist() == [2, 3, 1]


def test_equal_win_rates_share_a_rank() -> None:
    curves = pd.DataFrame(
        {
            "task": "arith",
            "student": "tiny",
            "seed": "0",
            "step": [0, 0, 0, 1, 1, 1],
            "strategy": ["a", "b", "c"] * 2,
            "accuracy": [0.5, 0.5, 0.1, 0.5, 0.5, 0.9],
            "n_synthetic": 1.0,
            "teacher_tokens": 1.0,
        }
    )
    matrix, overall = analyses.win_rates(curves)
    assert matrix.loc["a", "b"] == 0.5  # two ties
    # a: tie, tie vs b, win, loss vs c -> 2 of 4; b the same; c: 2 of 4 as well.
    assert overall["win_rate"].tolist() == [0.5, 0.5, 0.5]
    assert overall["rank"].tolist() == [1, 1, 1]


def test_fidelity_spearman_by_hand() -> None:
    per_item, per_iteration, medians = analyses.fidelity(example.items())
    assert per_item["strategy"].tolist() == ["loss"]  # random and static carry no scores
    # Seeds' ranks 1..10; items' ranks (3, 2, 4, 5, 6, 7, 1, 8, 9, 10): sum d^2 = 44,
    # rho = 1 - 6 * 44 / (10 * 99) = 11/15.
    assert per_item["rho"].iloc[0] == pytest.approx(11 / 15)
    assert per_item["n"].iloc[0] == 10
    by_t = per_iteration.set_index("iteration")
    assert by_t.loc[0, "rho"] == pytest.approx(27 / 28)  # sum d^2 = 2 over 7 items
    # t = 1: 3 items, rho = -0.5; t = rho sqrt(1 / (1 - rho^2)) = -1/sqrt(3) with 1 degree
    # of freedom (Cauchy): p = 2 (1/2 - atan(1/sqrt(3)) / pi) = 2/3.
    assert by_t.loc[1, "rho"] == pytest.approx(-0.5)
    assert by_t.loc[1, "p"] == pytest.approx(2 / 3)
    # Dataset medians per (seed, iteration): (2.5, 2.5), (6, 6), (20, 25): rho 1.
    points = medians.set_index(["seed", "iteration"])
    assert points.loc[("0", 0)].tolist() == ["arith", "tiny", "loss", 2.5, 2.5]
    assert points.loc[("1", 0), "item_median"] == 25.0
    assert medians.attrs["rho"][("arith", "tiny", "loss")]["rho"] == pytest.approx(1.0)


def test_spearman_p_value_by_hand_and_degenerate_inputs() -> None:
    # 4 pairs, rho 0.8: t = 0.8 sqrt(2 / 0.36) and with 2 degrees of freedom
    # F(t) = 1/2 + t / (2 sqrt(2 + t^2)) = 0.9: p = 0.2.
    rho, p = analyses.spearman(np.array([1, 2, 3, 4.0]), np.array([1.5, 1.0, 3.5, 5.0]))
    assert (rho, p) == (pytest.approx(0.8), pytest.approx(0.2))
    assert all(math.isnan(v) for v in analyses.spearman(np.array([1, 2.0]), np.array([2, 1.0])))
    constant = analyses.spearman(np.array([1, 2, 3.0]), np.array([5, 5, 5.0]))
    assert all(math.isnan(v) for v in constant)


def test_non_finite_scores_are_left_out() -> None:
    items = example.items()
    items.loc[items["score"] == 28.0, "score"] = np.inf
    items.loc[items["score"] == 25.0, "score"] = np.nan
    per_item, _, _ = analyses.fidelity(items)
    assert per_item["n"].iloc[0] == 8


def test_ordering_by_score_vs_shuffled() -> None:
    curve = analyses.ordering(example.items())
    # Highest score first: 28 F, 25 F, 12 T, 7 F, 6 T, 5 T, 3.5 T, 1.5 T, 1.0 T, 0.5 T.
    expected = [0, 0, 1 / 3, 1 / 4, 2 / 5, 3 / 6, 4 / 7, 5 / 8, 6 / 9, 7 / 10]
    assert curve["ordered"].tolist() == pytest.approx(expected)
    assert curve["shuffled"].tolist() == pytest.approx([0.7] * 10)
    # 2 of 10 items at random with 7 right: P(0 right) = C(3,2)/C(10,2) = 3/45 > 0.05 and
    # P(<= 1 right) = 24/45 < 0.95, so the central 90% is [0, 1].
    second = curve.iloc[1]
    assert (second["shuffled_low"], second["shuffled_high"]) == (0.0, 1.0)
    assert curve.iloc[-1][["shuffled_low", "shuffled_high"]].tolist() == [0.7, 0.7]
    summary = analyses.ordering_summary(curve).iloc[0]
    assert summary["items"] == 10
    assert summary["first_share_accuracy"] == pytest.approx(1 / 3)  # the first ceil(2.5) = 3


def test_ordering_breaks_score_ties_by_item_id() -> None:
    items = pd.DataFrame(
        {
            "task": "arith",
            "student": "tiny",
            "strategy": "loss",
            "id": ["b", "a", "c"],
            "seed_score": [1.0, 2.0, 3.0],
            "score": [1.0, 1.0, 0.5],
            "student_correct": [True, False, True],
        }
    )
    assert analyses.ordering(items)["ordered"].tolist() == pytest.approx([0, 0.5, 2 / 3])


def test_each_task_and_student_is_its_own_panel() -> None:
    # A second student whose random trials are better: loss at t=0 (0.45) is matched by its
    # random mean curve (0.1, 0.2, 0.45, ...) at 8 items exactly -> 1.0x, while the first
    # student's panel keeps 1.5x.
    first = example.curves()
    second = first.assign(student="other")
    second.loc[(second["strategy"] == "random") & (second["step"] == 0), "accuracy"] = 0.45
    table = analyses.efficiency(pd.concat([first, second]), "random")
    table = table.set_index(["student", "strategy", "step"])
    assert table.loc[("tiny", "loss", 0), "ratio"] == pytest.approx(1.5)
    assert table.loc[("other", "loss", 0), "ratio"] == pytest.approx(1.0)
    _, overall = analyses.win_rates(pd.concat([first, second]))
    assert overall.set_index("strategy")["cells"].tolist() == [14, 14, 12]
