"""Redaction: what counts as a secret, in names, mappings and free text."""

from __future__ import annotations

import pytest

from ray_asd.redact import MASK, live_secrets, names_secret, redact, redact_text


@pytest.mark.parametrize(
    "name",
    [
        "api_key",
        "hf_token",
        "OPENAI_API_KEY",
        "apiKey",
        "x-api-key",
        "client_secret",
        "sig",
        "Authorization",
        "db_password",
        "HF_TOKEN",
    ],
)
def test_secret_names(name: str) -> None:
    assert names_secret(name)


@pytest.mark.parametrize(
    "name",
    [
        "api_key_env",
        "max_new_tokens",
        "teacher_tokens",
        "tokenizer",
        "keyword",
        "api-version",
        "monkey",
        "model",
        "PWD",
        "OLDPWD",
    ],
)
def test_ordinary_names(name: str) -> None:
    assert not names_secret(name)


def test_mapping_masks_secret_keys_environments_and_url_credentials() -> None:
    config = {
        "teacher": {
            "max_new_tokens": 256,
            "vllm": {"env": {"VLLM_CPU_KVCACHE_SPACE": "4"}, "engine_kwargs": {"hf_token": "x"}},
            "openai": {
                "base_url": "https://bob:hunter2@host/v1?api_key=abc&v=1",
                "api_key_env": "MY_KEY",
            },
        },
        "grid": {"seed": [0, 1]},
    }
    masked = redact(config, secrets=[])
    assert masked["teacher"]["max_new_tokens"] == 256
    assert masked["teacher"]["vllm"]["env"] == {"VLLM_CPU_KVCACHE_SPACE": MASK}
    assert masked["teacher"]["vllm"]["engine_kwargs"] == {"hf_token": MASK}
    assert masked["teacher"]["openai"]["base_url"] == f"https://{MASK}@host/v1?api_key={MASK}&v=1"
    assert masked["teacher"]["openai"]["api_key_env"] == "MY_KEY"  # the name, not the key
    assert masked["grid"] == {"seed": [0, 1]}
    assert config["teacher"]["vllm"]["engine_kwargs"] == {"hf_token": "x"}  # a copy


def test_text_masks_echoed_headers_bearer_tokens_and_key_shapes() -> None:
    body = (
        'Error code: 401 - {"request": {"headers": {"Authorization": "Bearer abcdefgh12345678"}},'
        ' "detail": "key sk-proj-ABCDEFGHIJKLMNOPQRSTUVWX is invalid", "token": "Bearer zzzzzzzz9"}'
    )
    masked = redact_text(body, secrets=[])
    for secret in ("abcdefgh12345678", "ABCDEFGHIJKLMNOPQRSTUVWX", "zzzzzzzz9"):
        assert secret not in masked
    assert "Error code: 401" in masked


def test_live_secrets_are_masked_anywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_PROVIDER_TOKEN", "planted-0123")
    monkeypatch.setenv("SHORT_TOKEN", "1")  # too short to mask in free text
    monkeypatch.setenv("UNNAMED", "plain-value-77")
    assert "planted-0123" in live_secrets()
    assert "plain-value-77" in live_secrets(["UNNAMED"])
    assert redact_text("saw planted-0123 and 1 here") == f"saw {MASK} and 1 here"
    assert redact({"note": "x planted-0123"}) == {"note": f"x {MASK}"}
