"""The `openai` backend: any OpenAI-compatible endpoint (a hosted API, `vllm serve`, Ray Serve).

Requests go out concurrently (at most ``max_concurrency`` in flight) from one async client.
Transient failures (429, 5xx, timeouts, dropped connections, malformed responses) are retried
by tenacity with exponential backoff and jitter; the client's own retries are off so that
every retry is counted here, by cause. A request that still fails, or fails for a reason
retrying cannot fix (400, 401, 404), comes back with its error and fails only its own item.
The API key is read from the environment variable the config names and is never logged: every
error text (a provider's body may echo the request's Authorization header) and the identity the
cache stores pass through `ray_asd.redact`.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import Counter
from collections.abc import Sequence
from typing import Any

import openai
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from ray_asd.config import TeacherConfig
from ray_asd.errors import ConfigError
from ray_asd.redact import live_secrets, redact_text
from ray_asd.teacher.base import Completion, sampling_identity

log = logging.getLogger(__name__)
# A local server (vllm serve, Ray Serve) started without --api-key accepts any key.
NO_KEY = "no-key"


class MalformedResponse(Exception):
    """A 200 response without a completion in it (a broken proxy, a truncated body)."""


def retry_cause(error: BaseException) -> str | None:
    """Why ``error`` is worth retrying (the counter it is counted under), or None."""
    if isinstance(error, openai.RateLimitError):
        return "rate_limited"
    if isinstance(error, openai.APITimeoutError):  # before its base class APIConnectionError
        return "timeout"
    if isinstance(error, openai.APIConnectionError):
        return "connection"
    if isinstance(error, openai.APIStatusError) and error.status_code >= 500:
        return "server_error"
    if isinstance(error, MalformedResponse | openai.APIResponseValidationError | ValueError):
        return "malformed"
    return None


def api_key(config: TeacherConfig) -> str:
    """The key from ``teacher.openai.api_key_env``; a local ``base_url`` may go without.

    Raises:
        ConfigError: the variable is unset and the endpoint is the hosted API.
    """
    settings = config.openai
    key = os.environ.get(settings.api_key_env)
    if key:
        return key
    if settings.base_url is None:
        raise ConfigError(
            f"teacher.openai.api_key_env: the environment variable {settings.api_key_env} "
            "is not set (it must hold the API key)"
        )
    return NO_KEY


class OpenAIBackend:
    def __init__(self, config: TeacherConfig) -> None:
        self.config = config
        self._key = api_key(config)
        # The live key is masked by value too, whatever its variable is called.
        self._secrets = live_secrets([config.openai.api_key_env])
        # Retries and failures by cause are added as they happen.
        self._counts: Counter[str] = Counter(requests=0, calls=0, retries=0, failed=0)

    @property
    def identity(self) -> dict[str, Any]:
        return {**sampling_identity(self.config), "base_url": self._base_url}

    @property
    def _base_url(self) -> str | None:
        """The endpoint without credentials (userinfo, token query parameters)."""
        url = self.config.openai.base_url
        return None if url is None else redact_text(url, self._secrets)

    def __repr__(self) -> str:  # never the key
        return f"OpenAIBackend(model={self.config.model!r}, base_url={self._base_url!r})"

    def complete(self, prompts: Sequence[str], seeds: Sequence[int]) -> list[Completion]:
        if not prompts:
            return []
        self._counts["requests"] += len(prompts)
        self._counts["calls"] += 1
        return asyncio.run(self._complete_all(list(prompts), list(seeds)))

    async def _complete_all(self, prompts: list[str], seeds: list[int]) -> list[Completion]:
        settings = self.config.openai
        # A client per batch: its connection pool belongs to this event loop.
        async with openai.AsyncOpenAI(
            api_key=self._key,
            base_url=settings.base_url,
            timeout=settings.timeout_s,
            max_retries=0,
        ) as client:
            slots = asyncio.Semaphore(settings.max_concurrency)
            return list(
                await asyncio.gather(
                    *(
                        self._complete_one(client, slots, p, s)
                        for p, s in zip(prompts, seeds, strict=True)
                    )
                )
            )

    async def _complete_one(
        self, client: openai.AsyncOpenAI, slots: asyncio.Semaphore, prompt: str, seed: int
    ) -> Completion:
        settings = self.config.openai
        retries = 0

        def count_retry(state: RetryCallState) -> None:
            nonlocal retries
            retries += 1
            cause = retry_cause(state.outcome.exception()) if state.outcome else None
            self._counts["retries"] += 1
            self._counts[f"retries_{cause}"] += 1

        retrying = AsyncRetrying(
            stop=stop_after_attempt(settings.max_attempts),
            wait=wait_exponential_jitter(
                multiplier=settings.backoff_initial_s,
                max=settings.backoff_max_s,
                jitter=settings.backoff_initial_s,
            ),
            retry=retry_if_exception(lambda error: retry_cause(error) is not None),
            before_sleep=count_retry,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    async with slots:  # not held while backing off
                        text, prompt_tokens, completion_tokens = await self._request(
                            client, prompt, seed
                        )
        except Exception as error:  # fails this request only
            self._counts["failed"] += 1
            cause = retry_cause(error) or "error"
            self._counts[f"failed_{cause}"] += 1
            described = self._describe(error)
            log.warning("teacher request failed after %d retries: %s", retries, described)
            return Completion("", 0, 0, retries, error=described)
        return Completion(text, prompt_tokens, completion_tokens, retries)

    async def _request(
        self, client: openai.AsyncOpenAI, prompt: str, seed: int
    ) -> tuple[str, int, int]:
        config = self.config
        sampling: dict[str, Any] = {
            "model": config.model,
            "temperature": config.temperature,
            "top_p": config.top_p,
            "max_tokens": config.max_new_tokens,
            "seed": seed,
        }
        if config.chat:
            response = await client.chat.completions.create(
                messages=[{"role": "user", "content": prompt}], **sampling
            )
            text = response.choices[0].message.content if response.choices else None
        else:
            response = await client.completions.create(prompt=prompt, **sampling)
            text = response.choices[0].text if response.choices else None
        if text is None or response.usage is None:
            raise MalformedResponse("a response without a completion or token usage")
        return text, response.usage.prompt_tokens, response.usage.completion_tokens

    def stats(self) -> dict[str, int]:
        return dict(self._counts)

    def _describe(self, error: BaseException) -> str:
        # Status errors carry the response body, which some providers and proxies fill with
        # the request's headers: masked before the text is cut, so no key survives half-cut.
        return f"{type(error).__name__}: {redact_text(str(error), self._secrets)[:300]}"
