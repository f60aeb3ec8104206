"""A varied stream for the pair index tests: categories, failures, several scorers, late verdicts.

Pair i (stream id ``START_MS + 1000 i``) is in "task", "probe" or no category; about one in eight
has a failed arm and a few entries are unreadable. Each readable pair gets 0 to 3 verdicts from
"pairwise", "exact" and "rouge" with any winner (or none), some with the orders disagreeing,
written within two seconds of the pair, so the scan's forward verdict read finds every one and
the index must agree with it exactly, including a later pairwise verdict outranking an earlier one.
"""

from __future__ import annotations

import random
from typing import cast

import redis.asyncio as aioredis

from tests.proxy.console_data import make_pair, make_verdict
from tunegate import keys
from tunegate.records import Pair, Verdict, Winner, encode

START_MS = 1_800_000_000_000
SCORERS = ("pairwise", "exact", "rouge")
Entries = list[tuple[bytes, dict[bytes, bytes]]]
WINNERS = (Winner.CANDIDATE, Winner.CONTROL, Winner.TIE, None)


def _pair(experiment: str, i: int, rng: random.Random) -> Pair:
    base = make_pair(experiment, i)
    category = rng.choice(["task", "probe", None])
    failed = rng.random() < 0.125
    control = base.control
    if failed and control is not None:
        control = control.model_copy(update={"status": None, "error": "timeout", "body": ""})
    elif control is not None:
        control = control.model_copy(update={"status": 200, "error": None})
    return base.model_copy(update={"category": category, "control": control})


def _verdicts(pair: Pair, i: int, rng: random.Random) -> list[tuple[int, Verdict]]:
    out = []
    for k in range(rng.choice([0, 1, 1, 2, 3])):
        winner = rng.choice(WINNERS)
        verdict = make_verdict(pair, i).model_copy(
            update={
                "scorer": rng.choice(SCORERS),
                "winner": winner,
                "inconsistent": rng.random() < 0.15,
                "time": pair.time + 0.1 + k * 0.3 + rng.random(),
            }
        )
        out.append((rng.randrange(100, 2000), verdict))
    return out


async def append(
    client: aioredis.Redis, experiment: str, first: int, n: int, seed: int = 7
) -> list[str]:
    """Write pairs ``first`` .. ``first + n - 1`` and their verdicts; the pairs' stream ids."""
    rng = random.Random(seed + first)
    ids = []
    pending: list[tuple[int, Verdict]] = []
    newest = cast(Entries, await client.xrevrange(keys.verdicts(experiment), count=1))
    last_verdict = int(newest[0][0].split(b"-")[0]) if newest else 0
    async with client.pipeline(transaction=False) as pipe:
        for i in range(first, first + n):
            ms = START_MS + 1000 * i
            due = sorted(((at, v) for at, v in pending if at <= ms), key=lambda p: p[0])
            pending = [(at, v) for at, v in pending if at > ms]
            for at, verdict in due:
                last_verdict = max(at, last_verdict + 1)
                pipe.xadd(keys.verdicts(experiment), encode(verdict), id=f"{last_verdict}-0")  # type: ignore[arg-type]  # redis-py's field type is invariant
            sid = f"{ms}-0"
            ids.append(sid)
            if i % 37 == 5:
                pipe.xadd(keys.pairs(experiment), {"v": "2", "json": "{not json"}, id=sid)
                continue
            pair = _pair(experiment, i, rng)
            pipe.xadd(keys.pairs(experiment), encode(pair), id=sid)  # type: ignore[arg-type]  # as above
            pending += [(ms + delay, v) for delay, v in _verdicts(pair, i, rng)]
            if i % 53 == 7:
                last_verdict = max(ms, last_verdict + 1)
                pipe.xadd(
                    keys.verdicts(experiment), {"v": "1", "json": "[]"}, id=f"{last_verdict}-0"
                )
        for at, verdict in sorted(pending, key=lambda p: p[0]):
            last_verdict = max(at, last_verdict + 1)
            pipe.xadd(keys.verdicts(experiment), encode(verdict), id=f"{last_verdict}-0")  # type: ignore[arg-type]  # as above
        await pipe.execute()
    return ids
