"""OpenAI-compatible HTTP judge client (a frontier API or a local vLLM), on the `openai` SDK.

The SDK runs on its aiohttp transport by default (``endpoint.http_transport``): with dozens
of calls in flight, httpx's connection pool cost about six times the CPU per call
(``python -m bench.judge`` measures both, and the former hand-written aiohttp client).

This is the seam where the SDK's errors become the judge error tree: 429, 408, 409, 5xx,
timeouts and connection errors are ``RetryableJudgeError`` carrying the server's
``Retry-After``; other 4xx are ``PermanentJudgeError``; a 200 whose body is not a chat
completion is a ``ParseFailure``. The SDK's own retries are off (``max_retries=0``): its loop
gives up after a fixed count and ignores a ``Retry-After`` above a minute, while this plane waits
as long as the provider says "later", counts every attempt and charges each to the budget
(``judge.ratelimit.RateLimitGate``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any, cast

import openai
from openai.types.chat import ChatCompletion

from judge.clients import JudgeReply
from judge.config import JudgeEndpoint
from judge.errors import ParseFailure, PermanentJudgeError, RetryableJudgeError
from judge.parse import LABELS
from judge.prompts import RESPONSE_FORMAT
from judge.ratelimit import retry_after_seconds
from tunegate.lifecycle import AsyncResource

__all__ = ["HttpJudgeClient"]

_LATER = {408: "timeout", 409: "conflict", 429: "rate_limited"}


def _raw(response: Any) -> str:
    # a body that cannot be read is no reason to lose the error it came with
    with contextlib.suppress(Exception):
        return str(response.text)[:2000]
    return ""


@contextlib.contextmanager
def _sdk_errors() -> Iterator[None]:
    try:
        yield
    except openai.APITimeoutError as exc:
        raise RetryableJudgeError(f"judge timed out: {exc!r}", reason="timeout") from exc
    except openai.APIConnectionError as exc:
        raise RetryableJudgeError(f"judge unreachable: {exc!r}", reason="connect") from exc
    except openai.APIStatusError as exc:
        status, raw = exc.status_code, _raw(exc.response)
        headers = cast(Mapping[str, str], exc.response.headers)
        if status in _LATER or status >= 500:
            raise RetryableJudgeError(
                f"judge answered {status}",
                raw=raw,
                reason=_LATER.get(status, "server_error"),
                retry_after=retry_after_seconds(headers),
            ) from exc
        raise PermanentJudgeError(f"judge answered {status}", raw=raw) from exc
    except openai.APIResponseValidationError as exc:
        raise ParseFailure(
            "judge body is not a chat completion", raw=_raw(exc.response), reason="malformed_body"
        ) from exc


class HttpJudgeClient(AsyncResource):
    """Calls ``POST {base_url}/chat/completions`` with the verdict JSON schema."""

    def __init__(self, endpoint: JudgeEndpoint) -> None:
        if endpoint.base_url is None:
            raise ValueError("endpoint: HttpJudgeClient needs a base_url")
        self.endpoint = endpoint
        self.model = endpoint.model
        self._sdk: openai.AsyncOpenAI | None = None

    async def __aenter__(self) -> HttpJudgeClient:
        # the SDK imports its resource modules on first use: pay that at start, not while the
        # first batch is in flight (and its leases are not being renewed)
        _ = self._client().chat.completions
        return self

    def _client(self) -> openai.AsyncOpenAI:
        if self._sdk is None:  # created inside the running loop
            key = self.endpoint.api_key
            timeout = self.endpoint.timeout_seconds
            self._sdk = openai.AsyncOpenAI(
                base_url=self.endpoint.base_url,
                api_key=key.get_secret_value() if key is not None else "unused",
                timeout=timeout,
                max_retries=0,
                http_client=(
                    openai.DefaultAioHttpClient(timeout=timeout)
                    if self.endpoint.http_transport == "aiohttp"
                    else None  # the SDK's default httpx client
                ),
            )
        return self._sdk

    async def aclose(self) -> None:
        if self._sdk is not None:
            await self._sdk.close()
            self._sdk = None

    def _options(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "temperature": self.endpoint.temperature,
            "max_tokens": self.endpoint.max_tokens,
        }
        if self.endpoint.json_schema:
            options["response_format"] = RESPONSE_FORMAT
        if self.endpoint.use_logprobs:
            options |= {"logprobs": True, "top_logprobs": 5}
        return options

    async def complete(self, messages: list[dict[str, str]]) -> JudgeReply:
        with _sdk_errors():
            completion = await self._client().chat.completions.create(
                model=self.endpoint.model,
                # role/content dicts; the SDK types them as TypedDicts
                messages=cast(Any, messages),
                **self._options(),
            )
        return _reply(completion)


def _reply(completion: ChatCompletion) -> JudgeReply:
    # The SDK builds the model without validation: a body that is JSON but not a chat
    # completion comes back with missing attributes, so read it defensively.
    try:
        choice = completion.choices[0]
        text = choice.message.content or ""
    except (AttributeError, IndexError, TypeError) as exc:
        raise ParseFailure(
            "judge body is not a chat completion",
            raw=completion.model_dump_json()[:2000],
            reason="malformed_body",
        ) from exc
    usage = getattr(completion, "usage", None)
    return JudgeReply(
        text=str(text),
        tokens_in=int(getattr(usage, "prompt_tokens", 0) or 0),
        tokens_out=int(getattr(usage, "completion_tokens", 0) or 0),
        label_logprobs=_label_logprobs(getattr(choice, "logprobs", None)),
    )


def _label_logprobs(logprobs: Any) -> dict[str, float]:
    """Log-probabilities of the five labels at the token where the judge wrote its label."""
    for token in getattr(logprobs, "content", None) or []:
        name = str(getattr(token, "token", "")).strip()
        if name in LABELS:
            found = {name: float(getattr(token, "logprob", 0.0))}
            for alt in getattr(token, "top_logprobs", None) or []:
                other = str(getattr(alt, "token", "")).strip()
                if other in LABELS:
                    found.setdefault(other, float(getattr(alt, "logprob", 0.0)))
            return found
    return {}
