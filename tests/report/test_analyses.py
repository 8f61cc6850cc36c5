"""The curve analyses against numbers worked out by hand (tests/report/example.py's
experiment): mean curves, efficiency with its intervals, marginal and undetermined cases."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ray_asd.report import analyses, wins
from ray_asd.report.render import efficiency_text
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
    _, overall = wins.win_rates(pd.concat([first, second]))
    assert overall.set_index("strategy")["cells"].tolist() == [14, 14, 12]


def test_efficiency_intervals_enumerate_two_seeds() -> None:
    # With two seeds a resample is seed 0 twice, seed 1 twice (1/4 each) or both (1/2): the
    # bootstrap distribution has three values, each far above 2.5% of the mass, so the 95%
    # percentile interval is exactly [min, max] of them. loss t=0 vs random: seed 0 alone
    # 1.25x (above), seed 1 alone never, both: the mean curves, 1.5x.
    table = analyses.efficiency(example.curves(), "random").set_index(["strategy", "step"])
    loss = table.loc[("loss", 0)]
    assert (loss["ratio_low"], loss["ratio_high"]) == (pytest.approx(1.25), INF)
    assert loss["interval_seeds"] == 2
    # Marginal (W = 4): seed 0 (10 - 4) / (8 - 4) = 1.5, both (12 - 4) / 4 = 2, seed 1 never.
    assert (loss["marginal_low"], loss["marginal_high"]) == (pytest.approx(1.5), INF)
    # static t=0: seed 0 reaches 0.3 at 8 (1.0x), seed 1 0.2 at 4 (0.5x), both 0.667x;
    # marginal (8 - 4) / 4 = 1, (4 - 4) / 4 = 0 and (16/3 - 4) / 4 = 1/3.
    static = table.loc[("static", 0)]
    assert [static["ratio_low"], static["ratio"], static["ratio_high"]] == pytest.approx(
        [0.5, 2 / 3, 1.0]
    )
    assert [static["marginal_low"], static["marginal_high"]] == pytest.approx([0.0, 1.0])
    # loss t=1 has one seed: no interval.
    assert np.isnan(table.loc[("loss", 1), "ratio_low"])
    assert efficiency_text(table.loc[("static", 0)]) == "0.67x [0.50x, 1.00x]"


def test_efficiency_interval_is_scipys_paired_seed_bootstrap() -> None:
    # Three seeds: the interval is what scipy.stats.bootstrap gives when it resamples seeds
    # (each bringing its loss and its random trial) and recomputes the mean-curve ratio.
    curves = pd.concat([example.curves(), _third_seed()], ignore_index=True)
    table = analyses.efficiency(curves, "random", n_resamples=999, rng_seed=3)
    row = table.set_index(["strategy", "step"]).loc[("static", 0)]
    steps = [-2, -1, 0, 1]
    pivot = curves.pivot_table(index=["strategy", "seed"], columns="step", values="accuracy")
    base = pivot.loc["random"][steps].to_numpy()
    static = pivot.loc["static"][0].to_numpy()
    items = np.array([0.0, 4, 8, 12])

    def ratio(index: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.array(
            [
                analyses.first_reach(items, base[i].mean(0), static[i].mean()) / 8
                for i in np.atleast_2d(index.astype(int))
            ]
        )

    result = stats.bootstrap(
        (np.arange(3.0),),
        lambda i: ratio(i)[0],
        n_resamples=999,
        method="percentile",
        rng=np.random.default_rng(3),
        vectorized=False,
    )
    interval = result.confidence_interval
    assert [row["ratio_low"], row["ratio_high"]] == pytest.approx([interval.low, interval.high])
    assert row["ratio_low"] <= row["ratio"] <= row["ratio_high"]


def _third_seed() -> pd.DataFrame:
    """Seed 2 for random (0.1, 0.2, 0.3, 0.45) and static (0.1, 0.2, 0.35, 0.5)."""
    rows = []
    for strategy, values in {
        "random": [0.1, 0.2, 0.3, 0.45],
        "static": [0.1, 0.2, 0.35, 0.5],
    }.items():
        for (step, n), accuracy in zip(example.ITEMS_AT_STEP.items(), values, strict=True):
            rows.append(
                {
                    "task": "arith",
                    "student": "tiny",
                    "strategy": strategy,
                    "seed": "2",
                    "step": step,
                    "n_synthetic": float(n),
                    "teacher_tokens": 100.0 * n,
                    "accuracy": accuracy,
                }
            )
    return pd.DataFrame(rows)


def test_marginal_efficiency_takes_the_warm_up_out() -> None:
    # vs random (mean curve 0.1, 0.2, 0.35, 0.45 at 0, 4, 8, 12; W = 4 items): loss t=0
    # needs 12 of 8 items (1.5x) but 8 of the 4 after the warm-up: 2x. static t=0 needs 16/3:
    # (16/3 - 4) / 4 = 1/3.
    table = analyses.efficiency(example.curves(), "random").set_index(["strategy", "step"])
    assert table["warmup"].unique().tolist() == [4.0]
    assert table.loc[("loss", 0), "marginal"] == pytest.approx(2.0)
    assert table.loc[("static", 0), "marginal"] == pytest.approx(1 / 3)
    assert table.loc[("loss", 1), "marginal"] == INF
    # No warm-up step logged: W = 0 and the marginal is the ratio.
    curves = example.curves()
    bare = analyses.efficiency(curves[curves["step"] != -1], "random")
    assert bare["warmup"].unique().tolist() == [0.0]
    assert bare["marginal"].tolist() == pytest.approx(bare["ratio"].tolist())


def _flat_baseline(random_at_1: list[float], strategy_at_0: float) -> pd.DataFrame:
    """random: 0.1, 0.2, (0.44, 0.46), random_at_1 per seed at 0, 4, 8, 12 items; loss at
    t=0 (8 items) strategy_at_0 on both seeds."""
    rows = []
    for k, seed in enumerate(["0", "1"][: len(random_at_1)]):
        for step, n, accuracy in zip(
            [-2, -1, 0, 1], [0, 4, 8, 12], [0.1, 0.2, [0.44, 0.46][k], random_at_1[k]], strict=True
        ):
            rows.append(
                {
                    "strategy": "random",
                    "seed": seed,
                    "step": step,
                    "n_synthetic": n,
                    "accuracy": accuracy,
                }
            )
        rows.append(
            {
                "strategy": "loss",
                "seed": seed,
                "step": 0,
                "n_synthetic": 8,
                "accuracy": strategy_at_0,
            }
        )
    return pd.DataFrame(rows).assign(task="arith", student="tiny", teacher_tokens=1.0)


def test_a_crossing_within_the_baselines_noise_is_undetermined() -> None:
    # random's mean: 0.45 at 8 items (sd over the two seeds 0.01414, standard error 0.01),
    # 0.4501 at 12. loss at 0.45: reached on the 4 -> 8 segment (rise 0.25): 1.00x. At 0.4501
    # it is reached only at 12 items, 1.50x, but across 8 -> 12 random rises 0.0001, less
    # than its standard error there (0.01): undetermined.
    same = analyses.efficiency(_flat_baseline([0.4401, 0.4601], 0.45), "random").iloc[0]
    assert same["ratio"] == pytest.approx(1.0) and not same["undetermined"]
    assert efficiency_text(same).startswith("1.00x")
    above = analyses.efficiency(_flat_baseline([0.4401, 0.4601], 0.4501), "random").iloc[0]
    assert above["ratio"] == pytest.approx(1.5) and above["undetermined"]
    assert efficiency_text(above) == "undetermined"
    assert efficiency_text(above, "marginal") == "undetermined"


def test_with_one_seed_a_rising_baseline_is_determined() -> None:
    # One seed: no standard error; the crossing segment rises (0.44 -> 0.4401), so the
    # ratio stands: 8 + (0.44005 - 0.44) / 0.0001 * 4 = 10 items over 8.
    one = analyses.efficiency(_flat_baseline([0.4401], 0.44005), "random").iloc[0]
    assert one["ratio"] == pytest.approx(1.25) and not one["undetermined"]


def test_difficulty_accuracy_at_the_last_step() -> None:
    # loss: seed 0 reached t=1 (0.9, 0.3), seed 1 stopped at t=0: the last step is 1, seed 0.
    table = analyses.difficulty_accuracy(example.curves())
    assert table[["strategy", "step", "difficulty", "accuracy", "seeds"]].values.tolist() == [
        ["loss", 1, "1", pytest.approx(0.9), 1],
        ["loss", 1, "2", pytest.approx(0.3), 1],
    ]
    assert analyses.difficulty_accuracy(example.curves().iloc[:, :8]).empty
