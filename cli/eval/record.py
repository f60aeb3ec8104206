"""Record an evaluation's result in Redis against its experiment and candidate version."""

from __future__ import annotations

from analysis.offline.record import offline_result, record_offline
from analysis.offline.report.contract import dumps
from cli.settings import Settings
from tunegate.records import OfflineResult
from tunegate.redis import connect

__all__ = ["record_result"]


async def record_result(settings: Settings, document: dict[str, object]) -> OfflineResult:
    """Append the OfflineResult of ``document``; StoreUnavailable when Redis is down."""
    result = offline_result(document, dumps(document))
    async with connect(settings.redis) as client:
        await record_offline(client, result)
    return result
