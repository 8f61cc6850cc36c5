import numpy as np
import pandas as pd
import pytest

from ray_asd.errors import ConfigError
from ray_asd.strategies import STRATEGIES, compose, make_strategy
from ray_asd.strategies.selectors import (
    SELECTORS,
    Balanced,
    BottomK,
    KMeansPP,
    Stochastic,
    TopK,
    Uniform,
)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


SCORED = pd.DataFrame(
    {
        "id": ["s0", "s1", "s2", "s3", "s4", "s5"],
        "answer_nll": [0.1, 0.5, 0.3, 0.2, 0.9, 0.0],
        "reference_nll": [2.0, 1.0, 3.0, 0.5, 0.1, 4.0],
        "correct": [True, False, True, False, True, True],
    }
)


def test_loss_picks_highest_own_answer_nll_first() -> None:
    assert make_strategy("loss").select(SCORED, 3, rng()).tolist() == [4, 1, 2]


def test_loss_gt_picks_highest_reference_nll_first() -> None:
    assert make_strategy("loss_gt").select(SCORED, 2, rng()).tolist() == [5, 2]


def test_llm2llm_picks_wrong_answers_then_random_among_ties() -> None:
    for seed in range(20):
        picks = make_strategy("llm2llm").select(SCORED, 3, rng(seed)).tolist()
        assert set(picks[:2]) == {1, 3}
        assert picks[2] in {0, 2, 4, 5}
    thirds = {make_strategy("llm2llm").select(SCORED, 3, rng(seed))[2] for seed in range(50)}
    assert thirds == {0, 2, 4, 5}  # ties go every way, not to the first row


def test_top_k_breaks_ties_at_random_not_by_position() -> None:
    scores = np.array([1.0, 1.0, 1.0, 1.0, 0.0])
    firsts = {int(TopK()(scores, 1, rng(seed))[0]) for seed in range(40)}
    assert firsts == {0, 1, 2, 3}


def test_bottom_k() -> None:
    assert BottomK()(np.array([3.0, 1.0, 2.0, 0.5]), 2, rng()).tolist() == [3, 1]


def test_balanced_takes_hardest_and_easiest() -> None:
    scores = np.array([0.0, 5.0, 1.0, 4.0, 2.0, 3.0])
    assert Balanced()(scores, 4, rng()).tolist() == [1, 3, 0, 2]
    assert Balanced(hard_share=0.75)(scores, 4, rng()).tolist() == [1, 3, 5, 0]
    with pytest.raises(ValueError, match="hard_share"):
        Balanced(hard_share=1.5)


def test_selectors_are_deterministic_under_a_seed() -> None:
    scores = np.random.default_rng(7).integers(0, 3, size=50).astype(float)
    for selector in (TopK(), BottomK(), Balanced(), Uniform()):
        assert selector(scores, 10, rng(3)).tolist() == selector(scores, 10, rng(3)).tolist()
        assert len(set(selector(scores, 10, rng(3)).tolist())) == 10


def test_uniform_covers_the_pool_before_repeating() -> None:
    picks = Uniform()(np.zeros(5), 12, rng())
    assert sorted(picks[:5].tolist()) == [0, 1, 2, 3, 4]
    assert sorted(picks[5:10].tolist()) == [0, 1, 2, 3, 4]
    assert len(picks) == 12


def test_static_is_upfront_random() -> None:
    static, random = make_strategy("static"), make_strategy("random")
    assert static.upfront and not random.upfront
    assert sorted(static.select(SCORED, 12, rng()).tolist()) == sorted(list(range(6)) * 2)


def test_top_k_refuses_more_picks_than_seeds() -> None:
    with pytest.raises(ValueError, match="cannot pick 7 of 6 seeds"):
        make_strategy("loss").select(SCORED, 7, rng())


def test_non_finite_scores_name_the_seed() -> None:
    bad = SCORED.assign(answer_nll=[0.1, np.nan, 0.3, np.inf, 0.9, 0.0])
    with pytest.raises(ValueError, match=r"non-finite scores for 2 seed\(s\), e.g. \['s1', 's3'\]"):
        make_strategy("loss").select(bad, 2, rng())


def test_missing_column_is_named() -> None:
    with pytest.raises(ValueError, match=r"needs column\(s\) \['answer_nll'\]"):
        make_strategy("loss").select(SCORED.drop(columns="answer_nll"), 2, rng())


