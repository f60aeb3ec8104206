"""Helpers for the hostile-input tests: `tunegate serve` in front of a byte-recording upstream,
and a raw-socket client that writes exactly the bytes a test chooses.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h11
import httpx
import orjson
import yaml

from cli.server import free_port
from tests.servers.recording import RecordingServer

__all__ = ["Answer", "Served", "exchange", "raw_request", "serve_edge"]

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Served:
    """A running `tunegate serve` and its port."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path  # its stdout and stderr (a file: a pipe nobody reads would block it)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def edge_config(upstream: RecordingServer, redis_url: str, **proxy: Any) -> dict[str, Any]:
    rec = {"base_url": f"{upstream.url}/v1", "timeout_seconds": 5, "api_key_env": "EDGE_KEY"}
    return {
        "redis": {"url": redis_url},
        "upstreams": {"rec": rec},
        "experiments": [{"name": "exp", "control": {"upstream": "rec"},
                         "candidate": {"upstream": "rec", "model": "cand"}}],
        "proxy": {"passthrough_upstream": "rec", "state_refresh_seconds": 0.1,
                  "shutdown_grace_seconds": 1, **proxy},
    }  # fmt: skip


@contextmanager
def serve_edge(config: dict[str, Any], tmp: Path, **env: str) -> Iterator[Served]:
    """`tunegate serve` with ``config`` (as YAML) until the block ends; SIGTERM then."""
    port = free_port()
    (tmp / "edge.yaml").write_text(yaml.safe_dump(config))
    environ = dict(os.environ, PYTHONPATH=str(ROOT), EDGE_KEY="proxy-upstream-key", **env)
    log = tmp / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli", "serve", "--config", "edge.yaml", "--port", str(port)],
            cwd=tmp, env=environ, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    served = Served(process, port, log)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{served.url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None:
                raise AssertionError(served.output())
            assert time.monotonic() < deadline, "tunegate serve did not become ready"
            time.sleep(0.05)
        yield served
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Answer:
    """One response as h11 read it off the socket."""

    status: int
    headers: dict[bytes, bytes]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


def raw_request(
    method: str,
    target: str | bytes,
    *,
    headers: Sequence[tuple[str, str]] = (),
    body: bytes = b"",
) -> bytes:
    """A request head and body written byte for byte (no validation: tests send hostile bytes)."""
    t = target.encode("latin-1") if isinstance(target, str) else target
    head = [method.encode() + b" " + t + b" HTTP/1.1\r\nhost: edge\r\n"]
    for name, value in headers:
        head.append(f"{name}: {value}\r\n".encode("latin-1"))
    if body and not any(n.lower() in ("content-length", "transfer-encoding") for n, _ in headers):
        head.append(b"content-length: " + str(len(body)).encode() + b"\r\n")
    head.append(b"\r\n")
    return b"".join(head) + body


def exchange(port: int, data: bytes, *, responses: int = 1, timeout: float = 5.0) -> list[Answer]:
    """Write ``data`` on a new connection; read up to ``responses`` answers (fewer if it closes).

    h11 reads the answers; it must have "sent" a request to expect one, so a dummy GET goes
    through its state machine for each answer (those bytes are never written).
    """
    client = h11.Connection(h11.CLIENT)
    out: list[Answer] = []

    def expect() -> None:
        client.send(h11.Request(method="GET", target="/", headers=[("host", "edge")]))
        client.send(h11.EndOfMessage())

    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        expect()
        current: h11.Response | None = None
        body = bytearray()
        while len(out) < responses:
            event = client.next_event()
            if event is h11.NEED_DATA:
                try:
                    chunk = sock.recv(65536)
                except (ConnectionResetError, TimeoutError):
                    chunk = b""
                client.receive_data(chunk)
                if not chunk and current is None:
                    break
                continue
            if isinstance(event, h11.Response):
                current, body = event, bytearray()
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                assert current is not None
                out.append(Answer(current.status_code, dict(current.headers), bytes(body)))
                current = None
                if client.their_state is not h11.DONE or client.our_state is not h11.DONE:
                    break
                client.start_next_cycle()
                expect()
            else:  # ConnectionClosed
                break
    return out
