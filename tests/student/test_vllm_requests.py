"""The vLLM student's pure parts, without an engine: adapter ids, request settings, log-prob
arithmetic, answers remembered for scoring, and the plan's backend check."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from ray_asd.config import TrainConfig, TrialConfig
from ray_asd.errors import ConfigError
from ray_asd.plan import plan
from ray_asd.student.vllm_engine import (
    SCORING,
    AdapterVersions,
    OwnAnswers,
    answer_sampling,
    token_nlls,
)


@dataclass
class Logprob:
    """vllm.logprobs.Logprob's fields (importing vLLM takes ~9 s)."""

    logprob: float
    rank: int | None = None
    decoded_token: str | None = None


def test_adapter_versions_never_reuse_a_name_or_an_id() -> None:
    versions = AdapterVersions()
    made = [versions.new("/same/folder", label) for label in ("a", "b", "a", "a")]
    assert [v.id for v in made] == [1, 2, 3, 4]  # vLLM refuses id 0; 1.. never repeats
    assert len({v.name for v in made}) == 4 and made[2].name == "a-v3"
    assert {v.path for v in made} == {"/same/folder"}
    assert AdapterVersions().new("/x").id == 1  # counted per engine


def test_greedy_and_sampled_requests() -> None:
    options = {"max_new_tokens": 9, "top_p": 0.5, "seed": 10, "stops": [2, 7], "n": 3}
    greedy = answer_sampling(greedy=True, temperature=0.7, **options)
    assert greedy == [greedy[0]] * 3
    assert greedy[0]["temperature"] == 0.0 and greedy[0]["top_p"] == 1.0
    assert greedy[0]["seed"] is None and greedy[0]["max_tokens"] == 9
    sampled = answer_sampling(greedy=False, temperature=0.7, **options)
    assert [s["seed"] for s in sampled] == [10, 11, 12]
    assert sampled[0]["temperature"] == 0.7 and sampled[0]["top_p"] == 0.5
    assert sampled[0]["top_k"] == 0 and sampled[0]["stop_token_ids"] == [2, 7]
    assert sampled[0]["logprobs"] == 0  # the chosen token's own log-prob
    unseeded = answer_sampling(greedy=False, temperature=1.0, **{**options, "seed": None})
    assert {s["seed"] for s in unseeded} == {None}
    with pytest.raises(ValueError):
        answer_sampling(greedy=False, temperature=0.0, **options)
    assert SCORING["prompt_logprobs"] == 0 and SCORING["max_tokens"] == 1


def test_token_nlls_read_each_position_s_own_token() -> None:
    # A prompt's log-probs: None at position 0, then {token: Logprob}, the top-k beside it.
    positions = [None, {5: Logprob(-1.0), 9: Logprob(-0.1)}, {6: Logprob(-2.5)}, {7: Logprob(-0.5)}]
    assert token_nlls(positions, [4, 5, 6, 7], start=2) == [2.5, 0.5]
    assert token_nlls(positions[1:], [5, 6, 7]) == [1.0, 2.5, 0.5]
    with pytest.raises(AssertionError):
        token_nlls(positions, [4, 5, 6, 7], start=0)


def test_own_answers_score_their_prefixes_only() -> None:
    own = OwnAnswers()
    own.replace(1, [([1, 2], [10, 11, 0], [0.5, 1.0, 2.0])])
    assert own.total(1, [1, 2], [10, 11, 0]) == pytest.approx(3.5)
    assert own.total(1, [1, 2], [10]) == pytest.approx(0.5)  # an answer cut early
    assert own.total(1, [1, 2], [10, 12]) is None  # not what it generated
    assert own.total(2, [1, 2], [10]) is None  # another adapter version
    assert own.total(1, [1], [10]) is None
    own.replace(1, [])
    assert own.total(1, [1, 2], [10]) is None  # the last pass only


def vllm_config(**student: object) -> TrialConfig:
    return TrialConfig.model_validate({"student": {"backend": "vllm", **student}})


def test_the_plan_refuses_what_a_vllm_student_cannot_serve() -> None:
    badge = {"strategy": {"name": "badge"}}
    with pytest.raises(ConfigError, match=r"^student\.backend: vllm gives no gradient"):
        plan(TrialConfig.model_validate({**badge, "student": {"backend": "vllm"}}))
    plan(TrialConfig.model_validate(badge))  # the transformers student gives them
    plan(vllm_config())  # loss: answers and NLLs only
    with pytest.raises(ConfigError, match=r"^student\.vllm\.max_lora_rank: 16 is below"):
        plan(vllm_config().model_copy(update={"train": TrainConfig(lora_r=32)}))
    with pytest.raises(ConfigError, match=r"^student\.vllm\.enable_lora"):
        plan(vllm_config(vllm={"enable_lora": False}))
    head = TrainConfig(lora_target_modules=["q_proj", "lm_head"])
    with pytest.raises(ConfigError, match=r"^train\.lora_target_modules: a vLLM student"):
        plan(vllm_config().model_copy(update={"train": head}))
