"""pass@1 / pass@k for code: each answer runs with its tests in a sandboxed subprocess.

The program (the answer's code, then the item's tests) runs in a fresh ``python -I`` process
with a wall-clock timeout, CPU-time and address-space limits (``resource.setrlimit`` in the
child before exec) and no network: inside a new user and network namespace (``unshare -rn``)
where the system allows it, else behind a guard that replaces the socket module's connecting
functions (weaker: it stops ordinary code, not a determined one; the report states which
sandbox ran). pass@k is the unbiased estimator of Chen et al. (2021), ``1 - C(n-c, k) / C(n, k)``.
"""

from __future__ import annotations

import functools
import math
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ExecResult", "extract_code", "network_sandbox", "pass_at_k", "run_tests"]

#: Prepended when no network namespace is available: every way out through ``socket`` raises.
_GUARD = """\
import socket as _s
def _blocked(*a, **k):
    raise OSError("network access is disabled in the tunegate sandbox")
for _name in ("create_connection", "getaddrinfo", "gethostbyname", "socketpair"):
    setattr(_s, _name, _blocked)
class _NoSocket(_s.socket):
    def connect(self, *a, **k): _blocked()
    def connect_ex(self, *a, **k): _blocked()
    def sendto(self, *a, **k): _blocked()
    def bind(self, *a, **k): _blocked()
_s.socket = _NoSocket
del _s, _name, _blocked, _NoSocket
"""


@dataclass(frozen=True, slots=True)
class ExecResult:
    """How one program run ended."""

    passed: bool
    reason: str  # passed, failed, timeout, memory, error
    detail: str = ""


@functools.cache
def network_sandbox() -> str:
    """``unshare`` when a user + network namespace can be made here, else ``socket-guard``."""
    tool = shutil.which("unshare")
    if tool is None:
        return "socket-guard"
    try:
        done = subprocess.run([tool, "-rn", "true"], capture_output=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "socket-guard"
    return "unshare" if done.returncode == 0 else "socket-guard"


def extract_code(answer: str) -> str:
    """The answer's code: its first fenced block (```python or ```), else the whole text."""
    fenced = re.search(r"```(?:python|py)?[ \t]*\n(.*?)```", answer, re.DOTALL)
    return fenced.group(1) if fenced else answer


#: Runs first in the child: limits set here bind the program (hard limits cannot be raised back),
#: and no preexec_fn is needed (which is unsafe in a process with threads).
_BOOT = """\
import resource, runpy, sys
cpu, memory = int(sys.argv[1]), int(sys.argv[2]) * 1024 * 1024
resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
sys.argv = sys.argv[3:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def run_tests(
    code: str,
    tests: str,
    *,
    timeout_s: float = 5.0,
    memory_mb: int = 512,
    sandbox: str | None = None,
) -> ExecResult:
    """Run ``code`` then ``tests`` in a sandboxed interpreter; passed when it exits 0.

    ``sandbox`` is ``unshare`` or ``socket-guard``; None picks the strongest available.
    """
    sandbox = sandbox or network_sandbox()
    program = (_GUARD if sandbox == "socket-guard" else "") + code + "\n\n" + tests + "\n"
    with tempfile.TemporaryDirectory(prefix="tunegate-sandbox-") as folder:
        script = Path(folder) / "program.py"
        script.write_text(program)
        cpu = max(1, math.ceil(timeout_s))
        command = [sys.executable, "-I", "-c", _BOOT, str(cpu), str(memory_mb), str(script)]
        if sandbox == "unshare":
            command = ["unshare", "-rn", *command]
        try:
            done = subprocess.run(
                command,
                cwd=folder,
                capture_output=True,
                timeout=timeout_s,
                env={"PATH": "/usr/bin:/bin", "PYTHONHASHSEED": "0"},
                check=False,
            )
        except subprocess.TimeoutExpired:
            return ExecResult(False, "timeout", f"exceeded {timeout_s:g}s")
    stderr = done.stderr.decode(errors="replace")[-2000:]
    if done.returncode == 0:
        return ExecResult(True, "passed")
    if "MemoryError" in stderr:
        return ExecResult(False, "memory", stderr)
    if done.returncode < 0:
        return ExecResult(False, "timeout", f"killed by signal {-done.returncode}")
    kind = "failed" if "AssertionError" in stderr else "error"
    return ExecResult(False, kind, stderr)


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased pass@k from ``n`` samples of which ``c`` passed (Chen et al. 2021)."""
    if not 0 <= c <= n or k < 1:
        raise ValueError(f"pass_at_k needs 0 <= c <= n and k >= 1 (n={n}, c={c}, k={k})")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)
