"""The label page's sample is uniform over pairs, not over time: a burst is drawn as its share."""

from __future__ import annotations

import random

import redis.asyncio as aioredis

from proxy.console import browse
from tests.proxy.console_data import START, make_pair, make_verdict
from tunegate import keys, label_sample
from tunegate.records import encode

EXP = "exp-shadow"
SPARSE, BURST = 50, 450  # one pair a second for 50 s, then 450 pairs within one millisecond


async def _write_stream(client: aioredis.Redis) -> list[tuple[str, str]]:
    """(pair id, stream id) of every pair written, each with its judge verdict."""
    written = []
    pipe = client.pipeline(transaction=False)
    for i in range(SPARSE + BURST):
        pair = make_pair(EXP, i)
        ms, seq = (int((START + i) * 1000), 0) if i < SPARSE else (int((START + SPARSE) * 1000), i)
        sid = f"{ms}-{seq}"
        pipe.xadd(keys.pairs(EXP), encode(pair), id=sid)  # type: ignore[arg-type]  # redis-py's field type is invariant
        pipe.xadd(keys.verdicts(EXP), encode(make_verdict(pair, i)), id=f"{ms + 500}-{seq}")  # type: ignore[arg-type]  # as above
        written.append((pair.id, sid))
    await pipe.execute()
    return written


async def _sparse_share(client: aioredis.Redis, draws: int) -> tuple[float, set[str]]:
    rng = random.Random(7)
    sparse, samples = 0, set()
    for _ in range(draws):
        row, sample = await browse.draw_unlabelled(client, EXP, rng)
        assert row is not None and row.pair is not None
        sparse += int(row.pair.id.removeprefix("p")) < SPARSE  # pair ids are p00000, p00001, ...
        samples.add(sample)
    return sparse / draws, samples


async def test_draws_are_uniform_over_pairs_with_the_reservoir(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    written = await _write_stream(client)
    # without a reservoir (pairs judged before it existed): uniform in time, the burst is missed
    by_time, samples = await _sparse_share(client, 40)
    assert by_time > 0.8 and samples == {browse.SAMPLE_TIME}
    rng = random.Random(3)
    for pair_id, sid in written:  # what the judge worker does as it judges each pair
        await label_sample.offer(client, EXP, pair_id, sid, rng.random(), marker_seconds=600)
    by_pairs, samples = await _sparse_share(client, 120)
    # 50 of 500 pairs are in the sparse part: about 10 % of the draws land there
    assert 0.03 < by_pairs < 0.2, by_pairs
    assert samples == {browse.SAMPLE_RESERVOIR}
    await client.aclose()


async def test_the_reservoir_keeps_every_pair_with_the_same_chance(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    rng = random.Random(11)
    n, size = 2000, 100
    for i in range(n):
        await label_sample.offer(
            client, EXP, f"p{i}", f"{i + 1}-0", rng.random(), marker_seconds=600, size=size
        )
    await label_sample.offer(client, EXP, "p5", "6-0", 0.0, marker_seconds=600, size=size)
    kept, offered = await label_sample.members(client, EXP)
    assert offered == n and len(kept) == size  # the redelivered pair counted once
    early = sum(int(sid.split("-")[0]) <= n // 2 for sid in kept)
    # each pair is kept with chance size / n: about half the kept ones are from the first half
    assert 30 < early < 70, early
    await client.aclose()
