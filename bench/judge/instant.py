"""An instant OpenAI-compatible judge (always ``A>B``) that counts its calls; run as a process."""

from __future__ import annotations

import sys

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

__all__ = ["app"]

_REPLY = orjson.dumps(
    {
        "id": "instant",
        "object": "chat.completion",
        "model": "instant-judge",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant",
                            "content": '{"analysis": "instant", "verdict": "A>B"}'},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 200, "completion_tokens": 12, "total_tokens": 212},
    }
)  # fmt: skip
_calls = 0


async def chat(request: Request) -> Response:
    global _calls
    await request.body()
    _calls += 1
    return Response(_REPLY, media_type="application/json")


async def calls(request: Request) -> Response:
    return Response(orjson.dumps({"calls": _calls}), media_type="application/json")


app = Starlette(
    routes=[
        Route("/v1/chat/completions", chat, methods=["POST"]),
        Route("/calls", calls, methods=["GET"]),
    ]
)

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
                loop="uvloop", http="httptools", access_log=False)  # fmt: skip
