"""Runtime: the long-lived objects the lifespan builds, shared by the routes of one app.

It exists before the lifespan runs (the routes are wired at create_app time) and is filled when
the lifespan enters; ``ready`` says whether that has happened.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson
import redis.asyncio as aioredis

from proxy.config import ProxySettings, UpstreamConfig
from proxy.experiments import ExperimentTable
from proxy.metrics import ProxyMetrics
from proxy.mirror import ShadowRunner
from proxy.pairlog import PairLogger
from proxy.upstream.base import Upstream
from tunegate.experiments import ArmConfig, ExperimentConfig
from tunegate.records import Arm
from tunegate.retention import Retention

__all__ = ["ArmTarget", "Runtime"]


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
    experiments: tuple[ExperimentConfig, ...]
    upstream_configs: dict[str, UpstreamConfig]
    config_version: str
    metrics: ProxyMetrics
    retention: Retention = field(default_factory=Retention)
    redis: aioredis.Redis | None = None
    upstreams: dict[str, Upstream] = field(default_factory=dict)
    table: ExperimentTable | None = None
    shadow: ShadowRunner | None = None
    pairlog: PairLogger | None = None
    targets: dict[tuple[str, Arm], ArmTarget] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return self.pairlog is not None

    def wire_targets(self) -> None:
        """Resolve every experiment arm to its upstream once, after the upstreams exist."""
        for cfg in self.experiments:
            for arm in Arm:
                arm_cfg: ArmConfig = cfg.control if arm is Arm.CONTROL else cfg.candidate
                upstream_cfg = self.upstream_configs[arm_cfg.upstream]
                self.targets[cfg.name, arm] = ArmTarget(
                    upstream=self.upstreams[arm_cfg.upstream],
                    rename=arm_cfg.model,
                    timeout_s=upstream_cfg.timeout_seconds,
                )

    def experiment(self, name: str) -> ExperimentConfig | None:
        return next((e for e in self.experiments if e.name == name), None)

    def target(self, cfg: ExperimentConfig, arm: Arm) -> ArmTarget:
        return self.targets[cfg.name, arm]
