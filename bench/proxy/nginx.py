"""A fast fixed-body upstream: nginx as a non-daemon child with a temp config on loopback ports.

One server answers every request with a fixed chat completion (JSON), another with a fixed SSE
stream, so the benchmark measures the proxy, not a model.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import httpx

from bench.children import stop_all

__all__ = ["CHAT_JSON", "CHAT_SSE", "Nginx"]

CHAT_JSON = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 0,
        "model": "bench",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": "The quick brown fox jumps over it."},
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21},
    }
)


def _sse() -> str:
    events = []
    for piece in ["The ", "quick ", "brown ", "fox ", "jumps."]:
        chunk = {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "bench",
            "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
        }
        events.append(f"data: {json.dumps(chunk)}\n\n")
    events.append("data: [DONE]\n\n")
    return "".join(events)


CHAT_SSE = _sse()


def _quote(body: str) -> str:
    return "'" + body.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"


class Nginx:
    """nginx with a JSON server on ``json_port`` and an SSE server on ``sse_port``."""

    def __init__(self, json_port: int, sse_port: int, binary: str = "/usr/sbin/nginx") -> None:
        self.json_port, self.sse_port = json_port, sse_port
        self.binary = shutil.which("nginx") or binary
        self._dir = tempfile.TemporaryDirectory(prefix="tg-bench-nginx-")
        self._process: subprocess.Popen[bytes] | None = None

    def _config(self) -> str:
        d = self._dir.name
        temp = " ".join(
            f"{k}_temp_path {d}/{k};" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        return f"""
worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  {temp}
  server {{ listen 127.0.0.1:{self.json_port};
    location / {{ default_type application/json; return 200 {_quote(CHAT_JSON)}; }} }}
  server {{ listen 127.0.0.1:{self.sse_port};
    location / {{ default_type text/event-stream; return 200 {_quote(CHAT_SSE)}; }} }}
}}
"""

    def __enter__(self) -> Nginx:
        conf = Path(self._dir.name) / "nginx.conf"
        conf.write_text(self._config())
        self._process = subprocess.Popen(
            [
                self.binary,
                "-p",
                self._dir.name,
                "-e",
                f"{self._dir.name}/error.log",
                "-c",
                str(conf),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{self.json_port}/").raise_for_status()
                return self
            except httpx.TransportError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    err = self._process.stderr.read().decode() if self._process.stderr else ""
                    raise RuntimeError(f"nginx did not start: {err}") from None
                time.sleep(0.05)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._process is not None:
            stop_all([self._process], grace_s=10)
            if self._process.stderr:
                self._process.stderr.close()
        self._dir.cleanup()
