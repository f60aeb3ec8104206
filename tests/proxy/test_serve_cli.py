"""`tunegate serve` as a user runs it: embedded Redis by default, config errors exit 2."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import yaml

from cli.server import free_port
from tests.proxy.conftest import Doubles


def serve(*args: str, cwd: Path) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    return subprocess.Popen(
        [sys.executable, "-m", "cli", "serve", *args],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def test_serve_with_embedded_redis(tmp_path: Path, doubles: Doubles):
    port = free_port()
    config = {
        "redis": {"data_dir": str(tmp_path / "redis-data")},
        "upstreams": {n: {"base_url": f"{u}/v1"} for n, u in doubles.urls.items()},
        "experiments": [{"name": "exp", "control": {"upstream": "control"},
                         "candidate": {"upstream": "candidate"}}],
    }  # fmt: skip
    (tmp_path / "tunegate.yaml").write_text(yaml.safe_dump(config))
    process = serve("--config", "tunegate.yaml", "--port", str(port), cwd=tmp_path)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            assert time.monotonic() < deadline, "tunegate serve did not become ready"
            time.sleep(0.05)
        with openai.OpenAI(
            base_url=f"http://127.0.0.1:{port}/v1", api_key="k", max_retries=0
        ) as client:
            out = client.chat.completions.create(
                model="exp", messages=[{"role": "user", "content": "hi"}]
            )
        assert out.choices[0].message.content == "Hello from control."
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=15)
    # a clean SIGTERM exits 0 (uvicorn re-raises the signal; cli/serve.py absorbs it)
    assert process.returncode == 0, output
    assert "Application shutdown complete" in output
    assert "embedded Redis" in output and "redis-data" in output
    data = tmp_path / "redis-data"
    assert data.is_dir() and data.stat().st_mode & 0o777 == 0o700
    files = [p for p in data.rglob("*") if p.is_file()]
    assert files, "redis wrote no files"
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in files), [
        (p.name, oct(p.stat().st_mode)) for p in files
    ]


def test_serve_invalid_config_exits_2_naming_the_field(tmp_path: Path):
    config = {
        "upstreams": {"a": {"base_url": "http://127.0.0.1:1/v1"}},
        "experiments": [{"name": "exp", "control": {"upstream": "a"},
                         "candidate": {"upstream": "a"}, "ab_weight": 3}],
    }  # fmt: skip
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(config))
    process = serve("--config", "bad.yaml", cwd=tmp_path)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 2
    assert "experiments[0].ab_weight" in output and "Traceback" not in output
