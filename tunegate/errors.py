"""The shared error tree.

TunegateError
├── ConfigError        invalid settings; the CLI prints the field path and exits 2
├── RecordError        a stream entry that does not decode as a known record version
├── StoreUnavailable   Redis cannot be reached (connection refused, reset, timeout)
└── StaleLeader        a write carried a lease token older than one the experiment has seen
"""

from __future__ import annotations

__all__ = ["ConfigError", "RecordError", "StaleLeader", "StoreUnavailable", "TunegateError"]


class TunegateError(Exception):
    """Base of every error tunegate raises on purpose."""


class ConfigError(TunegateError):
    """Settings that cannot be used; the message names the field path and the reason."""


class RecordError(TunegateError):
    """A Redis stream entry that is not a valid record of a known schema version."""


class StoreUnavailable(TunegateError):
    """Redis is unreachable; callers buffer, retry or degrade, never crash."""


class StaleLeader(TunegateError):
    """A controller whose lease was taken over tried to write; the write did not land."""
