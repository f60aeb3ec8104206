"""The web console: experiments, evidence plots, the pair browser and human labels.

:func:`install` mounts it on the proxy app under ``/console`` (pages in proxy/console/pages.py,
auth in auth.py, Redis reads in browse.py, answer views in view.py, plots in plots.py). A page
asked for without a valid token redirects to the login page; a script that sent a bearer
header gets the admin API's 401 instead.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI, Request, Response
from fastapi.responses import RedirectResponse

from proxy.console.auth import LoginRequired
from proxy.console.pages import router
from proxy.errors import ProxyError

__all__ = ["install"]


def install(app: FastAPI, render_error: Callable[[ProxyError], Response]) -> None:
    """Add the console's routes and its login redirect to ``app``.

    ``render_error`` is the app's ProxyError renderer, used for script callers.
    """

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> Response:
        if "authorization" in request.headers:
            return render_error(exc)
        return RedirectResponse("/console/login", status_code=303)

    app.include_router(router)
