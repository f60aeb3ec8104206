"""Per-request cost of one tunegate target, measured by counting rather than timing.

    python -m bench.proxy.cost [--mode on] [--format json] [--requests 3000]
    python -m bench.proxy.cost --root /path/to/other/checkout     # the same for another tree

Sends ``--requests`` requests one after another (c=1) over one keep-alive connection to a
target (bench/proxy/target.py) in front of nginx, and reports what the target's process spent
on them: Python function calls per request and the functions with the most calls (cProfile,
switched on for the measured requests only), garbage collections per request, and CPU
microseconds per request (a second, unprofiled pass: on a busy machine this one is noisy, the
call and collection counts are not). ``--root`` runs the target from another checkout (its own
bench/proxy/target.py) with this venv, so a baseline tree and this one can be compared
call for call. ``--candidate-down`` points the candidate at a closed port: what a failing
shadow copy costs against a healthy one.
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.children import stop_all
from bench.proxy.__main__ import BODY_JSON, BODY_SSE
from bench.proxy.nginx import Nginx
from bench.proxy.processes import ROOT, _wait_http
from bench.proxy.wrk import CLIENT_KEY
from cli.server import free_port
from tunegate.redis import EmbeddedRedis

__all__ = ["main"]

#: Runs the target with profiling and collection counting switched by signals (USR1 on,
#: USR2 off and dump to $TG_COST_OUT), so the counts cover the measured requests only.
_WRAPPER = """
import cProfile, gc, json, os, runpy, signal, sys
prof = cProfile.Profile()
state = {}
def on(signum, frame):
    state["gc"] = [s["collections"] for s in gc.get_stats()]
    if os.environ.get("TG_COST_PROFILE") == "1":
        prof.enable()
def off(signum, frame):
    prof.disable()
    out = os.environ["TG_COST_OUT"]
    gcs = [s["collections"] - b for s, b in zip(gc.get_stats(), state["gc"])]
    if os.environ.get("TG_COST_PROFILE") == "1":
        prof.dump_stats(out + ".prof")
    with open(out + ".json", "w") as f:
        json.dump({"gc": gcs}, f)
