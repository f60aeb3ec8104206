"""Judge test fixtures: an async Redis client on the session server and an HTTP judge double."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis

from bench.servers.judge_double import JudgeDouble
from cli.server import serve_in_thread


@pytest.fixture
async def aredis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def judge_double() -> JudgeDouble:
    return JudgeDouble()


@pytest.fixture
def judge_url(judge_double: JudgeDouble) -> Iterator[str]:
    with serve_in_thread(judge_double.app) as url:
        yield url
