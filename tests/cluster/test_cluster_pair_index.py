"""The pair index on a Redis Cluster: its transaction and sets live in the experiment's slot.

The experiments' keys are on two different masters; the decide loop's fold (cli/decide.py) builds
each index and a filtered page from it equals the scan's.
"""

from __future__ import annotations

from pydantic import SecretStr
from redis.crc import key_slot

from analysis.controller import Controller
from cli.decide import _fold_pair_index
from proxy.console import browse
from tests.proxy.index_data import append
from tunegate import keys
from tunegate.records import Winner
from tunegate.redis import RedisSettings, connect

NAMES = ("alpha", "beta")  # slots 865 and 15419: two masters


async def test_the_index_folds_and_answers_on_a_cluster(cluster_url: str) -> None:
    assert key_slot(keys.pairs(NAMES[0]).encode()) != key_slot(keys.pairs(NAMES[1]).encode())
    settings = RedisSettings(url=SecretStr(cluster_url), cluster=True)
    async with connect(settings) as client:
        for name in NAMES:
            await append(client, name, 0, 120)
        controller = Controller([], client)
        for name in NAMES:
            await _fold_pair_index(controller, name)
            assert await client.hget(keys.pair_index(name, "meta"), "verdicts")  # all folded
            for filters in (
                browse.Filters(category="task", winner=Winner.CANDIDATE),
                browse.Filters(errors=True),
            ):
                scan = await browse.scan_page(client, name, filters, limit=10**6)
                found = await browse.page(client, name, filters, limit=10**6)
                assert found.indexed and not found.behind
                assert [r.stream_id for r in found.rows] == [r.stream_id for r in scan.rows]
                assert scan.rows
