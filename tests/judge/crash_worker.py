"""A real judge worker process that SIGKILLs itself at one step of the write/ack sequence.

``python -m tests.judge.crash_worker CONFIG NAME STEP N`` runs ``JudgeWorker`` as ``tunegate
judge --burst`` does, and kills itself with SIGKILL (no cleanup, no ack, no flush) right after
the N-th time it reaches STEP (one of ``judge.worker.STEPS``), so a drill can hit every point
between two writes, or between the last write and the XACK, deterministically.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from cli.settings import load_settings
from judge.worker import STEPS, JudgeWorker, StepHook
from tunegate.redis import connect


def crash_at(step: str, n: int) -> StepHook:
    if step not in STEPS:
        raise SystemExit(f"unknown step {step!r}; one of {STEPS}")
    seen = 0

    def hook(reached: str) -> None:
        nonlocal seen
        if reached == step:
            seen += 1
            if seen == n:
                os.kill(os.getpid(), signal.SIGKILL)

    return hook


async def main(config: str, name: str, step: str, n: int) -> None:
    settings = load_settings(config)
    hook = crash_at(step, n)
    async with (
        connect(settings.redis) as redis,
        JudgeWorker(settings.judge, settings.experiments, redis, name=name, on_step=hook) as worker,
    ):
        stats = await worker.run(until_idle=True)
    print(stats, file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
