"""An OpenAI-compatible HTTP judge double: scripted verdicts, malformed output, 429s, 5xx, hangs.

Each call takes the next scripted :class:`Step`, else asks the ``policy`` (a function of the
rendered prompt), else answers ``A=B``. ``outage(seconds, …)`` makes every call for that long
answer 429 (or another status) with a ``Retry-After`` header, then the judge recovers. ``calls``
keeps every request body the double received, ``answers`` the (monotonic time, status) of each.
"""

from __future__ import annotations

import asyncio
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

__all__ = [
    "JudgeDouble",
    "Step",
    "prefer_longer",
    "prefer_slot_a",
    "slots",
]


@dataclass
class Step:
    """One scripted answer."""

    label: str | None = "A=B"
    status: int = 200
    content: str | None = None  # the message content verbatim (e.g. malformed output)
    delay: float = 0.0  # seconds before answering (a hang when longer than the client timeout)
    logprobs: dict[str, float] | None = None  # label -> logprob at the label token
    tokens: tuple[int, int] = (100, 20)
    headers: dict[str, str] = field(default_factory=dict)  # e.g. {"retry-after": "3"}


_SLOT = re.compile(
    r"\[(?:Final response|Response) A\]\n(.*?)\n\n\[(?:Final response|Response) B\]\n(.*)$",
    re.DOTALL,
)


def slots(prompt: str) -> tuple[str, str]:
    """The two responses as the judge prompt shows them (slot A, slot B)."""
    match = _SLOT.search(prompt)
    if match is None:
        raise ValueError("no response slots in the prompt")
    return match.group(1).strip(), match.group(2).strip()


def prefer_slot_a(prompt: str) -> Step:
    return Step("A>B")


def prefer_longer(prompt: str) -> Step:
    a, b = slots(prompt)
    return Step("A>B" if len(a) > len(b) else "B>A" if len(b) > len(a) else "A=B")


@dataclass
class JudgeDouble:
    policy: Callable[[str], Step] | None = None
    steps: deque[Step] = field(default_factory=deque)
    calls: list[dict[str, Any]] = field(default_factory=list)
    answers: list[tuple[float, int]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _outage_until: float = 0.0
    _outage_seconds: float = 0.0
    _outage: Step | None = None

    def script(self, *steps: Step) -> None:
        with self._lock:
            self.steps.extend(steps)

    def outage(
        self, seconds: float, *, status: int = 429, retry_after: float | None = 3,
        from_first_call: bool = False,
    ) -> None:  # fmt: skip
        """For ``seconds`` from now (or from the next call), answer every call ``status`` with
        ``Retry-After``."""
        headers = {} if retry_after is None else {"retry-after": f"{retry_after:g}"}
        with self._lock:
            self._outage = Step(status=status, headers=headers)
            self._outage_seconds = seconds
            self._outage_until = math.inf if from_first_call else time.monotonic() + seconds

    def statuses(self) -> list[int]:
        with self._lock:
            return [status for _, status in self.answers]

    @property
    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/chat/completions", self._chat, methods=["POST"])])

    def _next(self, prompt: str) -> Step:
        with self._lock:
            if self._outage is not None and self._outage_until == math.inf:
                self._outage_until = time.monotonic() + self._outage_seconds
            if self._outage is not None and time.monotonic() < self._outage_until:
                return self._outage
            if self.steps:
                return self.steps.popleft()
        return self.policy(prompt) if self.policy is not None else Step()

    async def _chat(self, request: Request) -> Response:
        body = orjson.loads(await request.body())
        with self._lock:
            self.calls.append(body)
        prompt = "\n".join(str(m.get("content", "")) for m in body.get("messages", []))
        step = self._next(prompt)
        if step.delay:
            await asyncio.sleep(step.delay)
        with self._lock:
            self.answers.append((time.monotonic(), step.status))
        if step.status != 200:
            return JSONResponse(
                {"error": {"message": "scripted", "type": "x"}}, step.status, headers=step.headers
            )
        content = step.content
        if content is None:
            content = orjson.dumps(
                {"analysis": "scripted analysis", "verdict": step.label}
            ).decode()
        choice: dict[str, Any] = {
            "index": 0,
            "message": {"role": "assistant", "content": content},
            "finish_reason": "stop",
        }
        if step.logprobs is not None and step.label is not None:
            top = [{"token": k, "logprob": v} for k, v in step.logprobs.items()]
            choice["logprobs"] = {
                "content": [
                    {"token": "{", "logprob": 0.0, "top_logprobs": []},
                    {"token": step.label, "logprob": step.logprobs.get(step.label, 0.0),
                     "top_logprobs": top},
                ]
            }  # fmt: skip
        return JSONResponse(
            {
                "id": f"judge-{len(self.calls)}",
                "object": "chat.completion",
                "model": body.get("model", "judge"),
                "choices": [choice],
                "usage": {
                    "prompt_tokens": step.tokens[0],
                    "completion_tokens": step.tokens[1],
                    "total_tokens": sum(step.tokens),
                },
            }
        )
