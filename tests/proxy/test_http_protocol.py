"""The coalescing httptools protocol under a real uvicorn: whole answers, streams, errors."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn

from cli.server import free_port
from proxy.http_protocol import http_protocol


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/boom":
        raise RuntimeError("app failure")  # uvicorn answers 500 through the same writer
    if path == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await asyncio.sleep(0.5)  # the head must not wait for this
        for part in (b"one ", b"two"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return
    body = path.encode()
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


@contextmanager
def serving() -> Iterator[int]:
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, http=http_protocol(), loop="uvloop", log_level="critical"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive()
        time.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)


def test_whole_answers_on_one_keep_alive_connection_and_errors():
    with serving() as port, httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
        for path in ("/a", "/bb", "/ccc"):
            response = client.get(path)
            assert (response.status_code, response.text) == (200, path)
            assert response.headers["content-type"] == "text/plain"
        assert client.get("/boom").status_code == 500
        assert client.get("/after").text == "/after"


def test_a_stream_head_is_not_held_until_its_first_chunk():
    with serving() as port, socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET /stream HTTP/1.1\r\nhost: x\r\n\r\n")
        sock.settimeout(0.3)  # the first chunk comes after 0.5 s; the head well before
        head = sock.recv(65536)
        assert head.startswith(b"HTTP/1.1 200 OK\r\n") and head.endswith(b"\r\n\r\n")
        sock.settimeout(5)
        rest = b""
        while not rest.endswith(b"0\r\n\r\n"):
            rest += sock.recv(65536)
        assert b"one " in rest and b"two" in rest


def test_pipelined_requests_keep_their_order():
    with serving() as port, socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET /x HTTP/1.1\r\nhost: x\r\n\r\nGET /yy HTTP/1.1\r\nhost: x\r\n\r\n")
        sock.settimeout(5)
        data = b""
        while data.count(b"HTTP/1.1 200") < 2 or not data.endswith(b"/yy"):
            data += sock.recv(65536)
        assert data.index(b"\r\n\r\n/x") < data.index(b"\r\n\r\n/yy")


# -- the uvicorn internals proxy/http_hardened.py relies on ---------------------------------------

#: sha256 over the source of every uvicorn method the hardened protocol overrides or relies on,
#: for the uvicorn version pyproject.toml pins. A new uvicorn changes it: read the diff of those
#: methods against proxy/http_hardened.py, rerun tests/proxy, then update the digest and the pin.
UVICORN_DIGEST = "2eed2191b9cd8152aed3ad17018d5f3bddbc3e7ae482e75ff0405eb79a0ee061"


def uvicorn_digest() -> str:
    import hashlib
    import inspect

    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

    from proxy.http_protocol import PROTOCOL_ATTRIBUTES

    digest = hashlib.sha256()
    for name in (*PROTOCOL_ATTRIBUTES, "__init__", "on_body"):
        digest.update(inspect.getsource(getattr(HttpToolsProtocol, name)).encode())
    for name in ("__init__", "send", "receive"):
        digest.update(inspect.getsource(getattr(RequestResponseCycle, name)).encode())
    return digest.hexdigest()


def test_uvicorn_is_the_pinned_version_and_its_protocol_is_unchanged():
    import re
    from importlib.metadata import version
    from pathlib import Path

    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    pin = re.search(r'"uvicorn\[standard\]>=([\d.]+),<([\d.]+)"', pyproject)
    assert pin is not None, "pyproject.toml must pin uvicorn to a range"
    low, high = (tuple(int(p) for p in v.split(".")) for v in pin.groups())
    installed = tuple(int(p) for p in version("uvicorn").split(".")[:2])
    assert low[:2] <= installed < high, f"uvicorn {version('uvicorn')} outside the pin {pin[0]}"
    assert uvicorn_digest() == UVICORN_DIGEST, (
        "uvicorn's HttpToolsProtocol or RequestResponseCycle changed: review "
        "proxy/http_hardened.py against it, then update UVICORN_DIGEST"
    )
