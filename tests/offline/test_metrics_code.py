"""pass@k: the unbiased estimator, and real sandboxed execution (loops, network, memory)."""

from __future__ import annotations

import math
import socket
import time

import pytest

from analysis.offline.metrics_code import extract_code, network_sandbox, pass_at_k, run_tests

SANDBOXES = ["socket-guard"] + (["unshare"] if network_sandbox() == "unshare" else [])


def test_pass_at_k_matches_the_definition():
    # 1 - C(n-c, k) / C(n, k), and the Monte-Carlo meaning: P(some of k draws passes)
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert pass_at_k(10, 3, 5) == pytest.approx(1 - math.comb(7, 5) / math.comb(10, 5))
    assert pass_at_k(5, 0, 3) == 0.0
    assert pass_at_k(5, 3, 3) == 1.0  # fewer failures than draws: some draw must pass
    with pytest.raises(ValueError):
        pass_at_k(3, 4, 1)


def test_extract_code_from_fences():
    assert extract_code("Sure:\n```python\ndef f():\n    return 1\n```\nDone.") == (
        "def f():\n    return 1\n"
    )
    assert extract_code("def g(): pass") == "def g(): pass"


@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_passing_and_failing_programs(sandbox):
    ok = run_tests("def add(a, b):\n    return a + b", "assert add(2, 3) == 5", sandbox=sandbox)
    assert ok.passed and ok.reason == "passed"
    wrong = run_tests("def add(a, b):\n    return a - b", "assert add(2, 3) == 5", sandbox=sandbox)
    assert not wrong.passed and wrong.reason == "failed"
    broken = run_tests("def add(a, b) return", "", sandbox=sandbox)
    assert not broken.passed and broken.reason == "error" and "SyntaxError" in broken.detail


@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_a_forever_loop_is_stopped_at_the_time_limit(sandbox):
    started = time.monotonic()
    result = run_tests("while True:\n    pass", "", timeout_s=1.0, sandbox=sandbox)
    assert not result.passed and result.reason == "timeout"
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_network_is_unreachable(sandbox):
    """A server listens on loopback here; the sandboxed program must not reach it."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    program = (
        "import socket\n"
        f"s = socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
        "s.sendall(b'leak')\n"
    )
    result = run_tests(program, "", timeout_s=4, sandbox=sandbox)
    listener.setblocking(False)
    with pytest.raises(BlockingIOError):  # a connection would wait in the backlog: none does
        listener.accept()
    listener.close()
    assert not result.passed and result.reason == "error"
    assert "OSError" in result.detail or "ConnectionRefused" in result.detail


@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_memory_limit(sandbox):
    result = run_tests("x = bytearray(2 * 1024 ** 3)", "", memory_mb=256, sandbox=sandbox)
    assert not result.passed and result.reason == "memory"
