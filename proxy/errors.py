"""The proxy's error tree; proxy/app.py renders each as an OpenAI error body with its status.

ProxyError (500)
├── BadRequest (400)
├── Unauthorized (401)
├── Forbidden (403, the read-only token on an admin write)
├── UnknownModel (404)
├── NotFound (404, a path or id the proxy does not know)
├── MethodNotAllowed (405, with Allow)
├── RequestTimeout (408, a head or body that did not arrive in time)
├── Conflict (409, a stale expected_version on a state change)
├── PayloadTooLarge (413)
├── HeadersTooLarge (431)
├── Overloaded (429, with Retry-After)
├── Unavailable (503, e.g. Redis down for feedback, admin API disabled)
└── UpstreamError (502)                 ``reason``: the word a Pair and the metrics record
    ├── UpstreamTimeout (504)          timeout: no complete answer within the deadline
    ├── UpstreamUnavailable (502)      connect: no connection could be opened
    ├── UpstreamReset (502)            reset: the server closed or reset it mid-exchange
    └── UpstreamProtocolError (502)    protocol: an answer the client's parser refuses

An upstream that answers with an error status is not an exception: its status, body and headers
are relayed to the client as they are, and the Pair records the arm's error as ``status``.
"""

from __future__ import annotations

import orjson

__all__ = [
    "BadRequest",
    "Conflict",
    "Forbidden",
    "HeadersTooLarge",
    "MethodNotAllowed",
    "NotFound",
    "Overloaded",
    "PayloadTooLarge",
    "ProxyError",
    "RequestTimeout",
    "Unauthorized",
    "Unavailable",
    "UnknownModel",
    "UpstreamError",
    "UpstreamProtocolError",
    "UpstreamReset",
    "UpstreamTimeout",
    "UpstreamUnavailable",
]


class ProxyError(Exception):
    """Base: an error the client sees as an OpenAI-style error body."""

    status = 500
    type = "server_error"
    code: str | None = None
    #: extra response headers (e.g. Allow on a 405)
    headers: tuple[tuple[bytes, bytes], ...] = ()

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param

    def body(self) -> bytes:
        """The OpenAI error body: ``{"error": {"message", "type", "param", "code"}}``."""
        error = {"message": self.message, "type": self.type, "param": self.param, "code": self.code}
        return orjson.dumps({"error": error})


class BadRequest(ProxyError):
    status = 400
    type = "invalid_request_error"


class Unauthorized(ProxyError):
    status = 401
    type = "authentication_error"


class Forbidden(ProxyError):
    status = 403
    type = "permission_error"


class UnknownModel(ProxyError):
    status = 404
    type = "invalid_request_error"
    code = "model_not_found"


class NotFound(ProxyError):
    status = 404
    type = "invalid_request_error"
    code = "not_found"


class MethodNotAllowed(ProxyError):
    status = 405
    type = "invalid_request_error"
    code = "method_not_allowed"

    def __init__(self, message: str, *, allow: str) -> None:
        super().__init__(message)
        self.headers = ((b"allow", allow.encode("latin-1")),)


class RequestTimeout(ProxyError):
    status = 408
    type = "invalid_request_error"
    code = "request_timeout"


class Conflict(ProxyError):
    status = 409
    type = "invalid_request_error"
    code = "conflict"


class PayloadTooLarge(ProxyError):
    status = 413
    type = "invalid_request_error"
    code = "payload_too_large"


class HeadersTooLarge(ProxyError):
    status = 431
    type = "invalid_request_error"
    code = "request_header_fields_too_large"


class Overloaded(ProxyError):
    status = 429
    type = "rate_limit_error"
    code = "overloaded"

    def __init__(self, message: str, *, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(ProxyError):
    status = 503
    type = "server_error"
    code = "unavailable"


class UpstreamError(ProxyError):
    status = 502
    type = "upstream_error"
    reason = "connect"  # ArmResult.error and the upstream_errors_total reason label


class UpstreamTimeout(UpstreamError):
    status = 504
    code = "upstream_timeout"
    reason = "timeout"


class UpstreamUnavailable(UpstreamError):
    status = 502
    code = "upstream_unavailable"


class UpstreamReset(UpstreamUnavailable):
    code = "upstream_reset"
    reason = "reset"


class UpstreamProtocolError(UpstreamUnavailable):
    code = "upstream_protocol_error"
    reason = "protocol"
