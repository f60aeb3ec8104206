"""Test items read from JSONL or CSV: prompt or messages, reference, category, labels, checks.

An item without an ``id`` gets the split manifest's key, the digest of its row (so the cache and
the manifest key on what the item says, not on its line number). CSV columns other than the
known ones become labels.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from analysis.offline.split import item_key, read_rows
from tunegate.errors import ConfigError

__all__ = ["EvalItem", "load_items"]

_KNOWN = {"id", "prompt", "messages", "reference", "category", "tests", "checks", "k", "labels"}


class EvalItem(BaseModel):
    """One test item."""

    model_config = ConfigDict(extra="forbid")
    id: str = ""
    prompt: str | None = None
    messages: list[dict[str, object]] | None = None
    reference: str | None = None
    category: str = "default"
    labels: dict[str, str] = Field(default_factory=dict)
    tests: str | None = None  # code: a program that asserts on the answer's functions
    k: int = Field(default=1, ge=1)  # code: samples for pass@k
    checks: list[dict[str, object]] | None = None  # rubric: checkable sub-criteria

    @model_validator(mode="after")
    def _content(self) -> EvalItem:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("set exactly one of prompt or messages")
        return self

    def user_messages(self) -> list[dict[str, object]]:
        if self.messages is not None:
            return list(self.messages)
        return [{"role": "user", "content": self.prompt}]


def _rows(path: Path) -> list[dict[str, object]]:
    """JSONL objects as they are; CSV rows with JSON cells parsed and extra columns as labels."""
    rows = read_rows(path)
    if path.suffix.lower() != ".csv":
        return rows
    shaped: list[dict[str, object]] = []
    for row in rows:
        labels = {k: v for k, v in row.items() if k not in _KNOWN}
        known = {k: v for k, v in row.items() if k in _KNOWN}
        for name in ("messages", "checks"):
            if name in known:
                known[name] = orjson.loads(str(known[name]))
        shaped.append({**known, "labels": labels})
    return shaped


def load_items(path: Path, limit: int | None = None) -> list[EvalItem]:
    """The items of one JSONL or CSV file; ConfigError naming the line when one is invalid."""
    if not path.is_file():
        raise ConfigError(f"test set {path} does not exist")
    try:
        rows = _rows(path)  # read_rows names the line of a malformed row or an undecodable file
    except orjson.JSONDecodeError as exc:  # a CSV cell meant to hold JSON (messages, checks)
        raise ConfigError(f"{path}: {exc}") from None
    items = []
    for number, row in enumerate(rows, start=1):
        row = dict(row)
        row["id"] = item_key(row)
        if "labels" in row and isinstance(row["labels"], dict):
            row["labels"] = {str(k): str(v) for k, v in row["labels"].items()}
        for key in ("id", "reference", "category"):
            if key in row and row[key] is not None and not isinstance(row[key], str):
                row[key] = str(row[key])
        try:
            items.append(EvalItem.model_validate(row))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(map(str, first["loc"]))
            raise ConfigError(f"{path} item {number}: {where}: {first['msg']}") from None
    counts = Counter(i.id for i in items)
    duplicate = next((i for i, n in counts.items() if n > 1), None)
    if duplicate is not None:
        raise ConfigError(f"{path}: duplicate item id {duplicate!r}")
    return items[:limit]
