"""Instructions per request of the HTTP edge alone: uvicorn and a tree's protocol class, no proxy.

    python -m bench.proxy.edge_cost                              # this tree's hardened protocol
    python -m bench.proxy.edge_cost --root /path/to/landed       # that tree's protocol
    python -m bench.proxy.edge_cost --protocol httptools         # uvicorn's own, unchanged

A trivial raw ASGI app (reads the body, answers ``{}`` with a start and a body message, as
proxy/asgi.py's ``send_response`` does) behind ``uvicorn.run(http=...)`` with uvloop, driven by
``--requests`` requests one after another over one keep-alive connection (the JSON request of
bench/proxy/cost.py). callgrind counts the server's instructions for the measured requests only
(``callgrind_control`` switches counting on after the warm-up), so the figure does not depend on
what else the machine runs. It bounds what the edge's hardening can cost or save per request:
the rest of a proxied request is the proxy's own work.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.children import stop_all
from bench.proxy.__main__ import BODY_JSON
from bench.proxy.cost import _drive, _instructions
from bench.proxy.processes import ROOT
from cli.server import free_port

__all__ = ["main"]

_SERVER = """
import sys, uvicorn
protocol = sys.argv[2]
if protocol == "tree":
    from proxy.http_protocol import http_protocol
    protocol = http_protocol()
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    message = await receive()
    while message.get("more_body"):
        message = await receive()
    await send({"type": "http.response.start", "status": 200, "headers": [
        (b"content-type", b"application/json"), (b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"{}", "more_body": False})
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), loop="uvloop", http=protocol,
            lifespan="off", log_level="warning", access_log=False)
"""


def _wait_port(port: int, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("server did not start")


def measure(root: Path, protocol: str, requests: int, warmup: int) -> int:
    """Instructions per request of the server for ``requests`` keep-alive requests."""
    with tempfile.TemporaryDirectory(prefix="tg-edge-") as folder:
        grind = Path(folder) / "callgrind.out"
        port = free_port()
        server = subprocess.Popen(
            [
                "valgrind",
                "--tool=callgrind",
                "--instr-atstart=no",
                f"--callgrind-out-file={grind}",
                sys.executable,
                "-c",
                _SERVER,
                str(port),
                protocol,
            ],
            cwd=root,
            env=dict(os.environ, PYTHONPATH=str(root)),
        )
        try:
            _wait_port(port, server, 300)
            _drive(port, BODY_JSON, warmup)
            subprocess.run(["callgrind_control", "-i", "on", str(server.pid)], check=True)
            _drive(port, BODY_JSON, requests)
            for switch in (["-d"], ["-i", "off"]):
                subprocess.run(["callgrind_control", *switch, str(server.pid)], check=True)
        finally:
            stop_all([server], grace_s=60)
        return _instructions(Path(folder)) // requests


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.proxy.edge_cost", description=__doc__)
    parser.add_argument("--root", type=Path, default=ROOT, help="checkout whose protocol to run")
    parser.add_argument(
        "--protocol",
        default="tree",
        choices=["tree", "httptools"],
        help="the tree's proxy.http_protocol, or uvicorn's own httptools protocol",
    )
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    args = parser.parse_args()
    root = args.root.resolve()
    per_request = measure(root, args.protocol, args.requests, args.warmup)
    print(f"{root} {args.protocol}: {per_request} instructions per request")


if __name__ == "__main__":
    main()
