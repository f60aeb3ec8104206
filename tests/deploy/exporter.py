"""A synthetic tunegate exporter: every catalog metric for a regressing and a healthy experiment.

Counters grow linearly with time at fixed rates, so Prometheus's rate() returns those rates once
its window is full of samples (and ratios of rates at once), and the tests can assert on values.
The rates that alerts compare with absolute thresholds over 5-minute windows are high enough to
cross them within seconds of the first scrape, while those windows are still mostly empty.

The ``regressing`` experiment breaks every alert's condition
(candidate errors and latency, losing win rate, rolled back, dropped copies and pairs, a slow,
biased and failing judge); the ``healthy`` one breaks none.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from tests.deploy.catalog import CATALOG, spec

__all__ = ["EXPERIMENTS", "HEALTHY", "REGRESSING", "Scenario", "SyntheticCollector", "registry"]

REGRESSING = "regressing"
HEALTHY = "healthy"
EXPERIMENTS = (REGRESSING, HEALTHY)

Labels = tuple[str, ...]
# Cumulative share of observations at or below each bucket bound.
FAST = {0.1: 0.5, 0.25: 0.9, 0.5: 1.0}  # p95 = 0.375 s
SLOW = {0.25: 0.5, 1.0: 0.8, 2.5: 1.0}  # p95 = 2.125 s
BOUNDS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass
class Scenario:
    """Rates (per second) of counters, values of gauges and latency shapes, by label values."""

    counters: dict[str, dict[Labels, float]] = field(default_factory=dict)
    gauges: dict[str, dict[Labels, float]] = field(default_factory=dict)
    histograms: dict[str, dict[Labels, tuple[float, dict[float, float]]]] = field(
        default_factory=dict
    )


def _experiment(name: str, bad: bool) -> Scenario:
    cand_5xx = 0.2 if bad else 0.01
    s = Scenario()
    c, g, h = s.counters, s.gauges, s.histograms
    c["tunegate_requests_total"] = {
        (name, "control", "chat.completions", "200"): 19.8,
        (name, "control", "chat.completions", "503"): 0.2,
        (name, "candidate", "chat.completions", "200"): 10 * (1 - cand_5xx),
        (name, "candidate", "chat.completions", "502"): 10 * cand_5xx,
    }
    c["tunegate_upstream_errors_total"] = {
        (name, "control", "status"): 0.1,
        (name, "candidate", "status"): 4.0 if bad else 0.1,
        (name, "candidate", "timeout"): 1.0 if bad else 0.0,
    }
    c["tunegate_shadow_dropped_total"] = {
        (name, "mirror_rate"): 5.0,
        (name, "concurrency"): 0.5 if bad else 0.0,
        (name, "budget"): 0.1 if bad else 0.0,
    }
    c["tunegate_pairs_logged_total"] = {(name,): 1.0}
    c["tunegate_pairs_dropped_total"] = {(name, "buffer_full"): 0.1 if bad else 0.0}
    c["tunegate_pairs_rewritten_total"] = {(name,): 0.0}
    c["tunegate_pair_batches_unreplicated_total"] = {("replicas",): 0.0}
    c["tunegate_feedback_total"] = {(name, "control"): 0.3, (name, "candidate"): 0.1}
    c["tunegate_judge_verdicts_total"] = {
        (name, "pairwise", "candidate"): 0.3 if bad else 0.6,
        (name, "pairwise", "control"): 0.6 if bad else 0.3,
        (name, "pairwise", "tie"): 0.1,
    }
    c["tunegate_judge_calls_total"] = {
        (name, "ok"): 1.6,
        (name, "retry"): 0.2,
        (name, "error"): 0.2,
    }
    c["tunegate_judge_dead_letters_total"] = {(name, "unparseable"): 0.2 if bad else 0.0}
    c["tunegate_judge_parse_failures_total"] = {(name,): 0.3 if bad else 0.01}
    c["tunegate_judge_cost_usd_total"] = {(name,): 0.001}
    c["tunegate_judge_tokens_total"] = {(name, "input"): 800.0, (name, "output"): 40.0}
    c["tunegate_judge_cache_hits_total"] = {(name,): 0.05}
    c["tunegate_judge_shortcut_total"] = {(name, "identical"): 0.02}
    c["tunegate_decisions_total"] = {
        (name, "continue"): 0.05,
        (name, "roll_back" if bad else "ramp"): 0.01,
    }
    g["tunegate_shadow_inflight"] = {(name,): 12.0}
    g["tunegate_experiment_served_version"] = {(name, "definition"): 3.0, (name, "state"): 7.0}
    g["tunegate_judge_swap_consistency"] = {(name,): 0.5 if bad else 0.9}
    g["tunegate_judge_first_position_share"] = {(name,): 0.8 if bad else 0.52}
    g["tunegate_judge_longer_preference"] = {(name,): 0.7 if bad else 0.55}
    g["tunegate_judge_pending"] = {(name,): 5000.0 if bad else 10.0}
    g["tunegate_judge_rate_limited_seconds"] = {(name,): 1800.0 if bad else 0.0}
    g["tunegate_experiment_stage"] = {
        (name, stage): float(stage == ("rolled_back" if bad else "ab"))
        for stage in ("shadow", "ab", "promoted", "rolled_back", "paused")
    }
    g["tunegate_experiment_ab_weight"] = {(name,): 0.0 if bad else 0.25}
    g["tunegate_win_rate"] = {
        (name, "estimate"): 0.33 if bad else 0.64,
        (name, "lower"): 0.28 if bad else 0.58,
        (name, "upper"): 0.38 if bad else 0.7,
    }
    _verdict(g, name, bad)
    h["tunegate_request_duration_seconds"] = {
        (name, "control"): (10.0, FAST),
        (name, "candidate"): (2.0, SLOW if bad else FAST),
    }
    h["tunegate_time_to_first_token_seconds"] = {
        (name, "control"): (6.0, FAST),
        (name, "candidate"): (1.0, SLOW if bad else FAST),
    }
    h["tunegate_judge_latency_seconds"] = {(name,): (2.0, SLOW if bad else FAST)}
    h["tunegate_gc_pause_seconds"] = {("0",): (5.0, FAST)}  # process-wide, not per experiment
    return s


#: The verdict's decision time: a fixed age, so the dashboard's age panel reads about 30 s.
VERDICT_AGE_SECONDS = 30.0


def _verdict(g: dict[str, dict[Labels, float]], name: str, bad: bool) -> None:
    """The rollout verdict gauges: roll_back (failure) when regressing, ramp (success) if not."""
    action = "roll_back" if bad else "ramp"
    result = "failure" if bad else "success"
    g["tunegate_verdict_code"] = {(name,): -1.0 if bad else 1.0}
    g["tunegate_verdict_result"] = {
        (name, each): float(each == result) for each in ("success", "failure", "inconclusive")
    }
    g["tunegate_verdict_action"] = {
        (name, each): float(each == action)
        for each in ("continue", "start_ab", "ramp", "promote", "stop_equivalent", "roll_back",
                     "pause")
    }  # fmt: skip
    states = {"error_rate": "breached" if bad else "holds", "latency_p95": "holds",
              "tokens": "unproven"}  # fmt: skip
    g["tunegate_verdict_guardrail"] = {
        (name, guardrail, state): float(states[guardrail] == state)
        for guardrail in states
        for state in ("holds", "breached", "unproven")
    }
    g["tunegate_verdict_samples_needed"] = {(name,): 0.0}
    g["tunegate_verdict_timestamp_seconds"] = {(name,): time.time() - VERDICT_AGE_SECONDS}


def _merge(parts: list[Scenario]) -> Scenario:
    merged = Scenario()
    for part in parts:
        for mine, theirs in (
            (merged.counters, part.counters),
            (merged.gauges, part.gauges),
        ):
            for name, series in theirs.items():
                mine.setdefault(name, {}).update(series)
        for name, hseries in part.histograms.items():
            merged.histograms.setdefault(name, {}).update(hseries)
    return merged


def _cumulative(shape: dict[float, float], bound: float) -> float:
    below = [share for le, share in shape.items() if le <= bound]
    return max(below, default=0.0)


class SyntheticCollector(Collector):
    """Yields the scenario's metrics with counters at ``rate * seconds since start``."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.started = time.monotonic()

    def collect(self) -> Iterator[Metric]:
        elapsed = time.monotonic() - self.started
        for name, series in self.scenario.counters.items():
            family = CounterMetricFamily(
                name.removesuffix("_total"), name, labels=list(spec(name).labels)
            )
            for labels, rate in series.items():
                family.add_metric(list(labels), rate * elapsed)
            yield family
        for name, values in self.scenario.gauges.items():
            gauge = GaugeMetricFamily(name, name, labels=list(spec(name).labels))
            for labels, value in values.items():
                gauge.add_metric(list(labels), value)
            yield gauge
        for name, hseries in self.scenario.histograms.items():
            histogram = HistogramMetricFamily(name, name, labels=list(spec(name).labels))
            for labels, (rate, shape) in hseries.items():
                count = rate * elapsed
                buckets = [(str(b), count * _cumulative(shape, b)) for b in BOUNDS]
                buckets.append(("+Inf", count))
                mean = sum(shape) / len(shape)
                histogram.add_metric(list(labels), buckets, sum_value=count * mean)
            yield histogram
        yield GaugeMetricFamily("tunegate_pairlog_buffer_depth", "buffer", value=42.0)


def registry() -> CollectorRegistry:
    """A fresh registry holding both experiments; asserts the scenario covers the catalog."""
    scenario = _merge([_experiment(REGRESSING, bad=True), _experiment(HEALTHY, bad=False)])
    covered = {*scenario.counters, *scenario.gauges, *scenario.histograms}
    covered.add("tunegate_pairlog_buffer_depth")
    missing = {entry.name for entry in CATALOG} - covered
    if missing:
        raise AssertionError(f"scenario lacks {sorted(missing)}")
    reg = CollectorRegistry()
    reg.register(SyntheticCollector(scenario))
    return reg
