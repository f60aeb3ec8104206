"""Contamination of the test set by the training and validation files.

Four checks, each item flagged by the first it fails: an **exact** duplicate (same text), a
**normalized** duplicate (Unicode NFKC, case, punctuation and whitespace ignored), a shared
**long n-gram** (``ngram`` normalized words in a row, 13 as in the GPT-3 decontamination), and a
**near duplicate** (MinHash of character 5-gram shingles, datasketch's LSH at ``jaccard``; light
paraphrases and edits). With an ``embed`` function (the packaged MiniLM, say) a fifth check flags
**paraphrases** by cosine similarity. Above ``threshold`` contaminated share the check fails, and
the clean item ids are returned so the metrics are reported on the clean subset beside the full.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from datasketch import MinHash, MinHashLSH
from numpy.typing import NDArray

from analysis.offline.split import read_rows
from tunegate.errors import ConfigError

__all__ = [
    "Contamination",
    "Finding",
    "MatchKind",
    "check_contamination",
    "normalize",
    "row_text",
    "source_texts",
]

MatchKind = Literal["exact", "normalized", "ngram", "near_duplicate", "paraphrase"]
Embed = Callable[[list[str]], NDArray[np.float32] | NDArray[np.float64]]
_TEXT_FIELDS = (
    *("prompt", "input", "instruction", "question", "text"),
    *("reference", "completion", "output", "answer", "response"),
)
_NUM_PERM = 128


def row_text(row: Mapping[str, object]) -> str:
    """The text of a data row: its prompt-like fields and every message's content, in order."""
    parts = [str(row[k]) for k in _TEXT_FIELDS if isinstance(row.get(k), str)]
    messages = row.get("messages")
    if isinstance(messages, list):
        for message in messages:
            if isinstance(message, dict) and isinstance(message.get("content"), str):
                parts.append(message["content"])
    return "\n".join(parts)


def source_texts(path: Path) -> list[str]:
    """The texts of a training or validation file: JSONL rows, CSV rows, else one per line."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        return [row_text(r) for r in read_rows(path)]
    try:
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not a readable UTF-8 text file ({exc})") from None
    if suffix == ".csv":
        return [row_text(r) for r in csv.DictReader(io.StringIO(text))]
    return [line for line in text.splitlines() if line.strip()]


def normalize(text: str) -> str:
    """NFKC, lower case, punctuation dropped, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in text)
    return re.sub(r"\s+", " ", text).strip()