signal.signal(signal.SIGUSR1, on)
signal.signal(signal.SIGUSR2, off)
sys.argv = ["bench.proxy.target", *sys.argv[1:]]
runpy.run_module("bench.proxy.target", run_name="__main__")
"""


def _request(port: int, body: str) -> bytes:
    return (
        f"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n"
        f"content-type: application/json\r\nauthorization: Bearer {CLIENT_KEY}\r\n"
        f"x-user-id: bench-user\r\ncontent-length: {len(body)}\r\n\r\n{body}"
    ).encode()


def _drive(port: int, body: str, count: int) -> None:
    """``count`` requests in sequence on one connection; each answer read to its end."""
    payload = _request(port, body)
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(count):
            sock.sendall(payload)
            buf = b""
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    raise RuntimeError("target closed the connection")
                buf += chunk
                head, sep, rest = buf.partition(b"\r\n\r\n")
                if not sep:
                    continue
                if b" 200 " not in head.split(b"\r\n", 1)[0]:
                    raise RuntimeError(f"target answered {head[:200]!r}")
                lower = head.lower()
                if b"content-length:" in lower:
                    length = int(lower.split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
                    if len(rest) >= length:
                        break
                elif rest.endswith(b"0\r\n\r\n"):  # chunked: the last chunk
                    break


def _cpu_split_s(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def _instructions(folder: Path) -> int:
    """The instructions callgrind counted, over every dump it wrote (``totals:`` lines)."""
    total, found = 0, False
    for path in folder.glob("callgrind.out*"):
        for line in path.read_text().splitlines():
            if line.startswith("totals:"):
                total += int(line.split()[1])
                found = True
                break
    if not found:
        raise RuntimeError(f"no callgrind dump in {folder}")
    return total


def _measure(
    args: argparse.Namespace, root: Path, profile: bool, valgrind: bool = False
) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="tg-cost-") as folder:
        return _measure_in(args, root, Path(folder), profile, valgrind)


def _measure_in(
    args: argparse.Namespace, root: Path, tmp: Path, profile: bool, valgrind: bool
) -> dict[str, object]:
    server = EmbeddedRedis(tmp / "redis", free_port())
    out = tmp / "counts"
    with Nginx(free_port(), free_port()) as nginx:
        redis_url = server.start()
        port = free_port()
        upstream = nginx.json_port if args.format == "json" else nginx.sse_port
        env = dict(
            os.environ,
            PYTHONPATH=str(root),
            TG_COST_OUT=str(out),
            TG_COST_PROFILE="1" if profile else "0",
        )
        grind = tmp / "callgrind.out"
        prefix = (
            ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={grind}"]
            if valgrind
            else []
        )
        target = subprocess.Popen(
            [
                *prefix,
                sys.executable,
                "-c",
                _WRAPPER,
                args.mode,
                f"http://127.0.0.1:{upstream}/v1",
                str(port),
                redis_url,
                *([f"http://127.0.0.1:{free_port()}/v1"] if args.candidate_down else []),
            ],
            cwd=root,
            env=env,
        )
        try:
            _wait_http(f"http://127.0.0.1:{port}/healthz", target, 600 if valgrind else 120)
            body = BODY_JSON if args.format == "json" else BODY_SSE
            _drive(port, body, args.warmup)
            time.sleep(0.5)  # shadow copies and pair writes of the warm-up settle
            target.send_signal(signal.SIGUSR1)
            time.sleep(0.2)
            if valgrind:
                subprocess.run(["callgrind_control", "-i", "on", str(target.pid)], check=True)
            user0, system0 = _cpu_split_s(target.pid)
            started = time.perf_counter()
            _drive(port, body, args.requests)
            wall = time.perf_counter() - started
            time.sleep(5 if valgrind else 0.5)  # the last shadow copies and pair writes
            user1, system1 = _cpu_split_s(target.pid)
            user, system = user1 - user0, system1 - system0
            cpu = user + system
            if valgrind:
                for switch in (["-d"], ["-i", "off"]):  # dump now: a killed target writes none
                    subprocess.run(["callgrind_control", *switch, str(target.pid)], check=True)
            target.send_signal(signal.SIGUSR2)
            deadline = time.monotonic() + 30
            while not (out.with_suffix(".json")).exists() and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            stop_all([target], grace_s=60 if valgrind else 15)
            server.stop()
    if valgrind:
        if args.keep_callgrind is not None:  # for callgrind_annotate
            for i, dump in enumerate(sorted(tmp.glob("callgrind.out*"))):
                shutil.copy(dump, f"{args.keep_callgrind}.{i}")
        return {"instructions_per_request": _instructions(tmp) // args.requests}
    counts = json.loads(out.with_suffix(".json").read_text())
    result: dict[str, object] = {
        "gc_per_1k_requests": [round(1000 * n / args.requests, 2) for n in counts["gc"]],
        "cpu_us_per_request": round(1e6 * cpu / args.requests, 1),
        "user_us_per_request": round(1e6 * user / args.requests, 1),
        "system_us_per_request": round(1e6 * system / args.requests, 1),
        "wall_us_per_request": round(1e6 * wall / args.requests, 1),
    }
    if profile:
        if args.keep_profile is not None:  # for pstats, or to compare two trees by function
            shutil.copy(out.with_suffix(".prof"), args.keep_profile)
        stats = pstats.Stats(str(out.with_suffix(".prof")))
        table = stats.stats  # type: ignore[attr-defined]  # pstats keeps its table untyped
        calls = sum(nc for (_, nc, _, _, _) in table.values())
        result["calls_per_request"] = round(calls / args.requests, 1)
        top = sorted(table.items(), key=lambda item: -item[1][1])[: args.top]
        result["top"] = [
            (f"{Path(f).name}:{line}:{name}", round(nc / args.requests, 2))
            for (f, line, name), (_, nc, _, _, _) in top
        ]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.proxy.cost", description=__doc__)
    parser.add_argument("--mode", default="on", choices=["pass", "off", "on"])
    parser.add_argument("--format", default="json", choices=["json", "sse"])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--root", type=Path, default=ROOT, help="checkout to run the target from")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--valgrind",
        action="store_true",
        help="also count instructions per request (callgrind: slow, but steady on a busy machine)",
    )
    parser.add_argument(
        "--candidate-down",
        action="store_true",
        help="the candidate's upstream a closed port (every shadow copy a refused connect)",
    )
    parser.add_argument("--keep-callgrind", metavar="PREFIX", help="copy the dumps to PREFIX.N")
    parser.add_argument("--no-profile", action="store_true", help="CPU figures only")
    parser.add_argument("--keep-profile", metavar="PATH", help="copy cProfile's dump to PATH")
    args = parser.parse_args()
    root = args.root.resolve()
    report = {
        "root": str(root),
        "mode": args.mode,
        "format": args.format,
        "candidate": "down" if args.candidate_down else "healthy",
    }
    if not args.no_profile:
        report["profiled"] = _measure(args, root, profile=True)
    report["unprofiled"] = _measure(args, root, profile=False)
    if args.valgrind:
        report["callgrind"] = _measure(args, root, profile=False, valgrind=True)
    if args.json:
        print(json.dumps(report, indent=1))
        return
    for phase in ("profiled", "unprofiled", "callgrind"):
        found = report.get(phase)
        if not isinstance(found, dict):
            continue
        print(f"-- {phase} ({args.mode}, {args.format}, {args.requests} requests, c=1) --")
        for key, value in found.items():
            if key != "top":
                print(f"{key:22} {value}")
        for name, calls in found.get("top", []):
            print(f"{calls:10.2f}  {name}")


if __name__ == "__main__":
    main()
