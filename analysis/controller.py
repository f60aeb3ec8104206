"""The rollout controller: decide, record the Decision, and apply it when policy allows.

A decision that changes the stage or weight is applied (through tunegate.state.write_state,
actor "controller", compare-and-set on the version it decided from) only when the experiment's
policy has ``auto_apply`` or the caller passes ``apply=True``; otherwise it is recorded with
``needs_approval`` and :meth:`Controller.approve` applies it later for an operator.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import redis.asyncio as aioredis

from analysis.decide import decide
from analysis.evidence import load_evidence
from analysis.metrics import ControllerMetrics
from analysis.offline.gate_check import load_offline
from tunegate import keys
from tunegate.experiments import ExperimentConfig
from tunegate.records import Decision, decode_decision, encode
from tunegate.redis import store_errors
from tunegate.retention import Retention
from tunegate.state import read_state, write_state

__all__ = ["Controller"]


class Controller:
    """Turns evidence into decisions for the configured experiments."""

    def __init__(
        self,
        experiments: Iterable[ExperimentConfig],
        redis: aioredis.Redis,
        metrics: ControllerMetrics | None = None,
        *,
        retention: Retention | None = None,
    ) -> None:
        self.experiments = {e.name: e for e in experiments}
        self.retention = retention or Retention()
        self.redis = redis
        self.metrics = metrics

    def experiment(self, name: str) -> ExperimentConfig:
        config = self.experiments.get(name)
        if config is None:
            known = ", ".join(self.experiments) or "none"
            raise ValueError(f"experiment {name!r} is not configured (known: {known})")
        return config

    async def step(self, experiment_name: str, *, apply: bool) -> Decision:
        """Decide once, append the Decision to the decisions stream, apply it if allowed."""
        config = self.experiment(experiment_name)
        state = await read_state(self.redis, experiment_name)
        evidence = await load_evidence(self.redis, experiment_name)
        offline = await load_offline(self.redis, config)  # None unless the policy requires it
        decision = decide(config, state, evidence, time.time(), offline)
        changes = (decision.stage_after, decision.weight_after) != (
            decision.stage_before,
            decision.weight_before,
        )
        if changes and (apply or config.policy.auto_apply):
            written = await write_state(
                self.redis,
                experiment_name,
                stage=decision.stage_after,
                ab_weight=decision.weight_after,
                mirror_rate=state.mirror_rate if state else config.mirror_rate,
                actor="controller",
                reason=f"{decision.action.value}: {decision.reason}",
                expected_version=state.version if state else None,
                audit_maxlen=self.retention.audit,
            )
            decision.applied = written is not None
            if written is None:
                decision.reasons.append("The state changed while deciding; not applied.")
                decision.reason = " ".join(decision.reasons)
        elif changes:
            decision.needs_approval = True
        await self._record(decision)
        return decision

    async def _record(self, decision: Decision) -> None:
        with store_errors("record decision"):
            await self.redis.xadd(
                keys.decisions(decision.experiment),
                encode(decision),  # type: ignore[arg-type]  # redis-py's field type is invariant
                maxlen=self.retention.decisions,
                approximate=True,
            )
        if self.metrics is not None:
            self.metrics.observe(decision)

    async def latest(self, experiment_name: str) -> Decision | None:
        with store_errors("read decisions"):
            entries = await self.redis.xrevrange(keys.decisions(experiment_name), count=1)
        if not entries or entries[0][1] is None:
            return None
        return decode_decision(entries[0][1])

    async def approve(self, experiment_name: str, actor: str = "operator") -> Decision | None:
        """Apply the latest decision waiting for approval; None when there is none to apply.

        The write lands only if the state is still the one the decision was made from.
        """
        config = self.experiment(experiment_name)
        latest = await self.latest(experiment_name)
        if latest is None or not latest.needs_approval or latest.applied:
            return None
        state = await read_state(self.redis, experiment_name)
        current = (state.stage, state.ab_weight) if state else (config.stage, config.ab_weight)
        if current != (latest.stage_before, latest.weight_before):
            return None
        written = await write_state(
            self.redis,
            experiment_name,
            stage=latest.stage_after,
            ab_weight=latest.weight_after,
            mirror_rate=state.mirror_rate if state else config.mirror_rate,
            actor=actor,
            reason=f"approved {latest.action.value}: {latest.reason}",
            expected_version=state.version if state else None,
        )
        if written is None:
            return None
        approved = latest.model_copy(
            update={"applied": True, "needs_approval": False, "time": time.time()}
        )
        await self._record(approved)
        return approved
