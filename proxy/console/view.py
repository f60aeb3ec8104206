"""What the pair browser shows of one arm's answer: text, tool calls, JSON fields, ranks.

Pure functions from records to plain data the templates render; no Redis, no HTML. The answers
are parsed by tunegate.responses (an unparseable body is shown raw, with the reason).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import orjson

from tunegate.errors import RecordError
from tunegate.records import Arm, ArmResult, Pair
from tunegate.responses import parse_response

__all__ = ["Answer", "FieldDiff", "answer", "json_diff", "prompt_text", "retrieval_ranks"]

MAX_RANKED = 50  # embedding inputs ranked per pair (the rest is not shown)


@dataclass
class Answer:
    arm: Arm
    present: bool
    status: int | None = None
    error: str | None = None
    stream: bool = False
    text: str = ""
    tool_calls: list[str] = field(default_factory=list)  # pretty JSON, one per call
    embeddings: list[list[float]] = field(default_factory=list)
    latency_s: float | None = None
    ttft_s: float | None = None
    itl_mean_s: float | None = None
    raw: str = ""
    parse_error: str | None = None


def answer(pair: Pair, arm: Arm) -> Answer:
    result: ArmResult | None = pair.arm(arm)
    if result is None:
        return Answer(arm, present=False, error=pair.mirror_skipped or "no answer recorded")
    shown = Answer(
        arm,
        present=True,
        status=result.status,
        error=result.error,
        stream=result.stream,
        latency_s=result.latency_s,
        ttft_s=result.ttft_s,
        itl_mean_s=result.itl_mean_s,
        raw=result.body,
    )
    if not result.ok:
        return shown
    try:
        parsed = parse_response(result)
    except RecordError as exc:
        shown.parse_error = str(exc)
        return shown
    shown.text = parsed.text
    shown.tool_calls = [
        orjson.dumps(call, option=orjson.OPT_INDENT_2).decode()
        for calls in parsed.tool_calls
        for call in calls
    ]
    shown.embeddings = parsed.embeddings
    return shown


def prompt_text(pair: Pair) -> str:
    """The request's last user message (or prompt, or input), for the reviewer to read."""
    try:
        request = pair.request_json()
    except RecordError:
        return pair.request
    messages = request.get("messages")
    if isinstance(messages, list) and messages:
        last = messages[-1]
        if isinstance(last, dict):
            content = last.get("content")
            return content if isinstance(content, str) else orjson.dumps(content).decode()
    for key in ("prompt", "input"):
        if key in request:
            value = request[key]
            return value if isinstance(value, str) else orjson.dumps(value).decode()
    return pair.request


@dataclass(frozen=True)
class FieldDiff:
    path: str
    control: str
    candidate: str

    @property
    def same(self) -> bool:
        return self.control == self.candidate


def _flatten(value: object, prefix: str, out: dict[str, str]) -> None:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            _flatten(item, f"{prefix}.{key}" if prefix else str(key), out)
    elif isinstance(value, list) and value:
        for i, item in enumerate(value):
            _flatten(item, f"{prefix}[{i}]", out)
    else:
        out[prefix or "$"] = orjson.dumps(value).decode()


def json_diff(control: str, candidate: str) -> list[FieldDiff] | None:
    """Field-by-field comparison when both answers are JSON objects or arrays; else None."""
    try:
        left, right = orjson.loads(control), orjson.loads(candidate)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(left, dict | list) or not isinstance(right, dict | list):
        return None
    a: dict[str, str] = {}
    b: dict[str, str] = {}
    _flatten(left, "", a)
    _flatten(right, "", b)
    return [FieldDiff(p, a.get(p, "—"), b.get(p, "—")) for p in sorted(a.keys() | b.keys())]


def _cosine(u: list[float], v: list[float]) -> float:
    dot = sum(x * y for x, y in zip(u, v, strict=False))
    norm = math.sqrt(sum(x * x for x in u)) * math.sqrt(sum(y * y for y in v))
    return dot / norm if norm else 0.0


def retrieval_ranks(embeddings: list[list[float]]) -> list[int]:
    """Rank (1 = nearest) of each input after the first by cosine to the first (the query).

    Plain Python: the proxy install has no numpy, and this ranks at most MAX_RANKED short lists.
    """
    if len(embeddings) < 2:
        return []
    query, docs = embeddings[0], embeddings[1:MAX_RANKED]
    scores = [_cosine(query, d) for d in docs]
    order = sorted(range(len(docs)), key=lambda i: -scores[i])
    ranks = [0] * len(docs)
    for rank, i in enumerate(order, start=1):
        ranks[i] = rank
    return ranks
