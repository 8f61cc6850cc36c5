"""Win rates (ties, seed-bootstrap intervals) and the A/A pair, by hand."""

import numpy as np
import pandas as pd
import pytest

from ray_asd.report import wins
from tests.report import example


def test_win_rates_count_ties_half_and_skip_missing_cells() -> None:
    # Cells (seed 0: t0, t1; seed 1: t0, t1): random .3 .5 .4 .4 / static .3 .4 .2 .6 /
    # loss .4 .6 .5 (t1 of seed 1 missing).
    matrix, overall = wins.win_rates(example.curves(), ["random", "static", "loss"])
    assert matrix.loc["random", "static"] == pytest.approx(2.5 / 4)  # tie, win, win, loss
    assert matrix.loc["static", "random"] == pytest.approx(1.5 / 4)
    assert matrix.loc["random", "loss"] == 0.0  # over the 3 cells both have
    assert matrix.loc["loss", "static"] == 1.0
    assert np.isnan(matrix.loc["loss", "loss"])
    overall = overall.set_index("strategy")
    assert overall["win_rate"].tolist() == pytest.approx([2.5 / 7, 1.5 / 7, 1.0])
    assert overall["cells"].tolist() == [7, 7, 6]
    assert overall["rank"].tolist() == [2, 3, 1]
    # One tie: random and static at seed 0, t0.
    assert overall["ties"].tolist() == [1, 1, 0]
    ties = wins.tie_counts(example.curves(), ["random", "static", "loss"])
    assert ties.loc["random", "static"] == ties.loc["static", "random"] == 1
    assert ties.to_numpy().sum() == 2


def test_win_rate_intervals_resample_seeds() -> None:
    # Two seeds: the interval is [min, max] of the one-seed win rates (see the efficiency
    # test). random: seed 0 1.5 of 4 (tie and win vs static, 2 losses to loss), seed 1 1 of 3
    # (win and loss vs static, loss to loss). static: seed 0 0.5 of 4, seed 1 1 of 3.
    _, overall = wins.win_rates(example.curves(), ["random", "static", "loss"])
    overall = overall.set_index("strategy")
    assert overall.loc["random", ["win_rate_low", "win_rate_high"]].tolist() == pytest.approx(
        [1 / 3, 0.375]
    )
    assert overall.loc["static", ["win_rate_low", "win_rate_high"]].tolist() == pytest.approx(
        [0.125, 1 / 3]
    )
    assert overall.loc["loss", ["win_rate_low", "win_rate_high"]].tolist() == [1.0, 1.0]
    assert (overall["win_rate_low"] <= overall["win_rate"]).all()
    assert (overall["win_rate"] <= overall["win_rate_high"]).all()
    # The pair random vs static: seed 0 1.5 of 2, seed 1 1 of 2.
    pair = wins.pair_win_rate(example.curves(), "random", "static")
    assert pair == {
        "win_rate": pytest.approx(0.625),
        "low": pytest.approx(0.5),
        "high": pytest.approx(0.75),
        "cells": 4,
        "ties": 1,
    }


def test_one_seed_has_no_interval() -> None:
    curves = example.curves()
    _, overall = wins.win_rates(curves[curves["seed"] == "0"])
    assert overall["win_rate_low"].isna().all() and (overall["seeds"] == 1).all()


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
    matrix, overall = wins.win_rates(curves)
    assert matrix.loc["a", "b"] == 0.5  # two ties
    # a: tie, tie vs b, win, loss vs c -> 2 of 4; b the same; c: 2 of 4 as well.
    assert overall["win_rate"].tolist() == [0.5, 0.5, 0.5]
    assert overall["rank"].tolist() == [1, 1, 1]
    assert overall["ties"].tolist() == [2, 2, 0]


def _runs(parts: dict[str, tuple[str | None, str | None]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"strategy": s, "scorer": scorer, "selector": selector}
            for s, (scorer, selector) in parts.items()
        ]
    )


BLIND = ("none", "uniform")


def test_aa_pair_prefers_two_streams_of_one_strategy() -> None:
    runs = _runs({"static": BLIND, "random": BLIND, "loss": ("loss", "top_k"), "random_s1": BLIND})
    assert wins.blind_strategies(runs) == ["static", "random", "random_s1"]
    assert wins.aa_pair(runs, ["random", "static", "loss", "random_s1"]) == ("random_s1", "random")


def test_aa_pair_falls_back_to_random_vs_static() -> None:
    runs = example.runs()
    assert wins.aa_pair(runs, ["random", "static", "loss"]) == ("random", "static")
    assert wins.aa_pair(runs[runs["strategy"] != "static"]) is None


def test_aa_pair_reads_the_tags_before_the_names() -> None:
    # A blind strategy by its tags whatever its name; "random" whose tags say it scores is not.
    runs = _runs({"random": ("loss", "top_k"), "none+uniform": BLIND, "none+uniform_s2": BLIND})
    assert wins.blind_strategies(runs) == ["none+uniform", "none+uniform_s2"]
    assert wins.aa_pair(runs) == ("none+uniform_s2", "none+uniform")
    # Older runs without the tags: by name.
    old = _runs({"random": (None, None), "random_s3": (None, None), "loss": (None, None)})
    assert wins.aa_pair(old) == ("random_s3", "random")
    assert wins.aa_pair(_runs({"static": (None, None), "static_s1": (None, None)})) == (
        "static_s1",
        "static",
    )
