"""The proxy's Prometheus metrics, built on a CollectorRegistry the app owns.

Labels take bounded values only: experiment names from the config, arms, endpoints, statuses
and fixed reason words. Known label values are touched at start so dashboards show zeros.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from tunegate.records import Arm

__all__ = [
    "DROP_REASONS",
    "ERROR_REASONS",
    "PAIR_DROP_REASONS",
    "UNREPLICATED_REASONS",
    "ProxyMetrics",
]

#: Why an arm has no good answer (ArmResult.error, tunegate_upstream_errors_total{reason}).
ERROR_REASONS = (
    "timeout",  # no complete answer within the deadline
    "connect",  # no connection could be opened
    "reset",  # the server closed or reset the connection mid-exchange (incl. mid-stream)
    "protocol",  # an answer the client's parser refuses
    "status",  # an answer with a non-2xx status
    "overloaded",  # an in-process model's queue was full, or a shadow row was preempted
    "cancelled",  # the client went away, or shutdown
    "internal",  # a bug in the proxy; the log has the traceback
)
#: Why a shadow copy was not sent (tunegate_shadow_dropped_total{reason}).
DROP_REASONS = (
    "mirror_rate",
    "concurrency",
    "budget",
    "body_too_large",
    "served_failed",
    "client_disconnected",
    "shutdown",
)
#: Why a pair never reached Redis (tunegate_pairs_dropped_total{reason}).
PAIR_DROP_REASONS = ("buffer_full", "shutdown", "rejected", "internal")
#: Why a pair batch Redis took was not confirmed by its replicas (``redis.wait_replicas``;
#: tunegate_pair_batches_unreplicated_total{reason}): it stays buffered and is sent again.
UNREPLICATED_REASONS = (
    "replicas",  # WAIT: fewer replicas acknowledged within wait_timeout_ms
    "moved",  # a write did not reach the slot's master (failover, resharding)
    "wait_error",  # WAIT itself was refused (the node is a replica now)
)

_LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip


class ProxyMetrics:
    """Every metric the proxy exports; one instance per app."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "tunegate_requests_total",
            "Requests served, by experiment, served arm, endpoint and status.",
            ["experiment", "arm", "endpoint", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "tunegate_request_duration_seconds",
            "Latency of the served leg, request to last byte.",
            ["experiment", "arm"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.ttft = Histogram(
            "tunegate_time_to_first_token_seconds",
            "Time to the first streamed chunk of the served leg.",
            ["experiment", "arm"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.upstream_errors = Counter(
            "tunegate_upstream_errors_total",
            "Upstream calls that failed (either leg), by reason.",
            ["experiment", "arm", "reason"],
            registry=registry,
        )
        self.shadow_inflight = Gauge(
            "tunegate_shadow_inflight",
            "Shadow calls now running.",
            ["experiment"],
            registry=registry,
        )
        self.shadow_dropped = Counter(
            "tunegate_shadow_dropped_total",
            "Requests whose other arm got no shadow copy, by reason.",
            ["experiment", "reason"],
            registry=registry,
        )
        self.pairs_logged = Counter(
            "tunegate_pairs_logged_total",
            "Pair records written to Redis.",
            ["experiment"],
            registry=registry,
        )
        self.pairs_dropped = Counter(
            "tunegate_pairs_dropped_total",
            "Pair records that never reached Redis, by reason.",
            ["experiment", "reason"],
            registry=registry,
        )
        self.pairs_rewritten = Counter(
            "tunegate_pairs_rewritten_total",
            "Pair writes a retried batch found already done (the first reply was lost); "
            "not written twice.",
            ["experiment"],
            registry=registry,
        )
        self.batches_unreplicated = Counter(
            "tunegate_pair_batches_unreplicated_total",
            "Pair batches Redis took but too few replicas acknowledged (redis.wait_replicas), "
            "by reason; each stays buffered and is sent again.",
            ["reason"],
            registry=registry,
        )
        self.buffer_depth = Gauge(
            "tunegate_pairlog_buffer_depth",
            "Pair records waiting in memory for Redis.",
            registry=registry,
        )
        self.served_version = Gauge(
            "tunegate_experiment_served_version",
            "The version of an experiment's definition and of its state this replica serves.",
            ["experiment", "kind"],
            registry=registry,
        )
        self.gc_pause = Histogram(
            "tunegate_gc_pause_seconds",
            "Garbage collections of the proxy process and how long each stalled it.",
            ["generation"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
            registry=registry,
        )
        self._served: set[tuple[str, str]] = set()
        self._requests: dict[tuple[str, str, str, int], Counter] = {}
        self._durations: dict[tuple[str, str], Histogram] = {}
        self._drops: dict[tuple[str, str], Counter] = {}
        self._errors: dict[tuple[str, str, str], Counter] = {}
        self.feedback = Counter(
            "tunegate_feedback_total",
            "Feedback records accepted, by the arm that served the pair.",
            ["experiment", "arm"],
            registry=registry,
        )

    # Hot-path helpers: a labelled child is looked up once and cached (``labels()`` takes a lock
    # and builds a key on every call, a visible cost at thousands of requests per second).
    def served(
        self, experiment: str, arm: str, endpoint: str, status: int, latency_s: float
    ) -> None:
        key = (experiment, arm, endpoint, status)
        child = self._requests.get(key)
        if child is None:
            child = self._requests[key] = self.requests.labels(
                experiment, arm, endpoint, str(status)
            )
        child.inc()
        histogram = self._durations.get((experiment, arm))
        if histogram is None:
            histogram = self._durations[experiment, arm] = self.duration.labels(experiment, arm)
        histogram.observe(latency_s)

    def upstream_error(self, experiment: str, arm: str, reason: str) -> None:
        key = (experiment, arm, reason)
        child = self._errors.get(key)
        if child is None:
            child = self._errors[key] = self.upstream_errors.labels(experiment, arm, reason)
        child.inc()

    def shadow_skipped(self, experiment: str, reason: str) -> None:
        child = self._drops.get((experiment, reason))
        if child is None:
            child = self._drops[experiment, reason] = self.shadow_dropped.labels(experiment, reason)
        child.inc()

    def served_versions(self, versions: Mapping[str, tuple[int, int]]) -> None:
        """Set the version gauges: (definition, state) per experiment; drop the deleted ones."""
        for labels in list(self._served):
            if labels[0] not in versions:
                self.served_version.remove(*labels)
                self._served.discard(labels)
        for name, (definition, state) in versions.items():
            for kind, value in (("definition", definition), ("state", state)):
                self.served_version.labels(name, kind).set(value)
                self._served.add((name, kind))

    def touch(self, experiments: Iterable[str]) -> None:
        """Create every known label combination so that series start at zero."""
        for generation in range(3):
            self.gc_pause.labels(str(generation))
        for reason in UNREPLICATED_REASONS:
            self.batches_unreplicated.labels(reason)
        for name in experiments:
            self.shadow_inflight.labels(name)
            self.pairs_logged.labels(name)
            self.pairs_rewritten.labels(name)
            for reason in DROP_REASONS:
                self.shadow_dropped.labels(name, reason)
            for reason in PAIR_DROP_REASONS:
                self.pairs_dropped.labels(name, reason)
            for arm in Arm:
                for reason in ERROR_REASONS:
                    self.upstream_errors.labels(name, arm.value, reason)
                self.duration.labels(name, arm.value)
                self.ttft.labels(name, arm.value)
                self.feedback.labels(name, arm.value)