def test_compose_and_registry_errors() -> None:
    strategy = compose("loss", "balanced", selector_params={"hard_share": 1.0})
    assert strategy.name == "loss+balanced"
    assert strategy.select(SCORED, 2, rng()).tolist() == [4, 1]
    with pytest.raises(ConfigError, match="unknown strategy 'los'; did you mean 'loss'"):
        make_strategy("los")
    with pytest.raises(ConfigError, match=r"selector 'top_k': unknown parameter\(s\) \['k'\]"):
        compose("loss", "top_k", selector_params={"k": 3})
    assert set(STRATEGIES) == {
        "random",
        "static",
        "loss",
        "loss_gt",
        "llm2llm",
        "reward",
        "judge",
        "lion",
        "badge",
        "difficulty",
    }


def test_count_steps_and_nll_normalisation() -> None:
    from ray_asd.strategies.scorers import count_steps, normalise_nll

    answer = "12 + 7 = 19. 19 - 5 = 14.\n#### 14"
    assert count_steps(answer) == 3
    assert count_steps("Pay $2.50 now. Then 3.\nDone") == 3  # a decimal point ends no step
    assert count_steps("") == 1
    assert normalise_nll(12.0, 24, answer, "mean") == 0.5
    assert normalise_nll(12.0, 24, answer, "sum") == 12.0
    assert normalise_nll(12.0, 24, answer, "step") == 4.0
    with pytest.raises(ValueError, match="unknown loss normalisation"):
        normalise_nll(1.0, 1, "x", "median")


@pytest.mark.parametrize("kind", ["softmax", "power", "softrank"])
def test_stochastic_selectors_approach_top_k_when_cold(kind: str) -> None:
    scores = np.array([0.5, 2.0, 1.0, 3.0, 0.25])
    selector = SELECTORS[kind](temperature=1e-3)
    for seed in range(20):
        assert sorted(selector(scores, 2, rng(seed))) == [1, 3]


def test_softmax_sampling_follows_its_weights() -> None:
    # Gumbel-max is an exact sample: m = 1 picks seed i with probability softmax(s / T)_i.
    scores, temperature = np.array([0.0, 1.0, 2.0]), 2.0
    selector = SELECTORS["softmax"](temperature=temperature)
    generator = rng(7)
    picks = np.array([selector(scores, 1, generator)[0] for _ in range(20_000)])
    weights = np.exp(scores / temperature)
    # exp(0, .5, 1) / sum = 0.186, 0.307, 0.506 (by hand); 20k draws: sd <= 0.0036.
    assert np.allclose(
        np.bincount(picks, minlength=3) / len(picks), weights / weights.sum(), atol=0.015
    )


def test_power_and_softrank_weights_by_hand() -> None:
    scores = np.array([4.0, 1.0, 2.0])
    power = Stochastic("power", temperature=0.5)  # beta 2: weights 16, 1, 4
    assert np.allclose(np.exp(power.log_weights(scores)), [16, 1, 4])
    softrank = Stochastic("softrank", temperature=1.0)  # ranks 1, 3, 2: weights 1, 1/3, 1/2
    assert np.allclose(np.exp(softrank.log_weights(scores)), [1, 1 / 3, 1 / 2])


def test_stochastic_picks_are_distinct_and_reproducible() -> None:
    scores = np.linspace(0.1, 1.0, 10)
    selector = SELECTORS["softrank"](temperature=1.0)
    picks = selector(scores, 6, rng(3))
    assert len(set(picks.tolist())) == 6
    assert picks.tolist() == selector(scores, 6, rng(3)).tolist()


def test_stochastic_selector_errors() -> None:
    with pytest.raises(ValueError, match="rows \\[1\\] are not"):
        SELECTORS["power"]()(np.array([1.0, -0.5]), 1, rng())
    with pytest.raises(ValueError, match="temperature must be > 0"):
        SELECTORS["softmax"](temperature=0)
    with pytest.raises(ConfigError, match="unknown parameter\\(s\\) \\['beta'\\]"):
        compose("loss", "power", selector_params={"beta": 2})


def test_a_selector_block_in_a_config() -> None:
    from ray_asd.config_file import load_config
    from ray_asd.plan import build_strategy

    block = "strategy={scorer: loss, selector: {name: power, temperature: 0.5}}"
    strategy = build_strategy(load_config(None, [block]))
    assert strategy.name == "loss+power"
    assert strategy.selector == Stochastic("power", 0.5)
    with pytest.raises(ConfigError, match="a selector block needs a name"):
        load_config(None, ["strategy={scorer: loss, selector: {temperature: 0.5}}"])


MODEL_RATED = pd.DataFrame(
    {
        "id": ["s0", "s1", "s2", "s3", "s4", "s5"],
        "reward": [0.3, -1.2, 2.0, -0.4, 0.9, -1.1],
        "judge_rating": [7.0, 2.0, 9.0, 5.5, 1.0, 8.0],
        "lion_gap": [0.0, 6.0, -1.0, 3.0, 8.0, 1.0],
    }
)


