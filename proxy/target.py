"""The upstream request target of a passed-through request, from the bytes the client sent.

The target is built from ASGI's ``raw_path`` and ``query_string`` (the bytes of the client's
request line), never from the percent-*decoded* ``path``: decoding ``%0D%0A`` or ``%20`` and
writing the result into an upstream request line is how one client request becomes two.

Path rules (each refusal is a 400 ``invalid_request_error`` with ``param: "path"``):

- The path starts with ``/v1/`` as written (``/%76%31/...`` is refused, not decoded).
- Only RFC 3986 path characters: letters, digits, ``-._~!$&'()*+,;=:@/`` and ``%XX``
  escapes with two hex digits. Everything else (raw spaces, non-ASCII bytes, ``\\``, ``"``,
  ``<>``, ``%`` without two hex digits) is refused.
- No escape of a control byte (``%00``-``%1F``, ``%7F``), of ``/`` (``%2F``) or of ``\\``
  (``%5C``): servers disagree on whether those split segments or end lines.
- No ``.`` or ``..`` segment, written or escaped (``%2e%2e``): the proxy does not resolve them
  and will not let the upstream do it for it (``/v1/../admin`` would leave ``/v1``).
- Any other escape is forwarded *as written*: ``%E2%82%AC`` stays ``%E2%82%AC`` and ``%3F`` or
  ``%23`` stay path characters, never a query or a fragment. Empty segments are kept.
- The query string is forwarded as written after the same character check (``?`` allowed).

Nothing is normalised: a target the proxy cannot forward byte for byte is refused.
"""

from __future__ import annotations

import re

from proxy.errors import BadRequest

__all__ = ["upstream_target"]

# RFC 3986 pchar (unreserved / pct-encoded / sub-delims / ":" / "@") and "/"
_PATH = re.compile(rb"/v1/(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-Fa-f]{2})*")
_QUERY = re.compile(rb"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9A-Fa-f]{2})*")
# escapes of control bytes, "/" and "\"
_FORBIDDEN_ESCAPE = re.compile(rb"%(?:[01][0-9A-Fa-f]|7[Ff]|2[Ff]|5[Cc])")
# a "." or ".." segment, each dot written or escaped
_DOT_SEGMENT = re.compile(rb"/(?:\.|%2[Ee]){1,2}(?=/|$)")


#: raw paths that passed the checks, with their forwarded form: clients send a handful of
#: paths, and three regex searches per passed-through request showed in profiles
_CHECKED: dict[bytes, str] = {}
_CHECKED_MAX = 1024


def upstream_target(raw_path: bytes, query: bytes) -> str:
    """The path (below ``/v1``) and query to forward for the client's bytes; BadRequest if unsafe.

    The upstream's client puts its base URL's path (e.g. ``/v1``) in front of the result.
    """
    path = _CHECKED.get(raw_path)
    if path is None:
        path = _checked_path(raw_path)
        if len(_CHECKED) < _CHECKED_MAX:  # bounded against clients that vary their paths
            _CHECKED[raw_path] = path
    if not query:
        return path
    if _QUERY.fullmatch(query) is None:
        raise BadRequest("the query string has characters the proxy does not forward", param="path")
    return path + "?" + query.decode("ascii")


def _checked_path(raw_path: bytes) -> str:
    """``raw_path`` without its leading ``/v1`` if it follows the rules above; else BadRequest."""
    if _PATH.fullmatch(raw_path) is None:
        raise BadRequest("the request path has characters the proxy does not forward", param="path")
    if _FORBIDDEN_ESCAPE.search(raw_path) is not None:
        raise BadRequest(
            "the request path escapes a control byte, '/' or '\\', which are not forwarded",
            param="path",
        )
    if _DOT_SEGMENT.search(raw_path) is not None:
        raise BadRequest("the request path has a '.' or '..' segment", param="path")
    return raw_path[3:].decode("ascii")  # without the leading /v1
