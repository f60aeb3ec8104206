"""Train / validation / test split (80/10/10, stratified by category, seeded) and the test manifest.

The split writes ``train.jsonl``, ``validation.jsonl``, ``test.jsonl`` and
``test.manifest.json``: the test file's SHA-256 and one SHA-256 per item (keyed by the item's
``id``, or by the digest of its content when it has none). :func:`verify` refuses a test set
whose items changed, appeared or vanished since the manifest was written, naming them.

Hand-written rather than scikit-learn's ``train_test_split(stratify=...)``: that refuses a
category with a single item and, applied twice for three parts, drifts from the fractions in
small categories; here each category is shuffled with the seed and cut by largest remainder.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

from tunegate.errors import ConfigError

__all__ = [
    "MANIFEST_VERSION",
    "ManifestError",
    "Split",
    "item_digest",
    "item_key",
    "read_rows",
    "split_rows",
    "verify",
    "write_split",
]

MANIFEST_VERSION = 1
Row = Mapping[str, object]


class ManifestError(ConfigError):
    """The test set no longer matches its manifest (a locked test set was edited)."""


def item_digest(row: Row) -> str:
    """SHA-256 of the row's canonical JSON (sorted keys), so formatting changes do not count."""
    return hashlib.sha256(orjson.dumps(dict(row), option=orjson.OPT_SORT_KEYS)).hexdigest()


def item_key(row: Row) -> str:
    """The row's ``id``, or its content digest when it has none."""
    value = row.get("id")
    return str(value) if value not in (None, "") else item_digest(row)[:16]


def read_rows(path: Path) -> list[dict[str, object]]:
    """The rows of a JSONL file (one JSON object a line) or a CSV file (a header, then one row a
    line; empty cells are left out); ConfigError naming the line when one is malformed."""
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    if path.suffix.lower() == ".csv":
        return _csv_rows(path, text)
    rows = []
    # split on \n alone: str.splitlines() also breaks at \x85, \u2028, ... inside JSON strings
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise ConfigError(f"{path}:{number}: not valid JSON: {exc}") from None
        if not isinstance(value, dict):
            raise ConfigError(f"{path}:{number}: expected a JSON object")
        rows.append(value)
    return rows


def _csv_rows(path: Path, text: str) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    try:
        for number, row in enumerate(csv.DictReader(io.StringIO(text, newline="")), start=2):
            if None in row:  # csv's restkey: more fields than the header names
                raise ConfigError(f"{path}:{number}: more fields than the header has")
            rows.append({k: v for k, v in row.items() if v})
    except csv.Error as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return rows


@dataclass(frozen=True, slots=True)
class Split:
    """The three parts, each a list of rows in their original order."""

    train: list[dict[str, object]]
    validation: list[dict[str, object]]
    test: list[dict[str, object]]


def _cut(size: int, fractions: Sequence[float]) -> list[int]:
    exact = [size * f for f in fractions]
    counts = [int(x) for x in exact]
    order = sorted(range(len(exact)), key=lambda i: (counts[i] - exact[i], -fractions[i]))
    for i in order[: size - sum(counts)]:
        counts[i] += 1
    return counts


def split_rows(
    rows: Sequence[dict[str, object]],
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    category_field: str = "category",
) -> Split:
    """Stratified by ``category_field``: each category cut in the fractions (largest remainder)."""
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-9:
        raise ValueError(f"fractions must be three non-negative shares summing to 1: {fractions}")
    keys = [item_key(r) for r in rows]
    if len(set(keys)) != len(keys):
        raise ValueError("rows must have distinct ids (or distinct content)")
    by_category: dict[str, list[int]] = defaultdict(list)
    for index, row in enumerate(rows):
        by_category[str(row.get(category_field, "default"))].append(index)
    rng = np.random.default_rng(seed)
    part = [0] * len(rows)
    for category in sorted(by_category):
        members = by_category[category]
        shuffled = [members[i] for i in rng.permutation(len(members))]
        train, validation, _ = _cut(len(members), fractions)
        for position, index in enumerate(shuffled):
            part[index] = 0 if position < train else 1 if position < train + validation else 2
    parts: tuple[list[dict[str, object]], ...] = ([], [], [])
    for index, row in enumerate(rows):
        parts[part[index]].append(dict(row))
    return Split(train=parts[0], validation=parts[1], test=parts[2])


def _write_jsonl(path: Path, rows: Sequence[Row]) -> bytes:
    data = b"".join(orjson.dumps(dict(r)) + b"\n" for r in rows)
    path.write_bytes(data)
    return data


def write_split(
    rows: Sequence[dict[str, object]],
    out_dir: Path,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 0,
) -> Path:
    """Write the three parts and the test manifest into ``out_dir``; returns the manifest path."""
    split = split_rows(rows, fractions, seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_jsonl(out_dir / "train.jsonl", split.train)
    _write_jsonl(out_dir / "validation.jsonl", split.validation)
    data = _write_jsonl(out_dir / "test.jsonl", split.test)
    counts: dict[str, int] = defaultdict(int)
    for row in split.test:
        counts[str(row.get("category", "default"))] += 1
    manifest = {
        "schema_version": MANIFEST_VERSION,
        "file": "test.jsonl",
        "sha256": hashlib.sha256(data).hexdigest(),
        "seed": seed,
        "fractions": list(fractions),
        "sizes": {"train": len(split.train), "validation": len(split.validation)},
        "categories": dict(sorted(counts.items())),
        "items": {item_key(r): item_digest(r) for r in split.test},
    }
    path = out_dir / "test.manifest.json"
    path.write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    return path


def verify(test_path: Path, manifest_path: Path) -> int:
    """Raise ManifestError naming what changed unless the test file matches its manifest.

    Compares item by item (so a reordered or re-serialised file still matches); returns the
    number of items verified.
    """
    try:
        manifest = orjson.loads(manifest_path.read_bytes())
        expected = dict(manifest["items"])
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ManifestError(f"{manifest_path}: not a readable test manifest ({exc})") from None
    if manifest.get("schema_version") != MANIFEST_VERSION:
        raise ManifestError(f"{manifest_path}: unknown schema_version")
    actual = {item_key(r): item_digest(r) for r in read_rows(test_path)}
    changed = sorted(k for k in expected.keys() & actual.keys() if expected[k] != actual[k])
    added = sorted(actual.keys() - expected.keys())
    removed = sorted(expected.keys() - actual.keys())
    if changed or added or removed:
        parts = [
            f"{label} {len(keys)} ({', '.join(keys[:5])}{', ...' if len(keys) > 5 else ''})"
            for label, keys in (("changed", changed), ("added", added), ("removed", removed))
            if keys
        ]
        raise ManifestError(
            f"test set {test_path} does not match its manifest {manifest_path}: "
            + "; ".join(parts)
            + ". A locked test set must not change; split again to make a new one."
        )
    return len(actual)
