"""WorkerStats: the counters of one judge worker, also the fields of its heartbeat hash."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["WorkerStats"]


@dataclass(slots=True)
class WorkerStats:
    """What one worker did; also the fields of its heartbeat hash."""

    read: int = 0
    reclaimed: int = 0
    verdicts: int = 0
    duplicates: int = 0  # outcomes found already written (a redelivered or reclaimed pair)
    dead_letters: int = 0
    acked: int = 0
    renewed: int = 0  # lease renewals of entries in flight
    store_errors: int = 0
    internal_errors: int = 0
