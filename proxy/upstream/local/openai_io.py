"""OpenAI request parsing and response bodies for the in-process generation backend.

Requests for ``/chat/completions`` and ``/completions`` become a :class:`GenerationRequest`;
invalid ones raise ``BadRequest`` naming the parameter, which the backend answers as a 400 with
the OpenAI error body, like a model server would. Responses are the OpenAI JSON bodies and SSE
chunks (``chat.completion``, ``chat.completion.chunk``, ``text_completion``).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

import orjson

from proxy.errors import BadRequest, ProxyError
from proxy.extract import parse_body

__all__ = [
    "GenerationRequest",
    "completion_body",
    "error_body",
    "parse_generation_request",
    "sse_chunk",
    "sse_done",
    "usage",
]

CHAT = "/chat/completions"
COMPLETIONS = "/completions"


@dataclass(slots=True)
class GenerationRequest:
    """What one chat or completions request asks the model to do."""

    chat: bool
    model: str
    messages: list[dict[str, object]] = field(default_factory=list)
    prompt: str | list[int] = ""
    max_tokens: int | None = None
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    stream: bool = False
    include_usage: bool = False
    tools: list[object] | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:24])
    created: int = field(default_factory=lambda: int(time.time()))


def _number(body: dict[str, object], name: str, default: float, low: float, high: float) -> float:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise BadRequest(f"{name} must be a number between {low} and {high}", param=name)
    return float(value)


def _optional_int(body: dict[str, object], name: str, low: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise BadRequest(f"{name} must be an integer >= {low}", param=name)
    return value


def _stop(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and len(value) <= 4 and all(isinstance(s, str) for s in value):
        return [str(s) for s in value]
    raise BadRequest("stop must be a string or a list of up to 4 strings", param="stop")


def _text(content: object) -> str:
    """A message's content: a string, or the text parts of a content list."""
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        if len(parts) == len(content):
            return "".join(str(p) for p in parts)
    raise BadRequest("only text message content is supported", param="messages")


def _messages(value: object) -> list[dict[str, object]]:
    if not isinstance(value, list) or not value:
        raise BadRequest("messages must be a non-empty list", param="messages")
    messages: list[dict[str, object]] = []
    for message in value:
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise BadRequest("each message needs a role", param="messages")
        messages.append({**message, "content": _text(message.get("content"))})
    return messages


def _prompt(value: object) -> str | list[int]:
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and all(type(t) is int for t in value):
        return [int(t) for t in value]
    raise BadRequest("prompt must be a string or a list of token ids", param="prompt")


def parse_generation_request(path: str, raw: bytes) -> GenerationRequest:
    """Validate a chat or completions body; BadRequest names the offending parameter."""
    if path not in (CHAT, COMPLETIONS):
        raise BadRequest(f"{path} is not served by this model (chat or completions only)")
    body = parse_body(raw)
    chat = path == CHAT
    if _optional_int(body, "n", 1) not in (None, 1):
        raise BadRequest("only n=1 is supported by the in-process backend", param="n")
    options = body.get("stream_options")
    tools = body.get("tools")
    request = GenerationRequest(
        chat=chat,
        model=str(body.get("model") or ""),
        max_tokens=_optional_int(body, "max_completion_tokens", 1)
        or _optional_int(body, "max_tokens", 1),
        temperature=_number(body, "temperature", 1.0, 0.0, 2.0),
        top_p=_number(body, "top_p", 1.0, 1e-6, 1.0),
        seed=_optional_int(body, "seed", 0),
        stop=_stop(body.get("stop")),
        stream=bool(body.get("stream")),
        include_usage=isinstance(options, dict) and bool(options.get("include_usage")),
        tools=tools if isinstance(tools, list) else None,
    )
    if chat:
        request.messages = _messages(body.get("messages"))
    else:
        request.prompt = _prompt(body.get("prompt"))
    return request


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def completion_body(
    request: GenerationRequest, text: str, finish_reason: str | None, token_usage: dict[str, int]
) -> bytes:
    """The whole (non-streaming) answer."""
    if request.chat:
        choice: dict[str, object] = {
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "logprobs": None,
            "finish_reason": finish_reason,
        }
    else:
        choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason}
    return orjson.dumps(
        {
            "id": ("chatcmpl-" if request.chat else "cmpl-") + request.id,
            "object": "chat.completion" if request.chat else "text_completion",
            "created": request.created,
            "model": request.model,
            "choices": [choice],
            "usage": token_usage,
        }
    )


def sse_chunk(
    request: GenerationRequest,
    text: str | None,
    finish_reason: str | None = None,
    token_usage: dict[str, int] | None = None,
    *,
    first: bool = False,
) -> bytes:
    """One SSE event; ``text=None`` with ``token_usage`` is the final usage-only chunk."""
    choices: list[dict[str, object]] = []
    if text is not None:
        if request.chat:
            delta: dict[str, object] = {"role": "assistant", "content": text} if first else {}
            if text and not first:
                delta["content"] = text
            choices.append(
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            )
        else:
            choices.append(
                {"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason}
            )
    chunk: dict[str, object] = {
        "id": ("chatcmpl-" if request.chat else "cmpl-") + request.id,
        "object": "chat.completion.chunk" if request.chat else "text_completion",
        "created": request.created,
        "model": request.model,
        "choices": choices,
    }
    if token_usage is not None:
        chunk["usage"] = token_usage
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


def sse_done() -> bytes:
    return b"data: [DONE]\n\n"


def error_body(error: ProxyError) -> bytes:
    """The OpenAI error body for ``error``."""
    return orjson.dumps(
        {
            "error": {
                "message": error.message,
                "type": error.type,
                "param": error.param,
                "code": error.code,
            }
        }
    )
