"""A cluster master fails over while pairs flow and are judged: nothing acknowledged is lost."""

from __future__ import annotations

from bench.cluster import LocalCluster
from bench.redis_failover import failover


def test_a_master_failover_under_load_loses_nothing(cluster: LocalCluster, cluster_url: str):
    cost = failover(cluster, before=1.5, after=2.5)
    assert cost.switch_s > 0, "the replica never took the slot over"
    assert len(cost.served_ids) > 20, cost
    assert cost.lost_nothing, cost
