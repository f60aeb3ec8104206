"""Stop child processes the same way everywhere: SIGTERM, a grace period, then SIGKILL."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable

__all__ = ["stop_all"]


def stop_all(
    processes: Iterable[subprocess.Popen[bytes] | subprocess.Popen[str]], grace_s: float = 15
) -> None:
    """Terminate every process first (they drain in parallel), then wait; kill what outlives it."""
    running = [p for p in processes if p.poll() is None]
    for process in running:
        process.terminate()
    for process in running:
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
