"""A real Prometheus server (the `prometheus` binary) on a free loopback port, for the tests."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from types import TracebackType

import httpx
import yaml

from bench.children import stop_all
from cli.server import free_port

__all__ = ["PrometheusServer", "QueryError"]


class QueryError(AssertionError):
    """Prometheus refused a query (a parse or evaluation error); the message is its reason."""


class PrometheusServer:
    """Scrapes ``targets`` every ``interval`` and evaluates ``rule_files``; stops on exit."""

    def __init__(
        self,
        workdir: Path,
        targets: list[str],
        rule_files: list[Path],
        *,
        interval: str = "1s",
    ) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            raise RuntimeError("the prometheus binary is missing (apt-get install prometheus)")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "global": {"scrape_interval": interval, "evaluation_interval": interval},
            "rule_files": [str(path) for path in rule_files],
            "scrape_configs": [
                {"job_name": "tunegate", "static_configs": [{"targets": targets}]},
            ],
        }
        config_path = workdir / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(config))
        self._command = [
            binary,
            f"--config.file={config_path}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=warn",
        ]
        self._log = workdir / "prometheus.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._client = httpx.Client(base_url=self.url, timeout=5.0)

    def __enter__(self) -> PrometheusServer:
        with self._log.open("wb") as log:
            self._process = subprocess.Popen(self._command, stdout=log, stderr=subprocess.STDOUT)
        self._wait_ready(timeout=20.0)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._client.close()
        if self._process is not None:
            stop_all([self._process], grace_s=10)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError(f"prometheus exited: {self._log.read_text()[-2000:]}")
            try:
                if self._client.get("/-/ready").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"prometheus not ready: {self._log.read_text()[-2000:]}")
            time.sleep(0.05)

    def _get(self, path: str, params: dict[str, str]) -> object:
        response = self._client.get(path, params=params)
        body = response.json()
        if body.get("status") != "success":
            raise QueryError(f"{body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, object]]:
        """Instant vector result of ``expr`` now (a scalar comes back as one unlabelled row)."""
        data = self._get("/api/v1/query", {"query": expr})
        assert isinstance(data, dict)
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        result: list[dict[str, object]] = data["result"]
        return result

    def label_values(self, label: str, match: str) -> list[str]:
        values = self._get(f"/api/v1/label/{label}/values", {"match[]": match})
        assert isinstance(values, list)
        return [str(v) for v in values]

    def rules(self) -> list[dict[str, object]]:
        data = self._get("/api/v1/rules", {})
        assert isinstance(data, dict)
        return [rule for group in data["groups"] for rule in group["rules"]]

    def alerts(self) -> list[dict[str, object]]:
        data = self._get("/api/v1/alerts", {})
        assert isinstance(data, dict)
        alerts: list[dict[str, object]] = data["alerts"]
        return alerts
