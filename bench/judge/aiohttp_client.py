"""The judge's former aiohttp client, kept as the benchmark's baseline for the `openai` SDK one.

Same request and reply handling as ``judge.clients.http.HttpJudgeClient`` (and the same error
tree, so the worker treats both alike); only the HTTP library differs.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import aiohttp
import orjson

from judge.clients import JudgeReply
from judge.config import JudgeEndpoint
from judge.errors import ParseFailure, PermanentJudgeError, RetryableJudgeError
from judge.prompts import RESPONSE_FORMAT
from judge.ratelimit import retry_after_seconds
from tunegate.lifecycle import AsyncResource

__all__ = ["AiohttpJudgeClient"]


@contextlib.asynccontextmanager
async def _http_errors() -> AsyncIterator[None]:
    try:
        yield
    except TimeoutError as exc:
        raise RetryableJudgeError(f"judge timed out: {exc!r}", reason="timeout") from exc
    except aiohttp.ClientError as exc:
        raise RetryableJudgeError(f"judge unreachable: {exc!r}", reason="connect") from exc


class AiohttpJudgeClient(AsyncResource):
    """Calls ``POST {base_url}/chat/completions`` through one aiohttp session."""

    def __init__(self, endpoint: JudgeEndpoint) -> None:
        assert endpoint.base_url is not None
        self.endpoint = endpoint
        self.model = endpoint.model
        self._url = endpoint.base_url.rstrip("/") + "/chat/completions"
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers={"content-type": "application/json"},
                timeout=aiohttp.ClientTimeout(total=self.endpoint.timeout_seconds),
                connector=aiohttp.TCPConnector(limit=256),
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def complete(self, messages: list[dict[str, str]]) -> JudgeReply:
        body = {
            "model": self.endpoint.model,
            "messages": messages,
            "temperature": self.endpoint.temperature,
            "max_tokens": self.endpoint.max_tokens,
            "response_format": RESPONSE_FORMAT,
        }
        async with (
            _http_errors(),
            self._client().post(self._url, data=orjson.dumps(body)) as response,
        ):
            status = response.status
            content = await response.read()
            headers = dict(response.headers)
        raw = content[:2000].decode(errors="replace")
        if status in (408, 409, 429) or status >= 500:
            raise RetryableJudgeError(
                f"judge answered {status}", raw=raw, reason="rate_limited",
                retry_after=retry_after_seconds({k.lower(): v for k, v in headers.items()}),
            )  # fmt: skip
        if status >= 400:
            raise PermanentJudgeError(f"judge answered {status}", raw=raw)
        try:
            choice = orjson.loads(content)["choices"][0]
            text = choice["message"]["content"] or ""
        except (orjson.JSONDecodeError, KeyError, IndexError, TypeError) as exc:
            raise ParseFailure("judge body is not a chat completion", raw=raw) from exc
        usage = orjson.loads(content).get("usage") or {}
        return JudgeReply(
            text=str(text),
            tokens_in=int(usage.get("prompt_tokens") or 0),
            tokens_out=int(usage.get("completion_tokens") or 0),
        )
