"""Run wrk with a POST script for a bounded time and read its latency percentiles as JSON."""

from __future__ import annotations

import json
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CLIENT_KEY", "WrkResult", "run_wrk"]

#: The bearer key every benchmark client sends (LiteLLM's master key in the benchmark).
CLIENT_KEY = "sk-bench-7f3c9a1e5b2d4c6a8e0f1b3d5c7a9e2f4b6d8c0a1e3f5b7d"

_SCRIPT = """
wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {key}"
wrk.headers["x-user-id"] = "bench-user"
{delay}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRKJSON {{\\"requests\\":%d,\\"duration_us\\":%d,\\"errors\\":%d,\\"non2xx\\":%d," ..
    "\\"p50_us\\":%d,\\"p99_us\\":%d}}\\n",
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass(frozen=True)
class WrkResult:
    requests: int
    duration_s: float
    errors: int
    non2xx: int
    p50_ms: float
    p99_ms: float
    per_cpu_s: float | None = None  # requests per CPU-second of the target process, if known

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s


def _lua_string(text: str) -> str:
    return "[==[" + text + "]==]"


def run_wrk(
    url: str,
    body: str,
    *,
    connections: int,
    duration_s: float,
    threads: int = 1,
    delay_ms: float | None = None,
) -> WrkResult:
    """POST ``body`` to ``url`` from ``connections`` keep-alive connections for ``duration_s``.

    ``delay_ms`` paces each connection (a pause after every response) for fixed-load runs.
    """
    delay = f"function delay() return {delay_ms} end" if delay_ms else ""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_SCRIPT.format(body=_lua_string(body), delay=delay, key=CLIENT_KEY))
    try:
        out = subprocess.run(
            [
                "wrk",
                f"-t{min(threads, connections)}",
                f"-c{connections}",
                f"-d{max(1, round(duration_s))}s",
                "--timeout",
                "10s",
                "-s",
                script.name,
                url,
            ],
            capture_output=True,
            text=True,
            timeout=duration_s + 30,
            check=True,
        ).stdout
    finally:
        Path(script.name).unlink()
    line = next(x for x in out.splitlines() if x.startswith("WRKJSON "))
    raw = json.loads(line.removeprefix("WRKJSON "))
    return WrkResult(
        requests=raw["requests"],
        duration_s=raw["duration_us"] / 1e6,
        errors=raw["errors"],
        non2xx=raw["non2xx"],
        p50_ms=raw["p50_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
    )
