"""A model server whose answers a drill switches at run time: healthy, hung, erroring or slow.

Run as ``python -m bench.proxy.fault_server PORT``: the OpenAI double of bench/servers under
uvicorn (uvloop, httptools), answering every model after ``service_ms`` (default 5 ms, a fast
model server). ``POST /_fault`` with ``{"fault": "ok"|"hung"|"error"|"slow", "model": NAME}``
changes what one model (or, without ``model``, every model) gets; ``"ok"`` also releases hangs.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import uvicorn

from bench.servers.asgi import read_body
from bench.servers.openai_double import OpenAIDouble, Reply

__all__ = ["FAULTS", "FaultServer"]

SERVICE_S = 0.005
SLOW_S = 1.0  # below the drill's shadow timeout: a slow answer, not a timeout
FAULTS = {
    "ok": Reply(delay_s=SERVICE_S),
    "hung": Reply(hang=True),
    "error": Reply(status=500, delay_s=SERVICE_S),
    "slow": Reply(delay_s=SLOW_S),
}


class FaultServer:
    """ASGI: ``/_fault`` scripts the double; everything else is the double."""

    def __init__(self) -> None:
        self.double = OpenAIDouble("fault-server", record=False)
        self.double.script(FAULTS["ok"])

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/_fault":
            await self.double(scope, receive, send)
            return
        raw = await read_body(receive)
        order = json.loads(raw)
        if order["fault"] == "ok":
            self.double.reset()
            self.double.record = False
            self.double.script(FAULTS["ok"])
        else:
            self.double.script(FAULTS[order["fault"]], model=order.get("model"))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def main(argv: list[str]) -> None:
    uvicorn.run(
        FaultServer(),
        host="127.0.0.1",
        port=int(argv[0]),
        loop="uvloop",
        http="httptools",
        log_level="error",
        access_log=False,
        backlog=4096,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