def test_reward_picks_the_lowest_rewards_first() -> None:
    assert make_strategy("reward").select(MODEL_RATED, 3, rng()).tolist() == [1, 5, 3]


def test_judge_picks_the_lowest_ratings_first() -> None:
    assert make_strategy("judge").select(MODEL_RATED, 2, rng()).tolist() == [4, 1]


def test_lion_picks_half_the_largest_gaps_and_half_the_smallest() -> None:
    # gaps 8 (s4), 6 (s1) are the hardest; -1 (s2), 0 (s0) the easiest.
    assert make_strategy("lion").select(MODEL_RATED, 4, rng()).tolist() == [4, 1, 2, 0]
    hard = compose("lion", "balanced", selector_params={"hard_share": 0.75})
    assert hard.select(MODEL_RATED, 4, rng()).tolist() == [4, 1, 3, 2]


def test_kmeans_pp_starts_at_the_largest_norm_then_draws_by_squared_distance() -> None:
    points = np.array([[2.0, 0.0], [0.0, 1.0], [0.0, -1.0], [1.0, 0.0]])
    generator = rng(11)
    picks = np.array([KMeansPP()(points, 2, generator) for _ in range(20_000)])
    assert (picks[:, 0] == 0).all()  # norms 2, 1, 1, 1
    # Squared distances to (2, 0): 5, 5, 1 -> p = 5/11, 5/11, 1/11 (by hand); sd <= 0.0036.
    frequencies = np.bincount(picks[:, 1], minlength=4)[1:] / len(picks)
    assert np.allclose(frequencies, [5 / 11, 5 / 11, 1 / 11], atol=0.015)


def test_kmeans_pp_never_repeats_a_point_while_another_is_left() -> None:
    points = np.array([[2.0, 0.0], [2.0, 0.0], [2.0, 0.0], [0.0, 1.0]])
    for seed in range(20):
        picks = KMeansPP()(points, 3, rng(seed)).tolist()
        assert picks[0] in {0, 1, 2} and picks[1] == 3  # the only point at a distance
        assert picks[2] in {0, 1, 2} - {picks[0]}  # then uniform among the duplicates
    assert sorted(KMeansPP()(points, 4, rng()).tolist()) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="cannot pick 5 of 4"):
        KMeansPP()(points, 5, rng())


def test_kmeans_pp_on_one_score_per_seed_spreads_along_it() -> None:
    scores = np.array([10.0, 9.9, 0.0, 5.0])
    for seed in range(20):
        picks = KMeansPP()(scores, 2, rng(seed)).tolist()
        # 10 first (largest); then d^2 = 0.01, 100, 25: row 1 has p = 0.01 / 125.01.
        assert picks[0] == 0 and picks[1] in {1, 2, 3}
    seconds = [KMeansPP()(scores, 2, rng(seed))[1] for seed in range(300)]
    assert 0.7 < seconds.count(2) / 300 < 0.9  # p = 100 / 125.01 = 0.80
    # Negated ratings (judge, reward): the worst-rated first, not the largest magnitude.
    assert KMeansPP()(np.array([-9.0, -2.0, -5.0, -1.0]), 1, rng()).tolist() == [3]


def test_balanced_rounds_half_hard_picks_up() -> None:
    scores = np.array([0.0, 5.0, 1.0, 4.0, 2.0, 3.0])
    assert Balanced()(scores, 1, rng()).tolist() == [1]  # not 0 hard picks (round to even)
    assert Balanced()(scores, 3, rng()).tolist() == [1, 3, 0]
    assert Balanced()(scores, 5, rng()).tolist() == [1, 3, 5, 0, 2]


def test_badge_selects_by_gradient_embeddings_and_records_their_norms() -> None:
    embedded = SCORED.assign(
        grad_embedding=[
            np.array(v, dtype=np.float32)
            for v in ([0.0, 0.1], [3.0, 0.0], [3.0, 0.1], [0.0, 2.0], [0.1, 0.0], [0.0, 0.0])
        ]
    )
    badge = make_strategy("badge")
    scores = badge.score(embedded)
    assert scores.shape == (6, 2)
    picks = badge.pick(scores, 2, rng()).tolist()
    assert picks[0] == 2  # the largest norm
    # by norm: top_k over the same embeddings
    by_norm = compose("badge", "top_k")
    assert by_norm.select(embedded, 3, rng()).tolist() == [2, 1, 3]
    bad = embedded.assign(grad_embedding=[np.array([np.nan, 0.0]), *embedded.grad_embedding[1:]])
    with pytest.raises(ValueError, match=r"non-finite scores for 1 seed\(s\), e.g. \['s0'\]"):
        badge.score(bad)
