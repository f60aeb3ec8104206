"""The offline result in Redis: recorded against the experiment and the candidate version.

``tunegate eval --record`` appends an ``OfflineResult`` to the experiment's ``offline`` stream
(tunegate/keys.py); the controller reads the latest one for the candidate version it is about
to expose (analysis/offline/gate_check.py).
"""

from __future__ import annotations

import contextlib
import hashlib

import redis.asyncio as aioredis

from tunegate import keys
from tunegate.errors import RecordError
from tunegate.records import OfflineResult, decode_offline_result, encode
from tunegate.redis import store_errors

__all__ = ["OFFLINE_MAXLEN", "latest_offline", "offline_result", "record_offline"]

OFFLINE_MAXLEN = 1000
_SCAN = 200  # newest entries looked at for one version


def offline_result(document: dict[str, object], report: bytes) -> OfflineResult:
    """The record of one evaluation document (report.json as written)."""
    regressions = document.get("regressions")
    reasons = document.get("reasons")
    needed = document.get("items_needed")
    return OfflineResult(
        experiment=str(document["name"]),
        candidate_version=str(document["candidate_version"]),
        outcome=str(document["outcome"]),
        reasons=[str(r) for r in reasons] if isinstance(reasons, list) else [],
        regressions=[str(r) for r in regressions] if isinstance(regressions, list) else [],
        items_needed=needed if isinstance(needed, int) else None,
        report_sha256=hashlib.sha256(report).hexdigest(),
    )


async def record_offline(client: aioredis.Redis, result: OfflineResult) -> None:
    with store_errors("record offline result"):
        await client.xadd(
            keys.offline(result.experiment),
            encode(result),  # type: ignore[arg-type]  # redis-py's field type is invariant
            maxlen=OFFLINE_MAXLEN,
            approximate=True,
        )


async def latest_offline(
    client: aioredis.Redis, experiment: str, version: str | None = None
) -> OfflineResult | None:
    """The newest result of ``experiment`` (for ``version`` when given); bad entries skipped."""
    with store_errors("read offline results"):
        entries = await client.xrevrange(keys.offline(experiment), count=_SCAN)
    for _, fields in entries or []:
        with contextlib.suppress(RecordError):
            result = decode_offline_result(fields or {})
            if version is None or result.candidate_version == version:
                return result
    return None
