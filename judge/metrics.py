"""Prometheus metrics of the judge plane, and the running bias monitors behind its gauges."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from judge.pairwise import Comparison, direction
from tunegate.records import Verdict

__all__ = ["SHORTCUT_REASONS", "BiasMonitor", "JudgeMetrics"]

#: Verdict reasons decided without calling a scorer (zero cost), each a shortcut counter label.
SHORTCUT_REASONS = (
    "identical", "candidate_error", "control_error", "both_error", "unpaired", "no_scorer",
)  # fmt: skip


@dataclass(slots=True)
class BiasMonitor:
    """Counts behind swap consistency, first-position share and longer-answer preference."""

    pairs: int = 0
    consistent: int = 0
    decisive_orders: int = 0
    first_position: int = 0
    decisive_length_pairs: int = 0
    chose_longer: int = 0

    def observe(self, result: Comparison, candidate_len: int, control_len: int) -> None:
        self.pairs += 1
        self.consistent += not result.inconsistent
        for order in result.orders:
            if order.candidate_score is None or direction(order.candidate_score) == 0:
                continue
            self.decisive_orders += 1
            candidate_won = order.candidate_score > 0.5
            self.first_position += candidate_won == (order.order == "candidate_first")
        winner = direction(result.score)
        if winner and candidate_len != control_len:
            self.decisive_length_pairs += 1
            self.chose_longer += (winner > 0) == (candidate_len > control_len)

    @property
    def swap_consistency(self) -> float:
        return self.consistent / self.pairs if self.pairs else 1.0

    @property
    def first_position_share(self) -> float:
        return self.first_position / self.decisive_orders if self.decisive_orders else 0.5

    @property
    def longer_preference(self) -> float:
        if not self.decisive_length_pairs:
            return 0.5
        return self.chose_longer / self.decisive_length_pairs


class JudgeMetrics:
    """The agreed ``tunegate_judge_*`` series on a registry the caller owns."""

    def __init__(self, registry: CollectorRegistry, experiments: Iterable[str] = ()) -> None:
        ex = ["experiment"]
        self.verdicts = Counter(
            "tunegate_judge_verdicts", "Verdicts written", [*ex, "scorer", "winner"],
            registry=registry,
        )  # fmt: skip
        self.calls = Counter(
            "tunegate_judge_calls", "Judge call attempts by outcome", [*ex, "outcome"],
            registry=registry,
        )  # fmt: skip
        self.dead_letters = Counter(
            "tunegate_judge_dead_letters", "Pairs sent to the dead-letter stream",
            [*ex, "reason"], registry=registry,
        )  # fmt: skip
        self.parse_failures = Counter(
            "tunegate_judge_parse_failures", "Judge answers without a verdict", ex,
            registry=registry,
        )  # fmt: skip
        self.cost = Counter("tunegate_judge_cost_usd", "Judge cost", ex, registry=registry)
        self.tokens = Counter(
            "tunegate_judge_tokens", "Judge tokens", [*ex, "direction"], registry=registry
        )
        self.swap_consistency = Gauge(
            "tunegate_judge_swap_consistency", "Share of pairs whose two orders agree", ex,
            registry=registry,
        )  # fmt: skip
        self.first_position_share = Gauge(
            "tunegate_judge_first_position_share",
            "Share of decisive single-order verdicts that favour slot A", ex, registry=registry,
        )  # fmt: skip
        self.longer_preference = Gauge(
            "tunegate_judge_longer_preference",
            "Share of decisive verdicts that favour the longer response", ex, registry=registry,
        )  # fmt: skip
        self.cache_hits = Counter(
            "tunegate_judge_cache_hits", "Judge calls answered by the cache", ex,
            registry=registry,
        )  # fmt: skip
        self.shortcuts = Counter(
            "tunegate_judge_shortcut", "Verdicts decided without a scorer", [*ex, "reason"],
            registry=registry,
        )  # fmt: skip
        self.pending = Gauge(
            "tunegate_judge_pending", "Pairs delivered but not yet acknowledged", ex,
            registry=registry,
        )  # fmt: skip
        self.rate_limited = Gauge(
            "tunegate_judge_rate_limited_seconds",
            "How long the LLM judge has answered 'later' (429, 5xx, timeouts); 0 when it answers",
            ex, registry=registry,
        )  # fmt: skip
        self.latency = Histogram(
            "tunegate_judge_latency_seconds", "Time to judge one pair (both orders)", ex,
            registry=registry,
        )  # fmt: skip
        self._bias: dict[str, BiasMonitor] = {}
        for name in experiments:
            self.touch(name)

    def touch(self, experiment: str) -> None:
        """Create the experiment's series so dashboards show zeros, not gaps."""
        self.parse_failures.labels(experiment)
        self.cost.labels(experiment)
        self.cache_hits.labels(experiment)
        for direction_ in ("in", "out"):
            self.tokens.labels(experiment, direction_)
        for reason in SHORTCUT_REASONS:
            self.shortcuts.labels(experiment, reason)
        self.pending.labels(experiment)
        self.rate_limited.labels(experiment)
        self.latency.labels(experiment)
        bias = self._bias.setdefault(experiment, BiasMonitor())
        self._set_bias(experiment, bias)

    def call(self, experiment: str, outcome: str) -> None:
        self.calls.labels(experiment, outcome).inc()
        if outcome == "cached":
            self.cache_hits.labels(experiment).inc()
        elif outcome == "parse_failure":
            self.parse_failures.labels(experiment).inc()

    def verdict(self, verdict: Verdict) -> None:
        winner = verdict.winner.value if verdict.winner else "none"
        self.verdicts.labels(verdict.experiment, verdict.scorer, winner).inc()
        if verdict.reason in SHORTCUT_REASONS:
            self.shortcuts.labels(verdict.experiment, verdict.reason).inc()

    def comparison(
        self, experiment: str, result: Comparison, candidate_len: int, control_len: int
    ) -> None:
        self.cost.labels(experiment).inc(result.cost_usd)
        self.tokens.labels(experiment, "in").inc(result.tokens_in)
        self.tokens.labels(experiment, "out").inc(result.tokens_out)
        self.latency.labels(experiment).observe(result.latency_s)
        bias = self._bias.setdefault(experiment, BiasMonitor())
        bias.observe(result, candidate_len, control_len)
        self._set_bias(experiment, bias)

    def bias(self, experiment: str) -> BiasMonitor:
        return self._bias.setdefault(experiment, BiasMonitor())

    def _set_bias(self, experiment: str, bias: BiasMonitor) -> None:
        self.swap_consistency.labels(experiment).set(bias.swap_consistency)
        self.first_position_share.labels(experiment).set(bias.first_position_share)
        self.longer_preference.labels(experiment).set(bias.longer_preference)
