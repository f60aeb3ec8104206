"""The admin API's client for `tunegate experiments` and `tunegate status` (httpx, sync).

Where: ``--url``, else ``TUNEGATE_URL``, else http://127.0.0.1:8080. Which token: ``--token-file``,
else ``TUNEGATE_ADMIN_TOKEN``, else ``TUNEGATE_READ_TOKEN`` (reads only). The token is sent as a
bearer header and never printed. An error answer becomes :class:`AdminError` with the server's
message and the exit code: 2 for a request the API refused as invalid (400), 1 otherwise
(401, 403, 404, 409, 5xx, no answer).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

__all__ = ["AdminClient", "AdminError", "add_connection"]

DEFAULT_URL = "http://127.0.0.1:8080"

_HINTS = {
    401: "check the token (TUNEGATE_ADMIN_TOKEN, TUNEGATE_READ_TOKEN or --token-file)",
    403: "this needs the admin token, not the read-only one",
}


class AdminError(Exception):
    """What went wrong, in one line, and the exit code for it."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def add_connection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=None, help=f"the proxy (TUNEGATE_URL; {DEFAULT_URL})")
    parser.add_argument(
        "--token-file", type=Path, default=None, metavar="PATH",
        help="file holding the token (else TUNEGATE_ADMIN_TOKEN, then TUNEGATE_READ_TOKEN)",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def _token(path: Path | None) -> str | None:
    if path is not None:
        try:
            return path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise AdminError(
                f"cannot read the token file {path}: {type(exc).__name__}", 2
            ) from None
    return os.environ.get("TUNEGATE_ADMIN_TOKEN") or os.environ.get("TUNEGATE_READ_TOKEN")


class AdminClient:
    """One connection to the admin API; ``call`` returns the JSON body or raises AdminError."""

    def __init__(self, args: argparse.Namespace, timeout_s: float = 15.0) -> None:
        import httpx

        url = (args.url or os.environ.get("TUNEGATE_URL") or DEFAULT_URL).rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise AdminError(f"--url must start with http:// or https://, not {url!r}", 2)
        token = _token(args.token_file)
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.Client(base_url=url, headers=headers, timeout=timeout_s)
        self._url = url

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.close()

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise AdminError(f"no answer from {self._url}: {type(exc).__name__}", 1) from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.is_success:
            return body
        message = response.reason_phrase
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            message = str(body["error"].get("message", message))
        hint = _HINTS.get(response.status_code)
        text = f"{response.status_code}: {message}" + (f" ({hint})" if hint else "")
        raise AdminError(text, 2 if response.status_code == 400 else 1)
