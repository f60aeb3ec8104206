"""Who may use the console: the admin token, typed once on the login page, kept in a cookie.

The cookie holds the token itself (HttpOnly, SameSite=Strict, Secure when served over https), so
the check is the admin API's own (proxy.routes.auth.role_for_token, constant time) and nothing
is stored server-side. SameSite=Strict keeps other sites' forms from posting with it, and every
form also carries a per-session CSRF token (proxy/console/csrf.py).
A bearer header works too, so scripts can read the pages.

Two dependencies, one per kind of route: ``Reader`` for pages that only read (the admin or the
read-only token), ``Writer`` for the label form (the admin token; the read-only one gets 403).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from proxy.errors import Forbidden, Unauthorized
from proxy.routes.auth import Role, role_for_token
from proxy.routes.deps import runtime
from proxy.runtime import Runtime

__all__ = ["COOKIE", "LoginRequired", "Reader", "Writer", "given_token", "reader", "writer"]

COOKIE = "tunegate_console"


class LoginRequired(Unauthorized):
    """No valid token: a page answers with a redirect to the login page (proxy/console)."""


def given_token(request: Request) -> str:
    """The token the browser or script sent: the console cookie, else a bearer header."""
    cookie = request.cookies.get(COOKIE)
    if cookie:
        return cookie
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip(" ") if scheme.lower() == "bearer" else ""


def reader(request: Request, rt: Annotated[Runtime, Depends(runtime)]) -> Runtime:
    """The runtime for a page that only reads."""
    if role_for_token(rt, given_token(request)) is None:
        raise LoginRequired("log in with the admin or the read-only token to read the console")
    return rt


def writer(request: Request, rt: Annotated[Runtime, Depends(runtime)]) -> Runtime:
    """The runtime for a form that writes (human labels)."""
    role = role_for_token(rt, given_token(request))
    if role is None:
        raise LoginRequired("log in with the admin token to label pairs")
    if role is not Role.ADMIN:
        raise Forbidden("the read-only token cannot label pairs; log in with the admin token")
    return rt


Reader = Annotated[Runtime, Depends(reader)]
Writer = Annotated[Runtime, Depends(writer)]
