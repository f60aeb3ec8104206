"""Records for the scale bench: full pairs and verdicts as the proxy and judge write them, and
compact history rows as the incremental store holds them.

A full pair has a 1 KB request and two 1 KB answers (about 4.5 KB encoded, the issue's
measurement); its verdict is one pairwise score. History beyond what a stream retains is written
as the packed rows the fold would have produced from such records (analysis/evidence_columns.py),
so 10^7 judged pairs fit in memory: about 71 bytes a judged pair instead of 4.5 KB.
"""

from __future__ import annotations

import json

import numpy as np
import redis.asyncio as aioredis

from analysis.evidence_columns import JUDGE_ROW, PAIR_ROW
from analysis.evidence_store import EvidenceStore
from tunegate import keys
from tunegate.experiments import Policy
from tunegate.records import Arm, ArmResult, Endpoint, Pair, Verdict, encode

__all__ = ["CATEGORIES", "write_full", "write_history"]

CATEGORIES = ("task", "probe", "math")
_REQUEST = json.dumps({"model": "m", "messages": [{"role": "user", "content": "q" * 1000}]})


def _answer(rng: np.random.Generator, name: str) -> ArmResult:
    completion = int(rng.integers(50, 300))
    body = json.dumps(
        {
            "id": "x",
            "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "a" * 1000}}],
            "usage": {"prompt_tokens": 250, "completion_tokens": completion},
        }
    )
    return ArmResult(
        upstream=name, model=name, status=200, body=body,
        latency_s=float(rng.gamma(4, 0.05)), prompt_tokens=250, completion_tokens=completion,
    )  # fmt: skip


async def write_full(
    client: aioredis.Redis, experiment: str, n: int, *, prefix: str, start: float, seed: int
) -> None:
    """``n`` full pairs, each with one pairwise verdict, XADDed in pipelined chunks."""
    rng = np.random.default_rng(seed)
    for base in range(0, n, 1000):
        pipe = client.pipeline(transaction=False)
        for i in range(base, min(n, base + 1000)):
            pid, t = f"{prefix}{i}", start + i * 0.01
            category = CATEGORIES[i % 3]
            pair = Pair(
                id=pid, experiment=experiment, time=t, endpoint=Endpoint.CHAT, request=_REQUEST,
                served_arm=Arm.CONTROL, control=_answer(rng, "base"),
                candidate=_answer(rng, "tuned"), category=category,
            )  # fmt: skip
            score = float(rng.choice([0.0, 0.5, 1.0], p=[0.35, 0.2, 0.45]))
            verdict = Verdict(
                pair_id=pid, experiment=experiment, scorer="pairwise", judge_version="1",
                time=t + 0.005, score=score, category=category,
            )  # fmt: skip
            pipe.xadd(keys.pairs(experiment), encode(pair))  # type: ignore[arg-type]
            pipe.xadd(keys.verdicts(experiment), encode(verdict))  # type: ignore[arg-type]
        await pipe.execute()


async def write_history(
    client: aioredis.Redis,
    experiment: str,
    n: int,
    start: float,
    *,
    policy: Policy | None = None,
    keep_rows: bool = True,
) -> None:
    """``n`` judged pairs of history, imported into the store as the rows a fold makes.

    With ``policy`` the store's decision state is built from them in bulk (each chunk one page
    of the same update the fold runs); ``keep_rows=False`` writes the state only (10^7: the
    look does not need the rows, and they would take about 0.7 GB of Redis).
    """
    rng = np.random.default_rng(7)
    store = EvidenceStore(client, experiment, policy=policy, stage=(0.0, 0.0))
    chunk = 1_000_000
    for base in range(0, n, chunk):
        m = min(chunk, n - base)
        t = start + (base + np.arange(m)) * 0.01
        judged = np.zeros(m, dtype=JUDGE_ROW)
        judged["time"] = t + 0.005
        judged["score"] = rng.choice([0.0, 0.5, 1.0], m, p=[0.35, 0.2, 0.45])
        judged["candidate"] = judged["control"] = np.nan
        judged["category"] = (base + np.arange(m)) % 3
        judged["scorer"] = 3
        pairs = np.zeros(m, dtype=PAIR_ROW)
        pairs["time"] = t
        pairs["lat_control"] = rng.gamma(4, 0.05, m)
        pairs["lat_candidate"] = rng.gamma(4, 0.05, m)
        pairs["tok_control"] = rng.integers(50, 300, m)
        pairs["tok_candidate"] = rng.integers(50, 300, m)
        await store.import_rows(pairs, judged, [*CATEGORIES, "pairwise"], keep_rows=keep_rows)
