"""The agreed tunegate_* metrics the dashboard and alerts read: names, kinds and label names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["CATALOG", "MetricSpec", "spec"]


@dataclass(frozen=True)
class MetricSpec:
    """One exported metric family as the planes' metrics.py define it."""

    name: str  # counters keep their _total suffix here
    kind: Literal["counter", "gauge", "histogram"]
    labels: tuple[str, ...]
    plane: Literal["proxy", "judge", "analysis"]


CATALOG: tuple[MetricSpec, ...] = (
    # proxy
    MetricSpec(
        "tunegate_requests_total", "counter", ("experiment", "arm", "endpoint", "status"), "proxy"
    ),
    MetricSpec("tunegate_request_duration_seconds", "histogram", ("experiment", "arm"), "proxy"),
    MetricSpec("tunegate_time_to_first_token_seconds", "histogram", ("experiment", "arm"), "proxy"),
    MetricSpec(
        "tunegate_upstream_errors_total", "counter", ("experiment", "arm", "reason"), "proxy"
    ),
    MetricSpec("tunegate_shadow_inflight", "gauge", ("experiment",), "proxy"),
    MetricSpec("tunegate_shadow_dropped_total", "counter", ("experiment", "reason"), "proxy"),
    MetricSpec("tunegate_pairs_logged_total", "counter", ("experiment",), "proxy"),
    MetricSpec("tunegate_pairs_dropped_total", "counter", ("experiment", "reason"), "proxy"),
    MetricSpec("tunegate_pairs_rewritten_total", "counter", ("experiment",), "proxy"),
    MetricSpec("tunegate_pair_batches_unreplicated_total", "counter", ("reason",), "proxy"),
    MetricSpec("tunegate_pairlog_buffer_depth", "gauge", (), "proxy"),
    MetricSpec("tunegate_gc_pause_seconds", "histogram", ("generation",), "proxy"),
    MetricSpec("tunegate_feedback_total", "counter", ("experiment", "arm"), "proxy"),
    MetricSpec("tunegate_experiment_served_version", "gauge", ("experiment", "kind"), "proxy"),
    # judge
    MetricSpec(
        "tunegate_judge_verdicts_total", "counter", ("experiment", "scorer", "winner"), "judge"
    ),
    MetricSpec("tunegate_judge_calls_total", "counter", ("experiment", "outcome"), "judge"),
    MetricSpec("tunegate_judge_dead_letters_total", "counter", ("experiment", "reason"), "judge"),
    MetricSpec("tunegate_judge_parse_failures_total", "counter", ("experiment",), "judge"),
    MetricSpec("tunegate_judge_cost_usd_total", "counter", ("experiment",), "judge"),
    MetricSpec("tunegate_judge_tokens_total", "counter", ("experiment", "direction"), "judge"),
    MetricSpec("tunegate_judge_swap_consistency", "gauge", ("experiment",), "judge"),
    MetricSpec("tunegate_judge_first_position_share", "gauge", ("experiment",), "judge"),
    MetricSpec("tunegate_judge_longer_preference", "gauge", ("experiment",), "judge"),
    MetricSpec("tunegate_judge_cache_hits_total", "counter", ("experiment",), "judge"),
    MetricSpec("tunegate_judge_shortcut_total", "counter", ("experiment", "reason"), "judge"),
    MetricSpec("tunegate_judge_pending", "gauge", ("experiment",), "judge"),
    MetricSpec("tunegate_judge_rate_limited_seconds", "gauge", ("experiment",), "judge"),
    MetricSpec("tunegate_judge_latency_seconds", "histogram", ("experiment",), "judge"),
    # analysis / controller
    MetricSpec("tunegate_experiment_stage", "gauge", ("experiment", "stage"), "analysis"),
    MetricSpec("tunegate_experiment_ab_weight", "gauge", ("experiment",), "analysis"),
    MetricSpec("tunegate_win_rate", "gauge", ("experiment", "bound"), "analysis"),
    MetricSpec("tunegate_decisions_total", "counter", ("experiment", "action"), "analysis"),
    # analysis / the rollout verdict (analysis/verdict_metrics.py)
    MetricSpec("tunegate_verdict_code", "gauge", ("experiment",), "analysis"),
    MetricSpec("tunegate_verdict_result", "gauge", ("experiment", "result"), "analysis"),
    MetricSpec("tunegate_verdict_action", "gauge", ("experiment", "action"), "analysis"),
    MetricSpec(
        "tunegate_verdict_guardrail", "gauge", ("experiment", "guardrail", "state"), "analysis"
    ),
    MetricSpec("tunegate_verdict_samples_needed", "gauge", ("experiment",), "analysis"),
    MetricSpec("tunegate_verdict_timestamp_seconds", "gauge", ("experiment",), "analysis"),
)


def spec(name: str) -> MetricSpec:
    """The catalog entry of ``name`` (a family name, or a histogram's _bucket/_sum/_count)."""
    for entry in CATALOG:
        if name == entry.name or (
            entry.kind == "histogram"
            and name.removeprefix(entry.name) in ("_bucket", "_sum", "_count")
        ):
            return entry
    raise KeyError(name)
