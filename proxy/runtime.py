"""Runtime: the long-lived objects the lifespan builds, shared by the routes of one app.

It exists before the lifespan runs (the routes are wired at create_app time) and is filled when
the lifespan enters; ``ready`` says whether that has happened.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import orjson
import redis.asyncio as aioredis

from proxy.config import ProxySettings, UpstreamConfig
from proxy.experiments import ExperimentTable
from proxy.metrics import ProxyMetrics
from proxy.mirror import ShadowRunner
from proxy.pair_ids import PairIds
from proxy.pairlog import PairLogger
from proxy.upstream.base import Upstream
from tunegate.experiments import ArmConfig, ExperimentConfig
from tunegate.records import Arm
from tunegate.retention import Retention

__all__ = ["ArmTarget", "CorrectedNow", "Runtime"]

#: The judge-corrected win rate now (its JSON, None without labels), for the console's
#: experiment page. The composition root passes analysis/corrected_now.py; the proxy never
#: imports analysis, so an app built without it shows only the last decision's figure.
CorrectedNow = Callable[[aioredis.Redis, ExperimentConfig], Awaitable[dict[str, object] | None]]


@dataclass(slots=True, frozen=True)
class ArmTarget:
    """Where one arm of one experiment goes, and the model name it is sent."""

    upstream: Upstream
    rename: str | None
    timeout_s: float

    def body(self, body: dict[str, object], raw: bytes, client_model: str) -> tuple[bytes, str]:
        """The body to send this arm (the client's bytes unless the model is renamed)."""
        if self.rename is None or self.rename == client_model:
            return raw, client_model
        return orjson.dumps({**body, "model": self.rename}), self.rename


@dataclass(slots=True)
class Runtime:
    """The proxy's section, the experiments and upstreams it serves, and what the lifespan built."""

    config: ProxySettings
    experiments: tuple[ExperimentConfig, ...]  # the config file's: they seed the definitions
    upstream_configs: dict[str, UpstreamConfig]
    config_version: str
    metrics: ProxyMetrics
    retention: Retention = field(default_factory=Retention)
    redis: aioredis.Redis | None = None
    upstreams: dict[str, Upstream] = field(default_factory=dict)
    table: ExperimentTable | None = None
    shadow: ShadowRunner | None = None
    pairlog: PairLogger | None = None
    pair_ids: PairIds | None = None
    targets: dict[tuple[str, Arm], ArmTarget] = field(default_factory=dict)
    corrected_now: CorrectedNow | None = None

    @property
    def ready(self) -> bool:
        return self.pairlog is not None

    def wire_targets(self) -> None:
        """Resolve every experiment arm to its upstream, after the upstreams exist (and again
        whenever the definitions change: an experiment may be created or edited at run time)."""
        targets: dict[tuple[str, Arm], ArmTarget] = {}
        for cfg in self.configs():
            for arm in Arm:
                arm_cfg: ArmConfig = cfg.control if arm is Arm.CONTROL else cfg.candidate
                upstream_cfg = self.upstream_configs.get(arm_cfg.upstream)
                if upstream_cfg is None:  # the table refuses such a definition; skip it here too
                    continue
                targets[cfg.name, arm] = ArmTarget(
                    upstream=self.upstreams[arm_cfg.upstream],
                    rename=arm_cfg.model,
                    timeout_s=upstream_cfg.timeout_seconds,
                )
        self.targets = targets  # swapped whole: a running request never sees half of it

    def table_changed(self) -> None:
        """A definition or state changed: re-wire the arms, the budgets and the version gauges."""
        self.wire_targets()
        configs = self.configs()
        if self.shadow is not None:
            self.shadow.set_budgets({e.name: e.shadow_budget for e in configs})
        self.metrics.touch(e.name for e in configs)
        if self.table is not None:
            self.metrics.served_versions(self.table.versions())

    def configs(self) -> list[ExperimentConfig]:
        """The experiments served now: the live definitions, or the config file's before."""
        if self.table is not None:
            return list(self.table.configs.values())
        return list(self.experiments)

    def experiment(self, name: str) -> ExperimentConfig | None:
        if self.table is not None:
            return self.table.config(name)
        return next((e for e in self.experiments if e.name == name), None)

    def target(self, cfg: ExperimentConfig, arm: Arm) -> ArmTarget:
        return self.targets[cfg.name, arm]