def _ngrams(words: Sequence[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def _minhash(text: str) -> MinHash:
    m = MinHash(num_perm=_NUM_PERM, seed=1)
    shingles = {text[i : i + 5] for i in range(max(1, len(text) - 4))}
    m.update_batch([s.encode() for s in shingles])
    return m


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Finding:
    """One contaminated test item: which check, which source file and row, how similar."""

    item: str
    kind: MatchKind
    source: str
    row: int
    score: float  # 1.0 for duplicates; n-gram: 1.0; Jaccard estimate; cosine


@dataclass(frozen=True, slots=True)
class Contamination:
    """The result: findings, the clean ids and whether the share is over the threshold."""

    n: int
    threshold: float
    findings: list[Finding]
    clean: list[str]
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def contaminated(self) -> list[str]:
        return [f.item for f in self.findings]

    @property
    def share(self) -> float:
        return len(self.findings) / self.n if self.n else 0.0

    @property
    def failed(self) -> bool:
        return self.share > self.threshold


@dataclass(slots=True)
class _Index:
    exact: dict[str, tuple[str, int]] = field(default_factory=dict)
    normalized: dict[str, tuple[str, int]] = field(default_factory=dict)
    ngrams: dict[tuple[str, ...], tuple[str, int]] = field(default_factory=dict)
    texts: list[tuple[str, int, str]] = field(default_factory=list)


def _index(sources: Mapping[str, Sequence[str]], ngram: int, lsh: MinHashLSH) -> _Index:
    index = _Index()
    for name, texts in sources.items():
        for row, text in enumerate(texts):
            where = (name, row)
            norm = normalize(text)
            index.exact.setdefault(_digest(text), where)
            index.normalized.setdefault(_digest(norm), where)
            for gram in _ngrams(norm.split(), ngram):
                index.ngrams.setdefault(gram, where)
            key = f"{len(index.texts)}"
            lsh.insert(key, _minhash(norm))
            index.texts.append((name, row, norm))
    return index


def _first_match(
    item: str, text: str, index: _Index, ngram: int, lsh: MinHashLSH
) -> Finding | None:
    norm = normalize(text)
    if (where := index.exact.get(_digest(text))) is not None:
        return Finding(item, "exact", where[0], where[1], 1.0)
    if (where := index.normalized.get(_digest(norm))) is not None:
        return Finding(item, "normalized", where[0], where[1], 1.0)
    for gram in _ngrams(norm.split(), ngram):
        if (where := index.ngrams.get(gram)) is not None:
            return Finding(item, "ngram", where[0], where[1], 1.0)
    probe = _minhash(norm)
    best: tuple[float, int] | None = None
    for key in lsh.query(probe):
        name, row, other = index.texts[int(key)]
        score = probe.jaccard(_minhash(other))
        if best is None or score > best[0]:
            best = (score, int(key))
    if best is not None:
        name, row, _ = index.texts[best[1]]
        return Finding(item, "near_duplicate", name, row, float(best[0]))
    return None


def _paraphrases(
    items: Sequence[tuple[str, str]],
    sources: Mapping[str, Sequence[str]],
    embed: Embed,
    cosine: float,
) -> dict[str, Finding]:
    where = [(name, row) for name, texts in sources.items() for row in range(len(texts))]
    corpus = [text for texts in sources.values() for text in texts]
    if not corpus or not items:
        return {}
    a = np.asarray(embed([t for _, t in items]), dtype=np.float64)
    b = np.asarray(embed(corpus), dtype=np.float64)
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    sims = a @ b.T
    found = {}
    for i, (item, _) in enumerate(items):
        j = int(np.argmax(sims[i]))
        if sims[i, j] >= cosine:
            found[item] = Finding(item, "paraphrase", where[j][0], where[j][1], float(sims[i, j]))
    return found


def check_contamination(
    items: Iterable[tuple[str, str]],
    sources: Mapping[str, Sequence[str]],
    *,
    threshold: float = 0.05,
    ngram: int = 13,
    jaccard: float = 0.7,
    embed: Embed | None = None,
    cosine: float = 0.85,
) -> Contamination:
    """Check test items (id, text) against named sources (file name -> texts)."""
    if not 0 <= threshold <= 1 or ngram < 1 or not 0 < jaccard <= 1:
        raise ValueError("threshold in [0, 1], ngram >= 1 and jaccard in (0, 1] required")
    pairs = list(items)
    lsh = MinHashLSH(threshold=jaccard, num_perm=_NUM_PERM)
    index = _index(sources, ngram, lsh)
    findings: dict[str, Finding] = {}
    for item, text in pairs:
        found = _first_match(item, text, index, ngram, lsh)
        if found is not None and (found.kind != "near_duplicate" or found.score >= jaccard):
            findings[item] = found
    if embed is not None:
        rest = [(i, t) for i, t in pairs if i not in findings]
        findings.update(_paraphrases(rest, sources, embed, cosine))
    ordered = [findings[i] for i, _ in pairs if i in findings]
    counts: dict[str, int] = {}
    for f in ordered:
        counts[f.kind] = counts.get(f.kind, 0) + 1
    return Contamination(
        n=len(pairs),
        threshold=threshold,
        findings=ordered,
        clean=[i for i, _ in pairs if i not in findings],
        counts=counts,
    )
