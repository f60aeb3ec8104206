"""The judge worker offers each judged pair once to the console's uniform label sample."""

from __future__ import annotations

import asyncio
from typing import Any

from judge.worker import JudgeWorker
from tests.judge.helpers import EXP, make_pair, make_settings
from tunegate import keys, label_sample
from tunegate.records import encode


async def test_every_judged_pair_joins_the_label_sample_once(redis_url: str, aredis: Any) -> None:
    settings = make_settings(redis_url)
    pairs = [make_pair("4", "4") for _ in range(12)]  # identical answers: a shortcut verdict
    ids = [await aredis.xadd(keys.pairs(EXP), encode(p)) for p in pairs]
    await aredis.xadd(keys.pairs(EXP), encode(pairs[0]))  # the proxy re-sent one pair
    async with JudgeWorker(settings.judge, settings.experiments, aredis) as worker:
        await asyncio.wait_for(worker.run(until_idle=True), 30)
    kept, offered = await label_sample.members(aredis, EXP)
    assert offered == 12
    assert set(kept) == {i.decode() for i in ids}
