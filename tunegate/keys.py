"""Every Redis key and stream name tunegate uses.

All keys of one experiment carry the hash tag ``{experiment}`` so that they live on one
Redis Cluster slot and can be used together in pipelines and Lua scripts.
"""

from __future__ import annotations

__all__ = [
    "DEFINITIONS",
    "EXPERIMENTS",
    "JUDGE_GROUP",
    "SEEDED",
    "STATE_CHANNEL",
    "audit",
    "dead",
    "decisions",
    "definition",
    "evidence_judged",
    "evidence_meta",
    "evidence_rows",
    "feedback",
    "fence",
    "heartbeat",
    "judge_budget",
    "judge_cache",
    "label_sample",
    "label_sampled",
    "labels",
    "lease",
    "lease_epoch",
    "offline",
    "pair_index",
    "pair_written",
    "pairs",
    "seeded_from",
    "state",
    "verdict_done",
    "verdicts",
]

PREFIX = "tg"

#: Set of experiment names that have (or had) state in Redis.
EXPERIMENTS = f"{PREFIX}:experiments"

#: Set of the experiment names whose definition lives in Redis (tunegate/definitions.py).
DEFINITIONS = f"{PREFIX}:definitions"

#: Set of the names the config file has seeded; its absence marks a new (or wiped) Redis.
SEEDED = f"{PREFIX}:seeded"

#: Pub/sub channel on which every state change publishes the experiment's name (proxies listen).
STATE_CHANNEL = f"{PREFIX}:state-changed"

#: Consumer group the judge workers share on every pairs stream.
JUDGE_GROUP = "judges"


def _tag(experiment: str) -> str:
    if not experiment or "{" in experiment or "}" in experiment:  # per key, on the pair path
        raise ValueError(f"experiment name {experiment!r} must be non-empty and free of braces")
    return f"{PREFIX}:{{{experiment}}}"


def pairs(experiment: str) -> str:
    """Stream of Pair records written by the proxy."""
    return f"{_tag(experiment)}:pairs"


def pair_index(experiment: str, part: str) -> str:
    """One structure of the pair browser's index (tunegate/pair_index.py): ``meta`` (cursors),
    ``state`` (pair id -> its verdicts), ``order`` (every indexed pair) or a filter set
    (``c:<category>``, ``w:<winner>``, ``disagree``, ``errors``)."""
    return f"{_tag(experiment)}:pidx:{part}"


def pair_written(experiment: str, pair_id: str) -> str:
    """Short-lived marker that one pair is in the stream: a re-sent batch adds it once."""
    return f"{_tag(experiment)}:w:{pair_id}"


def verdicts(experiment: str) -> str:
    """Stream of Verdict records written by the judge workers."""
    return f"{_tag(experiment)}:verdicts"


def dead(experiment: str) -> str:
    """Dead-letter stream: pairs the judge could not score, with the reason."""
    return f"{_tag(experiment)}:dead"


def feedback(experiment: str) -> str:
    """Stream of Feedback records posted by applications to the proxy."""
    return f"{_tag(experiment)}:feedback"


def labels(experiment: str) -> str:
    """Stream of HumanLabel records: reviewers' picks made in the console."""
    return f"{_tag(experiment)}:labels"


def state(experiment: str) -> str:
    """Hash with the live experiment state (stage, weight, mirror rate, version)."""
    return f"{_tag(experiment)}:state"


def definition(experiment: str) -> str:
    """Hash with the experiment's definition (``json``: an ExperimentConfig) and ``version``."""
    return f"{_tag(experiment)}:definition"


def decisions(experiment: str) -> str:
    """Stream of Decision records written by the decision engine."""
    return f"{_tag(experiment)}:decisions"


def evidence_meta(experiment: str) -> str:
    """Hash of the incremental evidence: stream cursors, row counts, health counters, names."""
    return f"{_tag(experiment)}:evidence:meta"


def evidence_rows(experiment: str, kind: str) -> str:
    """Append-only string of packed evidence rows of one kind (pairs, judged, feedback)."""
    return f"{_tag(experiment)}:evidence:{kind}"


def evidence_judged(experiment: str) -> str:
    """Sorted set pair id -> judged row, for the most recent judged pairs (late verdicts join)."""
    return f"{_tag(experiment)}:evidence:judged-ids"


def seeded_from(experiment: str) -> str:
    """Digest of the config file's definition last seeded (tunegate/definitions.py)."""
    return f"{_tag(experiment)}:seeded"


def audit(experiment: str) -> str:
    """Stream of audit entries: every change to the experiment state and who made it."""
    return f"{_tag(experiment)}:audit"


def offline(experiment: str) -> str:
    """Stream of OfflineResult records: the offline gate's answer per candidate version."""
    return f"{_tag(experiment)}:offline"


def fence(experiment: str) -> str:
    """The highest controller lease token that has touched the experiment (tunegate/lease.py)."""
    return f"{_tag(experiment)}:fence"


def label_sample(experiment: str) -> str:
    """Hash: a uniform reservoir of judged pairs' stream ids, the label page's sample."""
    return f"{_tag(experiment)}:label-sample"


def label_sampled(experiment: str, pair_id: str) -> str:
    """Marker that one pair was offered to the label sample once (a redelivery is not)."""
    return f"{_tag(experiment)}:ls:{pair_id}"


def verdict_done(experiment: str, pair_id: str, scorer: str, judge_version: str) -> str:
    """Idempotency marker for one (pair, scorer, judge version) outcome; expires after
    ``Retention.outcome_marker_seconds``."""
    return f"{_tag(experiment)}:done:{pair_id}:{scorer}:{judge_version}"


def judge_cache(experiment: str, digest: str) -> str:
    """Cached raw judge output for one (judge, template, request, responses, order) digest."""
    return f"{_tag(experiment)}:cache:{digest}"


def judge_budget(experiment: str) -> str:
    """Hash of the experiment's judge budget buckets, shared by every judge worker."""
    return f"{_tag(experiment)}:budget"


def heartbeat(worker: str) -> str:
    """Hash a judge worker refreshes with its counters; expires when the worker dies."""
    return f"{PREFIX}:heartbeat:{worker}"


def lease(name: str) -> str:
    """String naming the holder of one leader lease (``holder:token``); expires unless renewed."""
    return f"{PREFIX}:{{lease:{name}}}:holder"


def lease_epoch(name: str) -> str:
    """Counter of one lease's acquisitions: the fencing token (same slot as :func:`lease`)."""
    return f"{PREFIX}:{{lease:{name}}}:epoch"
