"""Redaction at the source: every config, URI and error text that ray-asd persists (MLflow
params, experiment.json, config.json, the teacher cache, items.jsonl) or prints passes through
here first.

What counts as a secret:
- the value of any mapping key that names one (``api_key``, ``hf_token``, ``password``,
  ``client_secret``, ``authorization`` ...);
- every value of an ``env`` mapping (the engine environment of ``teacher.vllm.env``): an
  environment is where credentials live;
- URL userinfo (``https://user:pass@host``) and URL query parameters that name one
  (``?api_key=...``, ``?sig=...``);
- bearer tokens and ``Authorization`` header values in free text (a provider's error body that
  echoes the request);
- the live value of every environment variable whose name names one (``OPENAI_API_KEY``,
  ``HF_TOKEN`` and the variable ``teacher.openai.api_key_env`` names): replaced wherever it
  appears, whatever the text around it.

No Ray, no torch: pure functions, cheap enough for every line of a log.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "***"
# The words of a key or variable name that make it name a secret: api_key, hf_token,
# OPENAI_API_KEY, client_secret, db_password, apiKey, Authorization. Whole words only, so
# max_new_tokens, tokenizer and keyword stay readable; not "pwd", which is the shell's working
# directory ($PWD, $OLDPWD) far more often than a password.
_SECRET_WORDS = frozenset(
    {"key", "apikey", "token", "secret", "password", "passwd", "credential"}
    | {"credentials", "auth", "authorization", "cookie", "sig", "signature", "bearer"}
)
_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")
# Mapping keys whose every value is secret (an environment).
_SECRET_MAPPINGS = ("env", "env_vars", "environment", "headers")
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^/@\s?#]+)@")
_QUERY_PARAM = re.compile(r"(?P<lead>[?&;])(?P<name>[^=&;#\s]+)=(?P<value>[^&;#\s]*)")
_BEARER = re.compile(r"(?P<lead>\bbearer\s+)[A-Za-z0-9._~+/=\-]{8,}", re.I)
_AUTH_HEADER = re.compile(
    r"(?P<lead>['\"]?(?:authorization|x-api-key|api-key|proxy-authorization)['\"]?\s*[:=]\s*"
    r"['\"]?)(?P<value>[^'\"\s,}]+(?:\s+[^'\"\s,}]+)?)",
    re.IGNORECASE,
)
# Provider key shapes (OpenAI sk-..., Hugging Face hf_..., GitHub gh*_...), long enough not to
# hit ordinary words: 20+ characters after the prefix.
_KEY_SHAPES = re.compile(
    r"\b(?:sk-[A-Za-z0-9_\-]{20,}|hf_[A-Za-z0-9]{20,}|gh[opsu]_[A-Za-z0-9]{20,})"
)
# Shorter environment values are not masked in free text: "1" or "true" would mask everything.
MIN_LIVE_SECRET = 6


def names_secret(name: str) -> bool:
    """Whether a mapping key or environment variable name names a secret; a name ending in
    ``_env`` (``api_key_env``) names the variable that holds one, and is not."""
    words = [word.lower() for word in _WORD.findall(name)]
    return bool(words) and words[-1] != "env" and not _SECRET_WORDS.isdisjoint(words)


def live_secrets(extra_names: Iterable[str] = ()) -> list[str]:
    """Values of this process's environment variables that name a secret, plus those named in
    ``extra_names`` (e.g. ``teacher.openai.api_key_env``), longest first."""
    names = {name for name in os.environ if names_secret(name)} | set(extra_names)
    values = {os.environ.get(name, "") for name in names}
    return sorted((v for v in values if len(v) >= MIN_LIVE_SECRET), key=len, reverse=True)


def redact_text(text: str, secrets: Iterable[str] | None = None) -> str:
    """``text`` with URL credentials, bearer tokens, auth headers, provider key shapes and the
    live ``secrets`` (default: :func:`live_secrets`) masked."""
    for secret in live_secrets() if secrets is None else secrets:
        text = text.replace(secret, MASK)
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", text)
    text = _QUERY_PARAM.sub(
        lambda m: f"{m['lead']}{m['name']}={MASK}" if names_secret(m["name"]) else m[0], text
    )
    text = _AUTH_HEADER.sub(lambda m: f"{m['lead']}{MASK}", text)
    text = _BEARER.sub(lambda m: f"{m['lead']}{MASK}", text)
    return _KEY_SHAPES.sub(MASK, text)


def redact(data: Any, secrets: Iterable[str] | None = None) -> Any:
    """A copy of a config-like value (mappings, lists, scalars) with every secret masked:
    values under secret-naming keys and in environment mappings, and secrets inside strings
    (:func:`redact_text`). Non-string scalars are kept, except under a secret-naming key."""
    known = live_secrets() if secrets is None else list(secrets)
    return _redact(data, known, whole=False)


def _redact(data: Any, secrets: list[str], whole: bool) -> Any:
    if isinstance(data, Mapping):
        return {
            key: _redact(
                value,
                secrets,
                whole or names_secret(str(key)) or str(key).lower() in _SECRET_MAPPINGS,
            )
            for key, value in data.items()
        }
    if isinstance(data, list | tuple):
        return [_redact(value, secrets, whole) for value in data]
    if whole:
        return None if data is None else MASK
    if isinstance(data, str):
        return redact_text(data, secrets)
    return data
