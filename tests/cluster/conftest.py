"""A real Redis Cluster for the session: three masters, one replica each, on loopback ports.

Started with ``redis-server --cluster-enabled yes`` and joined with ``redis-cli --cluster create``
(bench/cluster.py). Without the binaries the session fails with a message naming
scripts/install.sh; nothing here is skipped.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bench.cluster import ClusterUnavailable, LocalCluster
from tests.proxy.conftest import doubles  # noqa: F401  # the model-server doubles, shared


def started_cluster() -> Iterator[LocalCluster]:
    """Three masters with a replica each, started for a fixture and stopped after it."""
    found = LocalCluster(masters=3, replicas=1)
    try:
        found.start()
    except ClusterUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    yield found
    found.stop()


@pytest.fixture(scope="session")
def cluster() -> Iterator[LocalCluster]:
    yield from started_cluster()


@pytest.fixture
def cluster_url(cluster: LocalCluster) -> str:
    """The session's cluster, every master flushed, every slot served."""
    cluster.wait_ok()
    cluster.flushall()
    return cluster.url
