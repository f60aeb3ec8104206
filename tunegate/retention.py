"""How long what tunegate writes to Redis is kept: the one place retention is configured.

Every stream writer trims with approximate ``MAXLEN`` (Redis trims whole macro nodes, so a stream
may hold slightly more); the only per-pair keys are idempotency markers, each with a TTL set here
(no key outlives its use: feedback reads the served arm from the signed pair id). The root
settings carry one :class:`Retention` (``retention:`` in the YAML) and hand it to every plane that
writes. docs/configuration.md has the measured bytes per pair (``python -m bench.redis_size``).
The console's pair index (tunegate/pair_index.py) has no setting of its own: it is trimmed to
what the pairs stream still holds, so ``pairs`` bounds it too.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Retention"]


class Retention(BaseModel):
    """Maximum entries per stream of one experiment (approximate trimming)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    pairs: int = Field(default=1_000_000, ge=1000)  # the proxy's pair logger
    verdicts: int = Field(default=1_000_000, ge=1000)  # judge workers
    dead_letters: int = Field(default=1_000_000, ge=1000)  # judge workers
    feedback: int = Field(default=1_000_000, ge=1000)  # POST /v1/feedback
    # human labels from the console: the judge-corrected estimate reads every one kept
    labels: int = Field(default=1_000_000, ge=100)
    decisions: int = Field(default=10_000, ge=100)  # the controller
    audit: int = Field(default=100_000, ge=100)  # every state change, whoever made it
    # the pair logger's write-once marker: covers a batch re-sent after a lost reply
    pair_dedup_seconds: int = Field(default=3600, ge=10)
    # the judge's one-outcome marker per (pair, scorer): guards a pair whose worker wrote its
    # outcome and died before the XACK until another worker reclaims it (claim_idle_seconds
    # later, while any worker runs); a pair left pending longer, with every worker down, could
    # be judged a second time. At rate R it holds R x this many markers (docs/configuration.md)
    outcome_marker_seconds: int = Field(default=6 * 3600, ge=60)
