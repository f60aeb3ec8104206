"""CSRF tokens for the console's forms: one random token per browser session, double-submitted.

Every page the console renders reads the session's token from the ``tunegate_csrf`` cookie
(HttpOnly, SameSite=Strict), or draws a new one and sets it, and puts it in a hidden ``csrf``
field of each form it shows. Every POST (log in, log out, a label) must send the field, and it
must equal the cookie (compared in constant time): another site can make a browser post a form
but can neither read the cookie nor guess the token, so its post answers 403. This sits beside
SameSite=Strict, which already keeps the session cookie off other sites' posts in the browsers
that honour it. A successful log-in draws a new token, so one planted before it is useless.

A script that sends a bearer header and no console cookie is not a browser session, and a
cross-site form cannot set that header: it needs no token.

Hand-written because it is a dozen lines on ``secrets`` and ``hmac.compare_digest``; the
packages for it (starlette-csrf, fastapi-csrf-protect) are not among our dependencies and
expect the token in a header that JavaScript sets, where these are plain HTML forms.
"""

from __future__ import annotations

import hmac
import re
import secrets

from fastapi import Request, Response

from proxy.console.auth import COOKIE
from proxy.errors import Forbidden

__all__ = ["CSRF_COOKIE", "FIELD", "check_csrf", "new_token", "session_token", "set_token"]

CSRF_COOKIE = "tunegate_csrf"
FIELD = "csrf"
_SHAPE = re.compile(r"^[A-Za-z0-9_-]{43}$")  # token_urlsafe(32)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def session_token(request: Request) -> tuple[str, bool]:
    """The session's token, and whether it was drawn now (then the response must set it)."""
    token = request.cookies.get(CSRF_COOKIE, "")
    if _SHAPE.match(token):
        return token, False
    return new_token(), True


def set_token(response: Response, request: Request, token: str) -> None:
    secure = request.url.scheme == "https"
    response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="strict", secure=secure)


def check_csrf(request: Request, form: dict[str, str]) -> None:
    """Forbidden unless the form's token is the session's (a bearer-only script needs none)."""
    if COOKIE not in request.cookies and "authorization" in request.headers:
        return
    cookie = request.cookies.get(CSRF_COOKIE, "")
    given = form.get(FIELD, "")
    if not (_SHAPE.match(cookie) and hmac.compare_digest(cookie.encode(), given.encode())):
        raise Forbidden(
            "the form's CSRF token is missing or out of date; reload the page and send it again"
        )
