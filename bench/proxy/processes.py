"""The benchmark's targets as child processes: Redis, tunegate per mode and format, LiteLLM."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

import httpx
import redis
import yaml
from prometheus_client.parser import text_string_to_metric_families

from bench.children import stop_all
from bench.proxy.nginx import Nginx
from bench.proxy.wrk import CLIENT_KEY, run_wrk
from cli.server import free_port
from tunegate import keys
from tunegate.redis import EmbeddedRedis

__all__ = ["Targets"]

ROOT = Path(__file__).resolve().parents[2]
TUNEGATE = {"tunegate-pass": "pass", "tunegate-off": "off", "tunegate-on": "on"}
#: The same modes on the aiohttp client (``--aiohttp``): the lean client's baseline.
AIOHTTP = {"tunegate-off-aio": "off-aiohttp", "tunegate-on-aio": "on-aiohttp"}
#: The same modes from another checkout (``--baseline-root``), run in the same rounds.
BASELINE = {"base-pass": "pass", "base-off": "off", "base-on": "on"}
PATH = "/v1/chat/completions"


def _wait_http(url: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} not up in {timeout}s")
        time.sleep(0.1)


class Targets:
    """Starts and stops everything the benchmark talks to (except nginx)."""

    def __init__(
        self, litellm: str | None = None, aiohttp: bool = False, baseline: Path | None = None
    ) -> None:
        self.litellm = litellm
        # target name -> (mode, the checkout it runs from)
        self._tunegate = {
            name: (mode, ROOT)
            for name, mode in {**TUNEGATE, **(AIOHTTP if aiohttp else {})}.items()
        }
        if baseline is not None:
            self._tunegate |= {name: (mode, baseline) for name, mode in BASELINE.items()}
        self._dir = tempfile.TemporaryDirectory(prefix="tg-bench-")
        self._redis = EmbeddedRedis(Path(self._dir.name) / "redis", port=free_port())
        self._processes: list[subprocess.Popen[bytes]] = []
        self._ports: dict[tuple[str, str], int] = {}
        self._pids: dict[tuple[str, str], int] = {}

    @property
    def names(self) -> list[str]:
        extra = ["litellm", "litellm-mirror"] if self.litellm else []
        return ["direct", *self._tunegate, *extra]

    def port(self) -> int:
        return free_port()

    def start(self, nginx: Nginx) -> None:
        redis_url = self._redis.start()
        for name, (mode, root) in self._tunegate.items():
            env = dict(os.environ, PYTHONPATH=str(root))
            for fmt, upstream_port in (("json", nginx.json_port), ("sse", nginx.sse_port)):
                port = free_port()
                process = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "bench.proxy.target",
                        mode,
                        f"http://127.0.0.1:{upstream_port}/v1",
                        str(port),
                        redis_url,
                    ],
                    cwd=root,
                    env=env,
                )
                self._processes.append(process)
                self._ports[name, fmt] = port
                self._pids[name, fmt] = process.pid
                _wait_http(f"http://127.0.0.1:{port}/healthz", process, 30)
        if self.litellm:
            try:
                self._start_litellm(nginx)
            except RuntimeError as exc:
                print(f"LiteLLM left out: {exc}", flush=True)
                self.litellm = None

    def _start_litellm(self, nginx: Nginx) -> None:
        assert self.litellm is not None
        api_base = f"http://127.0.0.1:{nginx.json_port}/v1"
        for name, silent in (("litellm", False), ("litellm-mirror", True)):
            params: dict[str, object] = {
                "model": "openai/bench",
                "api_base": api_base,
                "api_key": "sk-upstream",
            }
            if silent:
                params["silent_model"] = "bench-shadow"
            config = {
                "model_list": [
                    {"model_name": "bench", "litellm_params": params},
                    {
                        "model_name": "bench-shadow",
                        "litellm_params": {
                            "model": "openai/bench-ft",
                            "api_base": api_base,
                            "api_key": "sk-upstream",
                        },
                    },
                ],
                "litellm_settings": {"drop_params": True, "telemetry": False},
                "general_settings": {"master_key": CLIENT_KEY},
            }
            path = Path(self._dir.name) / f"{name}.yaml"
            path.write_text(yaml.safe_dump(config))
            port = free_port()
            env = dict(os.environ, LITELLM_LOG="ERROR", LITELLM_TELEMETRY="False")
            process = subprocess.Popen(
                [self.litellm, "--config", str(path), "--port", str(port), "--num_workers", "2"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            self._processes.append(process)
            self._ports[name, "json"] = port
            _wait_http(f"http://127.0.0.1:{port}/health/liveliness", process, 240)

    def url(self, name: str, fmt: str, nginx: Nginx) -> str | None:
        if name == "direct":
            port = nginx.json_port if fmt == "json" else nginx.sse_port
            return f"http://127.0.0.1:{port}{PATH}"
        found = self._ports.get((name, fmt))
        return None if found is None else f"http://127.0.0.1:{found}{PATH}"

    def cpu_seconds(self, name: str, fmt: str) -> float | None:
        """User + system CPU time the target's process has used so far (tunegate only)."""
        pid = self._pids.get((name, fmt))
        if pid is None:
            return None
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def wants(self, name: str, fmt: str, concurrency: int) -> bool:
        """LiteLLM is slow: only JSON at c=32, the issue's comparison point."""
        return not name.startswith("litellm") or (fmt == "json" and concurrency == 32)

    def warm_up(self, nginx: Nginx, body_json: str, body_sse: str) -> None:
        for name in self.names:
            for fmt, body in (("json", body_json), ("sse", body_sse)):
                url = self.url(name, fmt, nginx)
                if url is not None and self.wants(name, fmt, 32):
                    run_wrk(url, body, connections=32, duration_s=1)

    def pair_counts(self) -> dict[str, float]:
        """What tunegate-on logged and dropped (from its /metrics), and the stream length."""
        counts: dict[str, float] = {}
        for fmt in ("json", "sse"):
            port = self._ports["tunegate-on", fmt]
            text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
            for family in text_string_to_metric_families(text):
                if family.name in ("tunegate_pairs_logged", "tunegate_requests"):
                    total = sum(s.value for s in family.samples if s.name.endswith("_total"))
                    counts[f"{fmt}:{family.name}"] = total
                if family.name in ("tunegate_pairs_dropped", "tunegate_shadow_dropped"):
                    for sample in family.samples:
                        if sample.name.endswith("_total") and sample.value:
                            reason = sample.labels["reason"]
                            counts[f"{fmt}:{family.name}:{reason}"] = sample.value
        client = redis.Redis.from_url(self._redis.url)
        counts["stream_length"] = client.xlen(keys.pairs("bench"))
        client.close()
        return counts

    def __enter__(self) -> Targets:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stop_all(self._processes)
        self._redis.stop()
        self._dir.cleanup()
