"""Who may use the admin API: the admin token may read and write, the read-only token only read.

``Reader`` and ``Writer`` are the FastAPI dependencies every admin route (and the console's pages)
declares. No token configured at all: 503 (the admin API is off); no or a wrong bearer token:
401; the read-only token on a write: 403. Tokens are compared in constant time (``hmac``) and
never logged or echoed.
"""

from __future__ import annotations

import hmac
from enum import StrEnum
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

from proxy.errors import Forbidden, Unauthorized, Unavailable
from proxy.routes.deps import runtime
from proxy.runtime import Runtime

__all__ = ["Reader", "Role", "Writer", "reader", "role_for_token", "role_of", "writer"]

# documents the scheme in the OpenAPI schema; the check itself is ours (auto_error off)
_bearer = HTTPBearer(auto_error=False, description="the admin or the read-only token")


class Role(StrEnum):
    ADMIN = "admin"
    READ = "read"


def _matches(given: bytes, token: SecretStr | None) -> bool:
    return token is not None and hmac.compare_digest(given, token.get_secret_value().encode())


def role_for_token(rt: Runtime, token: str) -> Role | None:
    """The role a bare token grants (None: neither token); 503 when no token is configured.

    The console's cookie carries the bare token, the admin API's header a bearer scheme.
    """
    admin, read = rt.config.admin_token, rt.config.read_token
    if admin is None and read is None:
        raise Unavailable("the admin API is disabled: no admin token is configured")
    raw = token.encode("latin-1", "replace")
    # both compared, so the time taken does not tell which one (nearly) matched
    is_admin, is_read = _matches(raw, admin), _matches(raw, read)
    if is_admin:
        return Role.ADMIN
    return Role.READ if is_read else None


def role_of(rt: Runtime, authorization: str) -> Role:
    """The role an ``Authorization`` header value grants; 401 / 503 as the module says."""
    scheme, _, given = authorization.partition(" ")
    role = role_for_token(rt, given.strip(" "))
    if scheme.lower() != "bearer" or role is None:  # RFC 9110: the scheme is caseless
        raise Unauthorized("a valid admin bearer token is required")
    return role


def reader(
    request: Request,
    rt: Annotated[Runtime, Depends(runtime)],
    _: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Runtime:
    """The runtime, for a request with either token."""
    role_of(rt, request.headers.get("authorization", ""))
    return rt


def writer(
    request: Request,
    rt: Annotated[Runtime, Depends(runtime)],
    _: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Runtime:
    """The runtime, for a request with the admin token; 403 for the read-only one."""
    if role_of(rt, request.headers.get("authorization", "")) is not Role.ADMIN:
        raise Forbidden("the read-only token cannot change anything; use the admin token")
    return rt


Reader = Annotated[Runtime, Depends(reader)]
Writer = Annotated[Runtime, Depends(writer)]
