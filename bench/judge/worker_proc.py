"""One benchmark worker process: drain the pairs in burst mode, print timings as JSON.

``python -m bench.judge.worker_proc CONFIG NAME [sdk|sdk-httpx|aiohttp]``: ``sdk`` (the
default) is the judge's own client (the `openai` SDK on its aiohttp transport), ``sdk-httpx``
the SDK on httpx, ``aiohttp`` the former hand-written client, the baseline.
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import asdict

import orjson

from cli.settings import load_settings
from judge.clients import JudgeClient
from judge.worker import JudgeWorker
from tunegate.redis import connect


async def main(config: str, name: str, kind: str) -> None:
    settings = load_settings(config)
    endpoint = settings.judge.endpoint
    client: JudgeClient | None = None
    if kind == "aiohttp" and endpoint is not None:
        from bench.judge.aiohttp_client import AiohttpJudgeClient

        client = AiohttpJudgeClient(endpoint)
    elif kind == "sdk-httpx" and endpoint is not None:
        from judge.clients.http import HttpJudgeClient

        httpx_endpoint = endpoint.model_copy(update={"http_transport": "httpx"})
        client = await HttpJudgeClient(httpx_endpoint).__aenter__()
    try:
        async with (
            connect(settings.redis) as redis,
            JudgeWorker(settings.judge, settings.experiments, redis, name=name,
                        client=client) as worker,
        ):  # fmt: skip
            started = time.time()
            stats = await worker.run(until_idle=True)
            ended = time.time()
    finally:
        if client is not None:
            await client.aclose()
    print(orjson.dumps({"start": started, "end": ended, **asdict(stats)}).decode())


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else "sdk"))
