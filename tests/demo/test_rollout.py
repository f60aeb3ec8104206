"""The demo's A/B rounds on tiny real models: sticky users, feedback, applied decisions in Redis.

The experiment's state is put in the A/B stage at 50 % before the rounds, as the controller's
start_ab would, so the rounds after the first run with the simulated users: every served answer
gets one feedback record from the user it was served to, through the real proxy's
``POST /v1/feedback``, and each round ends with a decision the controller recorded.
"""

from __future__ import annotations

from typing import cast

import httpx
import redis.asyncio as aioredis
from pydantic import SecretStr
from rich.console import Console

from demo.generative import Prepared, traffic_items
from demo.progress import LineProgress
from demo.rollout import live_rounds
from demo.run import STATE_REFRESH_S, DemoOptions, _settings
from demo.stack import proxy_server
from proxy.config import LocalModelConfig, UpstreamConfig
from proxy.routing import hash_key
from tests.offline.pipeline_fixtures import tiny_pair
from tunegate import keys
from tunegate.records import Stage, decode_decision, decode_feedback, decode_pair
from tunegate.redis import RedisSettings
from tunegate.state import write_state

__all__ = ["tiny_pair"]


def _local(path, adapter=None) -> UpstreamConfig:
    return UpstreamConfig(
        local=LocalModelConfig(path=str(path), adapter=adapter, device="cpu", batch_window_ms=5.0)
    )


async def _fields(client: aioredis.Redis, stream: str) -> list[dict[bytes, bytes]]:
    entries = cast(list[tuple[bytes, dict[bytes, bytes]]], await client.xrange(stream))
    return [fields for _, fields in entries]


async def test_ab_rounds_send_sticky_users_whose_feedback_lands_with_the_served_arm(
    tmp_path, tiny_pair, redis_url
):
    base, lora = tiny_pair
    prepared = Prepared(
        experiment="support-triage-mixed",
        upstreams={"smollm2-base": _local(base), "smollm2-mixed": _local(base, str(lora))},
        items=traffic_items(3, 3),
        candidate=str(lora),
        reused=True,
        train_seconds=0.0,
        final_loss=None,
        max_tokens=4,
    )
    options = DemoOptions(workdir=tmp_path, offline=False, users=4)
    token = "demo-console-token-for-the-test"
    settings = _settings([prepared], options, RedisSettings(url=SecretStr(redis_url)), token)
    client = aioredis.Redis.from_url(redis_url)
    try:
        await write_state(
            client,
            prepared.experiment,
            stage=Stage.AB,
            ab_weight=0.5,
            mirror_rate=1.0,
            actor="test",
            reason="as start_ab would",
        )
        async with proxy_server(settings) as base_url:
            # the console the demo prints with --keep-open: /console/, behind the run's token
            console_url = f"{base_url.removesuffix('/v1')}/console/"
            async with httpx.AsyncClient() as http:
                refused = await http.get(console_url, follow_redirects=False)
                page = await http.get(console_url, headers={"authorization": f"Bearer {token}"})
            assert refused.status_code in (303, 307, 401), refused.text
            assert page.status_code == 200 and prepared.experiment in page.text
            progress = LineProgress(Console(record=True))
            (live,) = await live_rounds(
                settings,
                base_url,
                [prepared],
                client,
                progress,
                ab_rounds=2,
                users=4,
                concurrency=4,
                refresh_s=STATE_REFRESH_S,
            )
        name = prepared.experiment
        pairs = [decode_pair(f) for f in await _fields(client, keys.pairs(name))]
        feedback = [decode_feedback(f) for f in await _fields(client, keys.feedback(name))]
        decisions = [decode_decision(f) for f in await _fields(client, keys.decisions(name))]
    finally:
        await client.aclose()
    rounds = len(live.decisions)
    assert rounds >= 2  # the first round, then at least one with users
    assert [d.action for d in decisions] == [d.action for d in live.decisions]
    assert live.sent == len(pairs) == 6 * rounds
    with_users = [p for p in pairs if p.user_key_hash is not None]
    assert len(with_users) == 6 * (rounds - 1)
    # no fresh items given (Prepared.rounds empty): each A/B round sends the shadow's again
    assert {p.request for p in with_users} <= {p.request for p in pairs if not p.user_key_hash}
    # one feedback per answer served to a user, with that user and the arm that served it
    assert live.feedback == len(feedback) == len(with_users)
    served = {p.id: (p.served_arm, p.user_key_hash) for p in with_users}
    for record in feedback:
        assert served[record.pair_id] == (record.arm, record.user_key_hash)
        assert record.label == "satisfied" and record.value in (0.0, 1.0)
    # sticky: one arm per user within the stage (the weight did not change)
    users = {hash_key(f"demo-user-{k:03d}") for k in range(4)}
    assert {p.user_key_hash for p in with_users} <= users
    for user in users:
        assert len({p.served_arm for p in with_users if p.user_key_hash == user}) <= 1
