"""Every Redis key and stream name tunegate uses.

All keys of one experiment carry the hash tag ``{experiment}`` so that they live on one
Redis Cluster slot and can be used together in pipelines and Lua scripts.
"""

from __future__ import annotations

__all__ = [
    "EXPERIMENTS",
    "JUDGE_GROUP",
    "audit",
    "dead",
    "decisions",
    "feedback",
    "heartbeat",
    "judge_cache",
    "offline",
    "pairs",
    "served",
    "state",
    "verdict_done",
    "verdicts",
]

PREFIX = "tg"

#: Set of experiment names that have (or had) state in Redis.
EXPERIMENTS = f"{PREFIX}:experiments"

#: Consumer group the judge workers share on every pairs stream.
JUDGE_GROUP = "judges"


def _tag(experiment: str) -> str:
    if not experiment or any(c in experiment for c in "{}"):
        raise ValueError(f"experiment name {experiment!r} must be non-empty and free of braces")
    return f"{PREFIX}:{{{experiment}}}"


def pairs(experiment: str) -> str:
    """Stream of Pair records written by the proxy."""
    return f"{_tag(experiment)}:pairs"


def served(experiment: str, pair_id: str) -> str:
    """Short-lived string naming the arm that served one pair (written with the pair's XADD)."""
    return f"{_tag(experiment)}:served:{pair_id}"


def verdicts(experiment: str) -> str:
    """Stream of Verdict records written by the judge workers."""
    return f"{_tag(experiment)}:verdicts"


def dead(experiment: str) -> str:
    """Dead-letter stream: pairs the judge could not score, with the reason."""
    return f"{_tag(experiment)}:dead"


def feedback(experiment: str) -> str:
    """Stream of Feedback records posted by applications to the proxy."""
    return f"{_tag(experiment)}:feedback"


def state(experiment: str) -> str:
    """Hash with the live experiment state (stage, weight, mirror rate, version)."""
    return f"{_tag(experiment)}:state"


def decisions(experiment: str) -> str:
    """Stream of Decision records written by the decision engine."""
    return f"{_tag(experiment)}:decisions"


def audit(experiment: str) -> str:
    """Stream of audit entries: every change to the experiment state and who made it."""
    return f"{_tag(experiment)}:audit"


def offline(experiment: str) -> str:
    """Stream of OfflineResult records: the offline gate's answer per candidate version."""
    return f"{_tag(experiment)}:offline"


def verdict_done(experiment: str, pair_id: str, scorer: str, judge_version: str) -> str:
    """Idempotency marker for one (pair, scorer, judge version) verdict."""
    return f"{_tag(experiment)}:done:{pair_id}:{scorer}:{judge_version}"


def judge_cache(experiment: str, digest: str) -> str:
    """Cached raw judge output for one (judge, template, request, responses, order) digest."""
    return f"{_tag(experiment)}:cache:{digest}"


def heartbeat(worker: str) -> str:
    """Hash a judge worker refreshes with its counters; expires when the worker dies."""
    return f"{PREFIX}:heartbeat:{worker}"
