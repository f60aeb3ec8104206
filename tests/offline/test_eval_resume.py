"""An interrupted `tunegate eval` resumes where it stopped; a torn cache line is skipped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from analysis.offline.cache import CachedOutput, OutputCache
from cli import main
from tests.offline.pipeline_fixtures import oracle, write_jsonl, write_spec

__all__ = ["oracle"]

ROOT = Path(__file__).resolve().parents[2]


def test_killed_run_resumes_without_asking_again(tmp_path, oracle):
    server, url = oracle
    server.delay_s = 0.05
    n = 30
    write_jsonl(
        tmp_path / "test.jsonl",
        [{"id": f"q{i}", "prompt": f"question {i}", "reference": "x"} for i in range(n)],
    )
    spec = write_spec(
        tmp_path / "eval.yaml",
        {
            "upstreams": {"double": {"base_url": url}},
            "control": {"upstream": "double", "model": "base", "system_prompt": "Be brief."},
            "candidate": {"upstream": "double", "model": "tuned"},
            "tests": [{"path": "test.jsonl"}],
            "concurrency": 2,
            "cache_dir": str(tmp_path / "cache"),
            "out_dir": str(tmp_path / "out"),
        },
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-m", "cli", "eval", "--spec", str(spec), "--no-html"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while server.calls < 12:
        assert child.poll() is None, "the run ended before it could be interrupted"
        assert time.monotonic() < deadline, f"only {server.calls} calls arrived"
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.wait(10)
    cached = len(OutputCache(tmp_path / "cache"))
    assert 10 <= cached < 2 * n
    before = server.calls
    server.delay_s = 0.0
    assert main(["eval", "--spec", str(spec), "--no-html"]) in (0, 1, 3)
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["cache_hits"] == cached
    assert run["model_calls"] == 2 * n - cached
    assert server.calls - before == 2 * n - cached
    assert len(OutputCache(tmp_path / "cache")) == 2 * n


def test_torn_line_is_skipped_and_errors_are_not_cached(tmp_path):
    with OutputCache(tmp_path) as cache:
        cache.put(CachedOutput(key="a", arm="control", item="1", text="kept"))
        cache.put(CachedOutput(key="b", arm="control", item="2", error="timeout"))
    with (tmp_path / "outputs.jsonl").open("ab") as handle:
        handle.write(b'{"key": "c", "arm": "cand')  # a crash mid-write
    again = OutputCache(tmp_path)
    assert len(again) == 1 and again.torn == 1
    hit = again.get("a")
    assert hit is not None and hit.text == "kept"
    assert again.get("b") is None and again.get("c") is None
    assert (again.hits, again.misses) == (1, 2)
