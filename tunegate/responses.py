"""What an arm answered: an OpenAI JSON body, an SSE event stream or an embeddings body, parsed.

The proxy keeps each arm's body as the raw text it relayed (``ArmResult.body``); the judge and the
analysis call :func:`parse_response` to get texts, tool calls, finish reasons, embeddings (float
lists or the base64 float32 the openai SDK asks for by default) and token usage.
"""

from __future__ import annotations

import base64
import binascii
import re
import sys
from array import array

import orjson
from pydantic import BaseModel, Field

from tunegate.errors import RecordError
from tunegate.records import ArmResult

__all__ = ["ParsedResponse", "parse_response", "usage_counts"]


class ParsedResponse(BaseModel):
    """The content of an arm's answer, whichever endpoint and transport produced it."""

    texts: list[str] = Field(default_factory=list)  # one per choice
    tool_calls: list[list[dict[str, object]]] = Field(default_factory=list)  # one list per choice
    finish_reasons: list[str | None] = Field(default_factory=list)
    embeddings: list[list[float]] = Field(default_factory=list)
    usage: dict[str, int] = Field(default_factory=dict)

    @property
    def text(self) -> str:
        return self.texts[0] if self.texts else ""


def parse_response(result: ArmResult) -> ParsedResponse:
    """Parse an arm's raw body (JSON, or SSE when ``result.stream``); RecordError if malformed."""
    try:
        if result.stream:
            return _parse_sse(result.body)
        body = orjson.loads(result.body)
    except (orjson.JSONDecodeError, ValueError) as exc:
        raise RecordError(f"arm {result.upstream}: body is not valid JSON: {exc}") from exc
    try:
        return _parse_json(body, result.upstream)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise RecordError(f"arm {result.upstream}: malformed body: {exc}") from exc


def _parse_json(body: object, upstream: str) -> ParsedResponse:
    if not isinstance(body, dict):
        raise RecordError(f"arm {upstream}: body is not a JSON object")
    parsed = ParsedResponse(usage=_usage(body.get("usage")))
    for item in body.get("data") or []:
        if isinstance(item, dict) and "embedding" in item:
            parsed.embeddings.append(_embedding(item["embedding"]))
    for choice in body.get("choices") or []:
        if not isinstance(choice, dict):
            continue
        message = choice.get("message")
        if isinstance(message, dict):
            parsed.texts.append(str(message.get("content") or ""))
            parsed.tool_calls.append(list(message.get("tool_calls") or []))
        else:
            parsed.texts.append(str(choice.get("text") or ""))
            parsed.tool_calls.append([])
        parsed.finish_reasons.append(choice.get("finish_reason"))
    return parsed


def _embedding(value: object) -> list[float]:
    """A float list, or the base64 little-endian float32 that the openai SDK asks for by default."""
    if isinstance(value, list):
        return [float(x) for x in value]
    if isinstance(value, str):
        raw = base64.b64decode(value, validate=True)
        if len(raw) % 4:
            raise ValueError("base64 embedding is not a whole number of float32 values")
        return list(array("f", raw)) if sys.byteorder == "little" else _swapped(raw)
    raise ValueError("embedding is neither a list of numbers nor a base64 string")


def _swapped(raw: bytes) -> list[float]:
    values = array("f", raw)
    values.byteswap()
    return list(values)


# SSE lines end at CR LF, CR or LF only (the event-stream grammar); str.splitlines also splits at
# U+2028, U+0085 and the like, which JSON carries unescaped inside a string
_SSE_LINE_END = re.compile(r"\r\n|\r|\n")


def sse_lines(text: str) -> list[str]:
    """The lines of an SSE body, split where the event-stream grammar splits them."""
    return _SSE_LINE_END.split(text)


def usage_counts(result: ArmResult) -> dict[str, int]:
    """The usage block of an arm's answer, ``{}`` when it has none or the body is malformed.

    Leaner than :func:`parse_response` (the proxy calls it once per arm when it builds a pair):
    a JSON body is loaded once; an SSE body is scanned from its end for the last event with a
    usage block (OpenAI sends it in the final chunk), so the text deltas are never parsed.
    """
    try:
        if not result.stream:
            body = orjson.loads(result.body)
            return _usage(body.get("usage")) if isinstance(body, dict) else {}
        if '"usage"' not in result.body:  # a stream without usage (the default): no line to scan
            return {}
        for line in reversed(sse_lines(result.body)):
            if line.startswith("data:") and '"usage"' in line:
                chunk = orjson.loads(line[5:].strip())
                usage = _usage(chunk.get("usage")) if isinstance(chunk, dict) else {}
                if usage:
                    return usage
    except (orjson.JSONDecodeError, ValueError, TypeError):
        return {}
    return {}


def _usage(value: object) -> dict[str, int]:
    if not isinstance(value, dict):
        return {}
    return {str(k): int(v) for k, v in value.items() if isinstance(v, int)}


def _parse_sse(text: str) -> ParsedResponse:
    texts: dict[int, list[str]] = {}
    finish: dict[int, str | None] = {}
    tools: dict[int, dict[int, dict[str, object]]] = {}
    usage: dict[str, int] = {}
    for line in sse_lines(text):
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if not data or data == "[DONE]":
            continue
        chunk = orjson.loads(data)
        if not isinstance(chunk, dict):
            raise ValueError("SSE data is not a JSON object")
        usage = _usage(chunk.get("usage")) or usage
        for choice in chunk.get("choices") or []:
            index = int(choice.get("index", 0))
            delta = choice.get("delta")
            piece = delta.get("content") if isinstance(delta, dict) else choice.get("text")
            texts.setdefault(index, []).append(str(piece or ""))
            if isinstance(delta, dict):
                for call in delta.get("tool_calls") or []:
                    _merge_tool_call(tools.setdefault(index, {}), call)
            if choice.get("finish_reason") is not None or index not in finish:
                finish[index] = choice.get("finish_reason")
    order = sorted(texts)
    return ParsedResponse(
        texts=["".join(texts[i]) for i in order],
        tool_calls=[[tools.get(i, {})[k] for k in sorted(tools.get(i, {}))] for i in order],
        finish_reasons=[finish.get(i) for i in order],
        usage=usage,
    )


def _merge_tool_call(calls: dict[int, dict[str, object]], delta: dict[str, object]) -> None:
    """Accumulate one streamed tool-call delta (OpenAI sends the arguments in pieces)."""
    index = int(str(delta.get("index", 0)))
    call = calls.setdefault(index, {"id": None, "type": "function", "function": {}})
    if delta.get("id"):
        call["id"] = delta["id"]
    function = call["function"]
    assert isinstance(function, dict)
    piece = delta.get("function")
    if isinstance(piece, dict):
        if piece.get("name"):
            function["name"] = str(function.get("name", "")) + str(piece["name"])
        if piece.get("arguments"):
            function["arguments"] = str(function.get("arguments", "")) + str(piece["arguments"])
