"""Fixtures of the pipeline tests: tiny real models, an oracle chat server, spec files.

Imported by name into the test modules that use them (tests/offline/conftest.py belongs to the
statistics tests).
"""

from __future__ import annotations

import asyncio
import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from bench.models.tiny import build_causal_lm, build_encoder, build_lora
from bench.servers.asgi import read_body
from cli.server import serve_in_thread

__all__ = [
    "Oracle",
    "oracle",
    "tiny_encoders",
    "tiny_pair",
    "write_jsonl",
    "write_spec",
]


@pytest.fixture(scope="module")
def tiny_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """A 2-layer random Llama and a random LoRA on it (built once per module)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        base = build_causal_lm(tmp_path_factory.mktemp("eval-base"), seed=5)
        yield base, build_lora(base, tmp_path_factory.mktemp("eval-lora"), seed=6)


@pytest.fixture(scope="module")
def tiny_encoders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two random sentence encoders (mean pooling and CLS pooling: different spaces)."""
    return (
        build_encoder(tmp_path_factory.mktemp("enc-a")),
        build_encoder(tmp_path_factory.mktemp("enc-b"), pooling="cls_token"),
    )


class Oracle:
    """An OpenAI-compatible chat server answering from a table: (model, last user turn) -> text.

    Unknown prompts get ``default``; every request is counted, so a test can assert that a
    re-run makes no calls. ``prompted`` answers instead where the request has a system prompt.
    """

    def __init__(self) -> None:
        self.answers: dict[tuple[str, str], str] = {}
        self.prompted: dict[tuple[str, str], str] = {}
        self.default = "I do not know."
        self.calls = 0
        self.delay_s = 0.0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                kind = "startup" if message["type"] == "lifespan.startup" else "shutdown"
                await send({"type": f"lifespan.{kind}.complete"})
                if kind == "shutdown":
                    return
        raw = await read_body(receive)
        self.calls += 1
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        body = json.loads(raw)
        last = next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
        key = (body["model"], last)
        text = self.answers.get(key, self.default)
        if any(m["role"] == "system" for m in body["messages"]):
            text = self.prompted.get(key, text)
        answer = {
            "id": "x",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": text},
                 "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }  # fmt: skip
        data = json.dumps(answer).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": data})


@pytest.fixture
def oracle() -> Iterator[tuple[Oracle, str]]:
    """The oracle and its base URL (``.../v1``)."""
    server = Oracle()
    with serve_in_thread(server) as url:
        yield server, f"{url}/v1"


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Rows as CSV with a header of every key (a missing key is an empty cell)."""
    columns = list(dict.fromkeys(k for row in rows for k in row))
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_spec(path: Path, spec: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path
