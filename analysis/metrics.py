"""The controller's Prometheus metrics, on a CollectorRegistry passed in."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from tunegate.records import Action, Decision, Stage

__all__ = ["ControllerMetrics"]


class ControllerMetrics:
    """Stage, A/B weight, judge win rate bounds and decisions per experiment."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.stage = Gauge(
            "tunegate_experiment_stage",
            "1 for the experiment's current stage, 0 otherwise",
            ["experiment", "stage"],
            registry=registry,
        )
        self.ab_weight = Gauge(
            "tunegate_experiment_ab_weight",
            "Candidate share of users in the A/B stage",
            ["experiment"],
            registry=registry,
        )
        self.win_rate = Gauge(
            "tunegate_win_rate",
            "Judge win rate of the candidate and its always-valid bounds",
            ["experiment", "bound"],
            registry=registry,
        )
        self.decisions = Counter(
            "tunegate_decisions",
            "Decisions made by the controller",
            ["experiment", "action"],
            registry=registry,
        )

    def touch(self, experiment: str) -> None:
        """Create every label combination so dashboards show zeros, not gaps."""
        for action in Action:
            self.decisions.labels(experiment, action.value)
        for bound in ("estimate", "lower", "upper"):
            self.win_rate.labels(experiment, bound)
        self.ab_weight.labels(experiment)
        for stage in Stage:
            self.stage.labels(experiment, stage.value)

    def observe(self, decision: Decision) -> None:
        exp = decision.experiment
        self.decisions.labels(exp, decision.action.value).inc()
        current = decision.stage_after if decision.applied else decision.stage_before
        weight = decision.weight_after if decision.applied else decision.weight_before
        for stage in Stage:
            self.stage.labels(exp, stage.value).set(1.0 if stage is current else 0.0)
        self.ab_weight.labels(exp).set(weight)
        judge = decision.evidence.get("judge")
        if isinstance(judge, dict):
            for bound, key in (("estimate", "win_rate"), ("lower", "lower"), ("upper", "cs_upper")):
                value = judge.get(key)
                if isinstance(value, int | float):
                    self.win_rate.labels(exp, bound).set(float(value))
