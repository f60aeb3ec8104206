"""Read a client's request once: model, stream flag, sticky key, category, reference and labels.

The body is parsed once with orjson; everything the proxy needs is taken from that parse and the
headers here, so no other module parses the request again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import orjson

from proxy.errors import BadRequest
from proxy.routing import hash_key
from tunegate.experiments import ExperimentConfig
from tunegate.records import Endpoint

__all__ = [
    "LABEL_PREFIX",
    "RequestFacts",
    "check_request",
    "experiment_facts",
    "forward_headers",
    "parse_body",
]

#: Headers ``x-tunegate-label-<name>: <value>`` become Pair.labels[name].
LABEL_PREFIX = "x-tunegate-label-"

# Headers not forwarded upstream: hop-by-hop, recomputed, or ours.
_DROP = frozenset(
    {
        "host",
        "content-length",
        "connection",
        "keep-alive",
        "transfer-encoding",
        "te",
        "upgrade",
        "expect",
        "accept-encoding",
        "proxy-authorization",
        "proxy-connection",
    }
)


def parse_body(raw: bytes, endpoint: Endpoint | None = None) -> dict[str, object]:
    """The request body as a JSON object, or BadRequest naming what is wrong.

    With ``endpoint``, also the fields every OpenAI-compatible server needs in the right shape
    (:func:`check_request`), so a malformed request is refused here and never reaches an arm.
    """
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    if endpoint is not None:
        check_request(endpoint, body)
    return body


def _is_tokens(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(type(t) is int for t in value)


def _prompt_like(value: object) -> bool:
    """A string, a non-empty list of strings, token ids, or lists of token ids."""
    if isinstance(value, str):
        return True
    if not isinstance(value, list) or not value:
        return False
    return (
        all(isinstance(v, str) for v in value) or _is_tokens(value) or all(map(_is_tokens, value))
    )


def _message_error(message: object) -> str | None:
    if not isinstance(message, dict):
        return "must be an object"
    role = message.get("role")
    if not isinstance(role, str) or not role:
        return "needs a 'role' string"
    content = message.get("content")
    if content is None or isinstance(content, str):
        return None
    if not isinstance(content, list) or not all(
        isinstance(part, dict) and isinstance(part.get("type"), str) for part in content
    ):
        return "has 'content' that is not a string, null or a list of typed parts"
    return None


def check_request(endpoint: Endpoint, body: Mapping[str, object]) -> None:
    """BadRequest (with ``param``) unless the endpoint's required fields have their OpenAI shape.

    ``model`` a non-empty string; chat: ``messages`` a non-empty list of objects with a
    ``role`` string and ``content`` a string, null or list of typed parts; completions:
    ``prompt``; embeddings: ``input`` (a string, or a non-empty list of strings, token ids or
    lists of them); ``stream`` a boolean.
    Other fields are the upstream's to judge: the proxy does not track every model's options.
    """
    model = body.get("model")
    if not isinstance(model, str) or not model:  # first, as the hot path checked it before
        raise BadRequest("'model' is required and must be a non-empty string", param="model")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise BadRequest("'stream' must be a boolean", param="stream")
    if endpoint is Endpoint.CHAT:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise BadRequest("'messages' must be a non-empty array", param="messages")
        for i, message in enumerate(messages):
            # the usual message (a role and string content) without a call per message
            if type(message) is dict and type(message.get("content")) is str:
                role = message.get("role")
                if type(role) is str and role:
                    continue
            problem = _message_error(message)
            if problem is not None:
                raise BadRequest(f"messages[{i}] {problem}", param=f"messages[{i}]")
    elif endpoint is Endpoint.COMPLETIONS:
        if not _prompt_like(body.get("prompt")):
            raise BadRequest("'prompt' must be a string or an array of them", param="prompt")
    elif not _prompt_like(body.get("input")):
        raise BadRequest("'input' must be a string or a non-empty array", param="input")


def forward_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The client's headers as sent upstream (credentials included, ours and hop-by-hop not)."""
    out = {k: v for k, v in headers.items() if k not in _DROP and not k.startswith("x-tunegate-")}
    out["content-type"] = "application/json"
    return out


@dataclass(slots=True)
class RequestFacts:
    """What the pair records about a request besides its body."""

    user_key_hash: str | None = None
    category: str | None = None
    reference: str | None = None
    labels: dict[str, str] = field(default_factory=dict)


def _pick(source: str, body: Mapping[str, object], headers: Mapping[str, str]) -> str | None:
    """A value named by ``header:<name>``, ``metadata:<key>`` or ``user``; None if absent."""
    if source.startswith("header:"):
        return headers.get(source[7:].lower())
    if source.startswith("metadata:"):
        metadata = body.get("metadata")
        value = metadata.get(source[9:]) if isinstance(metadata, dict) else None
        return None if value is None else str(value)
    if source == "user":
        user = body.get("user")
        return None if user is None else str(user)
    return None


def experiment_facts(
    cfg: ExperimentConfig, body: Mapping[str, object], headers: Mapping[str, str]
) -> RequestFacts:
    """Sticky key (hashed), category, reference and labels per the experiment's extractors."""
    key = _pick(cfg.sticky_key, body, headers)
    labels = {
        k[len(LABEL_PREFIX) :]: v
        for k, v in headers.items()
        if k.startswith(LABEL_PREFIX) and len(k) > len(LABEL_PREFIX)
    }
    return RequestFacts(
        user_key_hash=hash_key(key) if key else None,
        category=_pick(cfg.category_from, body, headers),
        reference=_pick(cfg.reference_from, body, headers),
        labels=labels,
    )
