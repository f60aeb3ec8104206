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

__all__ = [
    "LABEL_PREFIX",
    "RequestFacts",
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


def parse_body(raw: bytes) -> dict[str, object]:
    """The request body as a JSON object, or BadRequest naming what is wrong."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    return body


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
