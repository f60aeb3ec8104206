"""How many entries each of an experiment's streams keeps: the one place retention is configured.

Every writer trims with approximate ``MAXLEN`` (Redis trims whole macro nodes, so a stream may hold
slightly more). The root settings carry one :class:`Retention` (``retention:`` in the YAML) and hand
it to every plane that appends to a stream.
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
    decisions: int = Field(default=10_000, ge=100)  # the controller
    audit: int = Field(default=100_000, ge=100)  # every state change, whoever made it
