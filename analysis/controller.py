"""The rollout controller: decide, record the Decision, and apply it when policy allows.

A decision that changes the stage or weight is applied (through tunegate.state.write_state,
actor "controller", compare-and-set on the version it decided from) only when the experiment's
policy has ``auto_apply`` or the caller passes ``apply=True``; otherwise it is recorded with
``needs_approval`` and :meth:`Controller.approve` applies it later for an operator.

Each look reads its evidence incrementally (analysis/evidence_store.py): only the records new
since the previous look, by any controller replica, are read and folded into the running
decision state (analysis/evidence_state.py), and the decision is made from that state alone
(analysis/decide_state.py), so a look costs the same on day 30 as on day 1. In ``tunegate decide
--loop`` the lease holder also folds continuously between looks (analysis/folder.py), so a look
folds only the seconds since the last tick. An experiment with
human labels decides from the rows (the judge-corrected estimate joins labels to judged rows).
``incremental=False`` reads the whole streams instead (the landed path,
kept for comparison in bench/scale and for ``tunegate report``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import redis.asyncio as aioredis

from analysis.decide import decide
from analysis.decide_state import decide_from_state
from analysis.evidence import load_evidence
from analysis.evidence_store import incremental_evidence, state_look
from analysis.folder import look_stage
from analysis.metrics import ControllerMetrics
from analysis.offline.gate_check import load_offline
from tunegate import keys
from tunegate.decisions import approve
from tunegate.experiments import ExperimentConfig
from tunegate.records import Decision, ExperimentState, decode_decision, encode
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
        incremental: bool = True,
        fence: int | None = None,
    ) -> None:
        self.experiments = {e.name: e for e in experiments}
        self.fence = fence  # the lease token of this leader; set by the decide loop
        self.retention = retention or Retention()
        self.redis = redis
        self.metrics = metrics
        self.incremental = incremental

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
        decision = await self._decide(config, state)
        decision.fence = self.fence
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
                fence=self.fence,
            )
            decision.applied = written is not None
            if written is None:
                decision.reasons.append("The state changed while deciding; not applied.")
                decision.reason = " ".join(decision.reasons)
        elif changes:
            decision.needs_approval = True
        await self._record(decision)
        return decision

    async def _decide(self, config: ExperimentConfig, state: ExperimentState | None) -> Decision:
        """From the running state where it can (a look that costs the same at any history),
        else from the rows (human labels) or the whole streams (``incremental=False``)."""
        name = config.name
        offline = await load_offline(self.redis, config)  # None unless the policy requires it
        if self.incremental:
            look = await state_look(self.redis, name, config.policy, look_stage(config, state))
            if look is not None:
                running, counters, feedback = look
                return decide_from_state(
                    config, state, running, feedback, counters, time.time(), offline
                )
        read = incremental_evidence if self.incremental else load_evidence
        evidence = await read(self.redis, name)
        return decide(config, state, evidence, time.time(), offline)

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
        approved = await approve(self.redis, config, actor, retention=self.retention)
        if approved is not None and self.metrics is not None:
            self.metrics.observe(approved)
        return approved
