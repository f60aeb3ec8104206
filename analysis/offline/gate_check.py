"""The live gate's offline condition: with ``policy.require_offline_pass``, no A/B starts until
the offline gate recorded a pass for the candidate version about to be exposed."""

from __future__ import annotations

import redis.asyncio as aioredis

from analysis.offline.record import latest_offline
from tunegate.experiments import ExperimentConfig
from tunegate.records import OfflineResult

__all__ = ["candidate_version", "load_offline", "offline_hold"]


def candidate_version(experiment: ExperimentConfig) -> str:
    """The version the offline result must name: the policy's, else the candidate's model."""
    policy = experiment.policy
    return policy.offline_version or experiment.candidate.model or experiment.candidate.upstream


async def load_offline(
    client: aioredis.Redis, experiment: ExperimentConfig
) -> OfflineResult | None:
    """The latest offline result for the candidate version (None when the policy needs none)."""
    if not experiment.policy.require_offline_pass:
        return None
    return await latest_offline(client, experiment.name, candidate_version(experiment))


def offline_hold(experiment: ExperimentConfig, offline: OfflineResult | None) -> str | None:
    """Why the A/B may not start yet (None: it may): pure, for analysis/decide.py."""
    if not experiment.policy.require_offline_pass:
        return None
    version = candidate_version(experiment)
    if offline is None:
        return (
            f"The policy requires an offline pass and none is recorded for {version}:"
            " run `tunegate eval --record` first."
        )
    if offline.outcome != "pass":
        return f"The offline gate's latest result for {version} is {offline.outcome}, not pass."
    return None
