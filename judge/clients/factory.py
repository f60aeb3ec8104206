"""Build the judge client an endpoint describes: HTTP when it has a base_url, else in-process."""

from __future__ import annotations

from judge.clients import JudgeClient
from judge.config import JudgeEndpoint

__all__ = ["open_client"]


async def open_client(endpoint: JudgeEndpoint) -> JudgeClient:
    """An entered client; the caller closes it with ``aclose()``."""
    if endpoint.base_url is not None:
        from judge.clients.http import HttpJudgeClient

        return await HttpJudgeClient(endpoint).__aenter__()
    from judge.clients.local import LocalJudgeClient

    return await LocalJudgeClient(endpoint).__aenter__()
