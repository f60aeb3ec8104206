"""Relay a request unchanged to the passthrough upstream: unknown models and other /v1/* paths."""

from __future__ import annotations

from collections.abc import Mapping

from proxy.asgi import Receive, Scope, Send, read_body, send_response, start_response
from proxy.errors import MethodNotAllowed, NotFound, UnknownModel, UpstreamError
from proxy.extract import forward_headers
from proxy.runtime import Runtime
from proxy.target import upstream_target

__all__ = ["POST_ONLY", "passthrough"]

#: The hot path's endpoints (proxy/routes/openai.py): another method on them is a 405, never
#: passed through.
POST_ONLY = frozenset({"/v1/chat/completions", "/v1/completions", "/v1/embeddings"})


async def passthrough(
    rt: Runtime,
    scope: Scope,
    receive: Receive,
    send: Send,
    headers: Mapping[str, str],
    raw: bytes | None,
    model: str | None,
) -> None:
    """Send the request to ``proxy.passthrough_upstream`` as it came; 404 when none is set.

    POST answers are relayed chunk by chunk (so streams stay streams); other methods whole. The
    upstream's headers are relayed as on the experiment routes (``relayable``: Retry-After,
    x-request-id, rate-limit headers; hop-by-hop and framing ones are not).
    """
    if scope["method"] != "POST" and scope["path"] in POST_ONLY:
        raise MethodNotAllowed(f"{scope['method']} is not allowed on {scope['path']}", allow="POST")
    name = rt.config.passthrough_upstream
    if name is None:
        if model is not None:
            raise UnknownModel(f"The model '{model}' does not exist", param="model")
        raise NotFound(f"Unknown path {scope['path']}")
    upstream = rt.upstreams[name]
    timeout_s = rt.upstream_configs[name].timeout_seconds
    # the client's bytes, never the decoded path (proxy/target.py states the rules)
    path = upstream_target(scope.get("raw_path") or b"", scope.get("query_string") or b"")
    fwd = forward_headers(headers)
    if "content-type" in headers:
        fwd["content-type"] = headers["content-type"]
    method = scope["method"]
    if raw is None and method in ("POST", "PUT", "PATCH"):
        raw = await read_body(receive, headers.get("content-length"), rt.config.max_body_bytes)
    if method != "POST":
        response = await upstream.send(method, path, raw or b"", fwd, timeout_s)
        content_type = response.content_type.encode()
        await send_response(send, response.status, response.body, content_type, response.headers)
        return
    async with upstream.stream(path, raw or b"", fwd, timeout_s) as answer:
        await start_response(send, answer.status, answer.content_type.encode(), answer.headers)
        try:
            async for chunk in answer.chunks():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except UpstreamError:
            pass  # the status is sent: all that is left is to end the body early
    await send({"type": "http.response.body", "body": b"", "more_body": False})
