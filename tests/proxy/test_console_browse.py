"""proxy/console/browse.py on real Redis: late verdicts are found, within the documented bound."""

from __future__ import annotations

import redis.asyncio as aioredis

from proxy.console import browse
from tests.proxy.console_data import make_pair, make_verdict
from tunegate import keys
from tunegate.records import encode


async def _write(redis_url: str, lag: int) -> aioredis.Redis:
    """Pair 1, then ``lag`` verdicts of other pairs, then pair 1's verdict."""
    client = aioredis.Redis.from_url(redis_url)
    pair = make_pair("e", 1)
    await client.xadd(keys.pairs("e"), encode(pair), id="1000-0")  # type: ignore[arg-type]  # redis-py's field type is invariant
    for i in range(lag):
        other = make_verdict(make_pair("e", 100 + i), 100 + i)
        await client.xadd(keys.verdicts("e"), encode(other), id=f"{2000 + i}-0")  # type: ignore[arg-type]  # as above
    await client.xadd(keys.verdicts("e"), encode(make_verdict(pair, 1)), id="900000-0")  # type: ignore[arg-type]  # as above
    return client


async def test_a_verdict_written_after_hundreds_of_others_is_attached(redis_url: str) -> None:
    client = await _write(redis_url, 3 * browse.VERDICT_CHUNK + 7)
    try:
        found = await browse.page(client, "e", browse.Filters())
    finally:
        await client.aclose()
    (row,) = found.rows
    assert row.primary is not None and row.primary.pair_id == "p00001"


async def test_a_verdict_beyond_the_scan_bound_reads_as_not_judged(redis_url: str) -> None:
    client = await _write(redis_url, browse.VERDICT_SCAN)
    try:
        (row,) = (await browse.page(client, "e", browse.Filters())).rows
    finally:
        await client.aclose()
    assert row.verdicts == [] and row.winner is None
