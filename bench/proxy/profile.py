"""Profile one tunegate target under wrk load with py-spy and print the functions costing most.

    python -m bench.proxy.profile [on|off|pass] [json|sse] [seconds]

Prints the top functions by own samples and by inclusive samples (the process is the single
uvicorn worker; the flame data is kept in bench/results/profile-<mode>.txt for a flame graph).
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench.children import stop_all
from bench.proxy.__main__ import BODY_JSON, BODY_SSE
from bench.proxy.nginx import Nginx
from bench.proxy.processes import ROOT, _wait_http
from bench.proxy.wrk import run_wrk
from cli.server import free_port
from tunegate.redis import EmbeddedRedis

__all__ = ["main"]


def _top(raw: Path, count: int = 25) -> None:
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        frames = stack.split(";")
        samples = int(n)
        total += samples
        own[frames[-1]] += samples
        for frame in set(frames):
            inclusive[frame] += samples
    print(f"{total} samples\n-- own time --")
    for frame, hits in own.most_common(count):
        print(f"{100 * hits / total:5.1f}%  {frame}")
    print("-- inclusive --")
    for frame, hits in inclusive.most_common(count):
        print(f"{100 * hits / total:5.1f}%  {frame}")


def main(argv: list[str]) -> None:
    mode = argv[0] if argv else "on"
    fmt = argv[1] if len(argv) > 1 else "json"
    seconds = float(argv[2]) if len(argv) > 2 else 10.0
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    raw = out / f"profile-{mode}-{fmt}.txt"
    server = EmbeddedRedis(Path(os.environ.get("TMPDIR", "/tmp")) / "tg-profile-redis", free_port())
    with Nginx(free_port(), free_port()) as nginx:
        redis_url = server.start()
        port = free_port()
        upstream = nginx.json_port if fmt == "json" else nginx.sse_port
        target = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.proxy.target",
                mode,
                f"http://127.0.0.1:{upstream}/v1",
                str(port),
                redis_url,
            ],
            cwd=ROOT,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
        )
        try:
            _wait_http(f"http://127.0.0.1:{port}/healthz", target, 30)
            url = f"http://127.0.0.1:{port}/v1/chat/completions"
            body = BODY_JSON if fmt == "json" else BODY_SSE
            run_wrk(url, body, connections=32, duration_s=1)
            load = threading.Thread(
                target=run_wrk,
                args=(url, body),
                kwargs={"connections": 32, "duration_s": seconds + 2},
            )
            load.start()
            time.sleep(1)
            subprocess.run(
                [
                    "py-spy",
                    "record",
                    "--pid",
                    str(target.pid),
                    "--duration",
                    str(int(seconds)),
                    "--format",
                    "raw",
                    "--output",
                    str(raw),
                    "--rate",
                    "250",
                    "--nonblocking",
                ],
                check=True,
                capture_output=True,
            )
            load.join()
        finally:
            stop_all([target])
            server.stop()
    _top(raw)


if __name__ == "__main__":
    main(sys.argv[1:])
