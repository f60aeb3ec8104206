"""OpenAI-compatible HTTP judge client (a frontier API or a local vLLM).

This is the seam where aiohttp's errors become the judge error tree: 429, 5xx, timeouts and
connection errors and bodies that are not a chat completion are ``RetryableJudgeError``; other
4xx are ``PermanentJudgeError``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import aiohttp
import orjson

from judge.clients import JudgeReply
from judge.config import JudgeEndpoint
from judge.errors import PermanentJudgeError, RetryableJudgeError
from judge.parse import LABELS
from judge.prompts import RESPONSE_FORMAT
from tunegate.lifecycle import AsyncResource

__all__ = ["HttpJudgeClient"]


@contextlib.asynccontextmanager
async def _http_errors() -> AsyncIterator[None]:
    try:
        yield
    except TimeoutError as exc:
        raise RetryableJudgeError(f"judge timed out: {exc!r}", reason="timeout") from exc
    except aiohttp.ClientError as exc:
        raise RetryableJudgeError(f"judge unreachable: {exc!r}", reason="connect") from exc


class HttpJudgeClient(AsyncResource):
    """Calls ``POST {base_url}/chat/completions`` with the verdict JSON schema."""

    def __init__(self, endpoint: JudgeEndpoint) -> None:
        if endpoint.base_url is None:
            raise ValueError("endpoint: HttpJudgeClient needs a base_url")
        self.endpoint = endpoint
        self.model = endpoint.model
        self._url = endpoint.base_url.rstrip("/") + "/chat/completions"
        self._headers = {"content-type": "application/json"}
        if endpoint.api_key is not None:
            self._headers["authorization"] = f"Bearer {endpoint.api_key.get_secret_value()}"
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:  # created on first use, inside the running loop
            self._session = aiohttp.ClientSession(
                headers=self._headers,
                timeout=aiohttp.ClientTimeout(total=self.endpoint.timeout_seconds),
                connector=aiohttp.TCPConnector(limit=256),
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _body(self, messages: list[dict[str, str]]) -> dict[str, object]:
        body: dict[str, object] = {
            "model": self.endpoint.model,
            "messages": messages,
            "temperature": self.endpoint.temperature,
            "max_tokens": self.endpoint.max_tokens,
        }
        if self.endpoint.json_schema:
            body["response_format"] = RESPONSE_FORMAT
        if self.endpoint.use_logprobs:
            body["logprobs"] = True
            body["top_logprobs"] = 5
        return body

    async def complete(self, messages: list[dict[str, str]]) -> JudgeReply:
        async with (
            _http_errors(),
            self._client().post(self._url, data=orjson.dumps(self._body(messages))) as response,
        ):
            status = response.status
            content = await response.read()
        if status == 429 or status >= 500:
            raise RetryableJudgeError(
                f"judge answered {status}",
                raw=content[:2000].decode(errors="replace"),
                reason="rate_limited" if status == 429 else "server_error",
            )
        if status >= 400:
            raise PermanentJudgeError(
                f"judge answered {status}", raw=content[:2000].decode(errors="replace")
            )
        return _reply(content)


def _reply(content: bytes) -> JudgeReply:
    try:
        body = orjson.loads(content)
        choice = body["choices"][0]
        text = choice["message"]["content"] or ""
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError) as exc:
        raise RetryableJudgeError(
            "judge body is not a chat completion",
            raw=content[:2000].decode(errors="replace"),
            reason="malformed_body",
        ) from exc
    usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
    return JudgeReply(
        text=str(text),
        tokens_in=int(usage.get("prompt_tokens") or 0),
        tokens_out=int(usage.get("completion_tokens") or 0),
        label_logprobs=_label_logprobs(choice.get("logprobs")),
    )


def _label_logprobs(logprobs: object) -> dict[str, float]:
    """Log-probabilities of the five labels at the token where the judge wrote its label."""
    if not isinstance(logprobs, dict) or not isinstance(logprobs.get("content"), list):
        return {}
    for token in logprobs["content"]:
        if isinstance(token, dict) and str(token.get("token", "")).strip() in LABELS:
            found = {str(token["token"]).strip(): float(token.get("logprob", 0.0))}
            for alt in token.get("top_logprobs") or []:
                name = str(alt.get("token", "")).strip()
                if name in LABELS:
                    found.setdefault(name, float(alt.get("logprob", 0.0)))
            return found
    return {}
