"""The pair index (tunegate/pair_index.py) against the scan it replaces, on real Redis.

Every filter combination returns exactly the pairs, verdicts and winners the scan returns; paging
while pairs arrive misses and repeats nothing; trimming the stream trims the index; a folder
cancelled anywhere leaves an index that a new folder completes to the same answers.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
from collections.abc import AsyncIterator
from typing import cast

import pytest
import redis.asyncio as aioredis

from proxy.console import browse
from tests.proxy.index_data import START_MS, append
from tunegate import keys, pair_index
from tunegate.records import Winner

E = "idx"
Entries = list[tuple[bytes, dict[bytes, bytes]]]
N = 300
WINDOW = (START_MS + 60_000, START_MS + 200_000)


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    found = aioredis.Redis.from_url(redis_url)
    yield found
    await found.aclose()


def _combos() -> list[browse.Filters]:
    out = []
    for cat, win, dis, err, window in itertools.product(
        [None, "task", "probe", "absent"],
        [None, *Winner],
        [False, True],
        [False, True],
        [None, WINDOW],
    ):
        since, until = window or (None, None)
        out.append(browse.Filters(cat, win, dis, err, since, until))
    return out


Seen = list[tuple[str, list[str], str | None]]


def _seen(rows: list[browse.PairRow]) -> Seen:
    return [
        (r.stream_id, [v.scorer for v in r.verdicts], r.winner.value if r.winner else None)
        for r in rows
    ]


async def _scan(client: aioredis.Redis, filters: browse.Filters) -> Seen:
    found = await browse.scan_page(client, E, filters, limit=10**6, scan_limit=10**6)
    assert found.next_cursor is None
    return _seen(found.rows)


async def _indexed(client: aioredis.Redis, filters: browse.Filters, limit: int = 7) -> Seen:
    rows: list[browse.PairRow] = []
    cursor = None
    for _ in range(1000):
        found = await browse.page(client, E, filters, cursor=cursor, limit=limit)
        assert found.indexed == bool(filters.index_sets) and not found.behind
        rows += found.rows
        cursor = found.next_cursor
        if cursor is None:
            return _seen(rows)
    raise AssertionError("paging did not end")


async def _all_agree(client: aioredis.Redis) -> int:
    matched = 0
    for filters in _combos():
        expected = await _scan(client, filters)
        assert await _indexed(client, filters) == expected, filters
        matched += len(expected)
    return matched


async def test_every_filter_combination_returns_what_the_scan_returns(
    client: aioredis.Redis,
) -> None:
    await append(client, E, 0, N)
    # folded in small pages: a later verdict moves a stored pair between winner sets
    assert await pair_index.PairIndex(client, E, page=13).catch_up()
    assert await _all_agree(client) > 1000  # the combinations are not all empty
    rare = browse.Filters("probe", Winner.CONTROL, disagreement=True)
    assert 0 < len(await _scan(client, rare)) < 10  # a rare one is in the stream


async def test_paging_while_pairs_arrive_misses_and_repeats_nothing(
    client: aioredis.Redis,
) -> None:
    await append(client, E, 0, 200)
    filters = browse.Filters(category="task")
    expected = [sid for sid, _, _ in await _scan(client, filters)]
    got: list[str] = []
    cursor = None
    for n in itertools.count():
        found = await browse.page(client, E, filters, cursor=cursor, limit=9)
        assert found.indexed
        got += [r.stream_id for r in found.rows]
        cursor = found.next_cursor
        if cursor is None:
            break
        await append(client, E, 200 + 20 * n, 20)  # newer pairs, indexed by the next page
    assert got == expected and len(expected) > 40


async def test_trimming_the_stream_trims_the_index(client: aioredis.Redis) -> None:
    await append(client, E, 0, N)
    index = pair_index.PairIndex(client, E, page=64)
    assert await index.catch_up()
    await client.xtrim(keys.pairs(E), maxlen=100, approximate=False)
    assert await index.catch_up()
    floor = pair_index.lex(cast(Entries, await client.xrange(keys.pairs(E), count=1))[0][0])
    sets = ["order", "c:task", "c:probe", "errors", "disagree", "w:tie", "w:control"]
    for part in sets:
        members = cast(list[bytes], await client.zrange(keys.pair_index(E, part), 0, -1))
        assert members and all(m.decode() >= floor for m in members), part
    assert await client.zcard(keys.pair_index(E, "order")) == 100
    readable = await client.hlen(keys.pair_index(E, "state"))
    assert 95 <= readable < 100  # the unreadable entries have no state
    assert await _all_agree(client) > 0


_FOLDER = """
import asyncio, sys
import redis.asyncio as aioredis
from tunegate.pair_index import PairIndex

async def main() -> None:
    client = aioredis.Redis.from_url(sys.argv[1])
    index = PairIndex(client, sys.argv[2], page=7)
    while await index.fold_page():
        await asyncio.sleep(0.01)

asyncio.run(main())
"""


async def test_a_killed_folder_is_resumed_from_its_cursors(
    client: aioredis.Redis, redis_url: str
) -> None:
    await append(client, E, 0, N)
    folder = await asyncio.create_subprocess_exec(sys.executable, "-c", _FOLDER, redis_url, E)
    try:
        for _ in range(3000):
            if await client.hget(keys.pair_index(E, "meta"), "verdicts"):  # pages folded
                break
            await asyncio.sleep(0.005)
        folder.kill()  # SIGKILL, wherever it is
    finally:
        await folder.wait()
    folded = cast(bytes, await client.hget(keys.pair_index(E, "meta"), "verdicts"))
    newest = cast(Entries, await client.xrevrange(keys.verdicts(E), count=1))[0][0]
    assert folded < newest  # killed part of the way
    assert await _all_agree(client) > 1000  # each page's catch-up resumes from the cursors
    for raw in cast(
        list[bytes], await client.hvals(keys.pair_index(E, "state"))
    ):  # no verdict folded twice
        verdicts = pair_index._State.load(raw).verdicts
        assert len(verdicts) == len(set(verdicts))


async def test_an_index_far_behind_is_not_trusted_the_scan_answers(
    client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    await append(client, E, 0, 1200)  # more than one fold of 1,000
    monkeypatch.setattr(browse, "CATCH_UP_PAGES", 1)
    filters = browse.Filters(category="probe")
    behind = await browse.page(client, E, filters)
    assert behind.behind and not behind.indexed and len(behind.rows) == 20
    for _ in range(4):  # each click folds one more page, until the index is at the end
        caught_up = await browse.page(client, E, filters)
        if caught_up.indexed:
            break
    assert caught_up.indexed and _seen(caught_up.rows) == _seen(behind.rows)
