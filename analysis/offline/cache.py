"""The output cache: one model answer per (arm, upstream, model, request, item, sample).

An append-only JSON-lines file. Each answer is written (and flushed) as soon as it arrives, so an
interrupted run resumes where it stopped and a re-run makes no model calls; a line torn by a
crash is skipped on load. Only successful answers are kept: a failed call is tried again on the
next run. The request in the key holds the messages (system prompt, few-shot, item) and the
decoding parameters, so changing any of them asks the model again; the upstream is named with a
fingerprint of its settings (cli/eval/arms.py), so pointing a name at another model does too.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Self

import orjson

__all__ = ["CachedOutput", "OutputCache", "output_key"]

CACHE_VERSION = 1


def output_key(
    arm: str, upstream: str, model: str, request: dict[str, object], item_id: str, sample: int
) -> str:
    """The digest an answer is cached under."""
    payload = orjson.dumps(
        {
            "v": CACHE_VERSION,
            "arm": arm,
            "upstream": upstream,
            "model": model,
            "request": request,
            "item": item_id,
            "sample": sample,
        },
        option=orjson.OPT_SORT_KEYS,
    )
    return hashlib.sha256(payload).hexdigest()


@dataclass(slots=True)
class CachedOutput:
    """One arm's answer to one item (text for chat, a vector for embeddings)."""

    key: str
    arm: str
    item: str
    sample: int = 0
    text: str = ""
    embedding: list[float] | None = None
    finish_reason: str | None = None
    latency_s: float = 0.0
    error: str | None = None  # never stored; set on the in-memory result of a failed call
    extra: dict[str, object] = field(default_factory=dict)


class OutputCache:
    """Answers kept in ``directory/outputs.jsonl``; ``with`` it to append."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "outputs.jsonl"
        self._entries: dict[str, CachedOutput] = {}
        self._handle: IO[bytes] | None = None
        self.hits = 0
        self.misses = 0
        self.torn = 0
        self._load()

    def _load(self) -> None:
        if not self.path.is_file():
            return
        for line in self.path.read_bytes().splitlines():
            try:
                value = orjson.loads(line)
                entry = CachedOutput(**value)
            except (orjson.JSONDecodeError, TypeError):
                self.torn += 1  # a line cut short by a crash, or from another version
                continue
            self._entries[entry.key] = entry

    def __len__(self) -> int:
        return len(self._entries)

    def __enter__(self) -> Self:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = self.path.open("ab")
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._handle is not None:
            os.fsync(self._handle.fileno())
            self._handle.close()
            self._handle = None

    def get(self, key: str) -> CachedOutput | None:
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
        else:
            self.hits += 1
        return entry

    def put(self, entry: CachedOutput) -> None:
        """Keep a successful answer and write it through to disk at once."""
        if entry.error is not None:
            return
        self._entries[entry.key] = entry
        if self._handle is None:
            raise RuntimeError("OutputCache.put outside `with`")
        data = asdict(entry)
        data.pop("error")
        self._handle.write(orjson.dumps(data) + b"\n")
        self._handle.flush()  # in the OS's hands: a crash of this process loses nothing
