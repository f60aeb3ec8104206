"""One benchmark worker process: drain the pairs in burst mode, print timings as JSON."""

from __future__ import annotations

import asyncio
import sys
import time

import orjson

from cli.settings import load_settings
from judge.worker import JudgeWorker
from tunegate.redis import connect


async def main(config: str, name: str) -> None:
    settings = load_settings(config)
    async with (
        connect(settings.redis) as redis,
        JudgeWorker(settings.judge, settings.experiments, redis, name=name) as worker,
    ):
        started = time.time()
        stats = await worker.run(until_idle=True)
        ended = time.time()
    print(orjson.dumps({"start": started, "end": ended, "verdicts": stats.verdicts}).decode())


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
