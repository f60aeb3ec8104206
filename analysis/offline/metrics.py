"""Task metrics, per item, from the well-kept implementations: scikit-learn, rouge-score, sacrebleu.

Every metric returns one value per item so that the comparison can be paired. Corpus metrics
(macro-F1, corpus BLEU, corpus chrF) also return per-item *sufficient statistics* whose column
sums give the corpus score; a paired bootstrap resamples items and sums their rows, which is how
sacrebleu's own significance test resamples BLEU (its ``_extract_corpus_statistics`` and
``_compute_score_from_stats``, used here for the same reason). The libraries load on first use:
rouge-score pulls in nltk, seconds of start-up that a run without ROUGE should not pay. Rubric
checks are written here: they are the project's checkable sub-criteria, not a published metric.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "CorpusStatistic",
    "MetricKind",
    "bleu_statistic",
    "chrf_statistic",
    "exact_match",
    "macro_f1",
    "macro_f1_statistic",
    "normalize_label",
    "rouge_l",
    "rubric_score",
    "sentence_bleu",
    "sentence_chrf",
]


class MetricKind(StrEnum):
    """How a metric's per-item values are compared between the arms."""

    BINARY = "binary"  # 0/1 per item: exact McNemar
    CONTINUOUS = "continuous"  # a value per item: paired bootstrap of the mean
    CORPUS = "corpus"  # a score of the whole set: paired bootstrap over sufficient statistics
    JUDGE = "judge"  # the pairwise judge's candidate score per item: permutation test


@dataclass(frozen=True, slots=True)
class CorpusStatistic:
    """Per-item sufficient statistics (n x d) and the corpus score of their column sums."""

    stats: NDArray[np.float64]
    reduce: Callable[[NDArray[np.float64]], float]

    def score(self, rows: NDArray[np.intp] | None = None) -> float:
        """The corpus score of all items, or of the items at ``rows`` (with repeats)."""
        chosen = self.stats if rows is None else self.stats[rows]
        return self.reduce(chosen.sum(axis=0))


def exact_match(text: str, reference: str) -> float:
    """1 when the answer equals the reference, surrounding whitespace aside."""
    return float(text.strip() == reference.strip())


def normalize_label(text: str) -> str:
    """A classification answer as a label: lower case, first line, no surrounding punctuation."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return re.sub(r"^[\W_]+|[\W_]+$", "", line.lower())


# ---------------------------------------------------------------- classification: macro-F1
def macro_f1(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Macro-F1 over the reference classes (scikit-learn); unseen predictions count as wrong."""
    from sklearn.metrics import f1_score

    labels = sorted(set(references))
    return float(f1_score(references, predictions, labels=labels, average="macro", zero_division=0))


def macro_f1_statistic(predictions: Sequence[str], references: Sequence[str]) -> CorpusStatistic:
    """Per item: one-hot true positive, false positive and false negative per reference class.

    The reduction is scikit-learn's macro-F1 over those labels (checked against it in the tests).
    """
    labels = sorted(set(references))
    index = {label: i for i, label in enumerate(labels)}
    k = len(labels)
    stats = np.zeros((len(references), 3 * k))
    for row, (p, r) in enumerate(zip(predictions, references, strict=True)):
        if p == r:
            stats[row, index[r]] = 1  # tp
        else:
            stats[row, 2 * k + index[r]] = 1  # fn of the true class
            if p in index:
                stats[row, k + index[p]] = 1  # fp of the predicted class

    def reduce(total: NDArray[np.float64]) -> float:
        tp, fp, fn = total[:k], total[k : 2 * k], total[2 * k :]
        denominator = 2 * tp + fp + fn
        f1 = np.divide(2 * tp, denominator, out=np.zeros(k), where=denominator > 0)
        present = (tp + fn) > 0  # sklearn averages over the labels given, all present here
        return float(f1[present].mean()) if present.any() else 0.0

    return CorpusStatistic(stats, reduce)


# ---------------------------------------------------------------- summarization: ROUGE-L
@functools.cache
def _rouge() -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


def rouge_l(text: str, reference: str) -> float:
    """ROUGE-L F1 (rouge-score, the reference implementation of Lin 2004)."""
    return float(_rouge().score(reference, text)["rougeL"].fmeasure)


# ---------------------------------------------------------------- translation: BLEU, chrF
@functools.cache
def _sacrebleu(name: str) -> Any:
    """sacrebleu's metric objects: sentence BLEU (effective order), corpus BLEU, chrF."""
    from sacrebleu.metrics.bleu import BLEU
    from sacrebleu.metrics.chrf import CHRF

    if name == "sentence_bleu":
        return BLEU(effective_order=True)
    return BLEU() if name == "bleu" else CHRF()


def sentence_bleu(text: str, reference: str) -> float:
    """Sentence BLEU in [0, 1] (sacrebleu, effective order for short sentences)."""
    return float(_sacrebleu("sentence_bleu").sentence_score(text, [reference]).score) / 100


def sentence_chrf(text: str, reference: str) -> float:
    """Sentence chrF in [0, 1] (sacrebleu)."""
    return float(_sacrebleu("chrf").sentence_score(text, [reference]).score) / 100


def bleu_statistic(texts: Sequence[str], references: Sequence[str]) -> CorpusStatistic:
    """Corpus BLEU from per-sentence n-gram counts (sacrebleu's corpus score on their sums)."""
    bleu = _sacrebleu("bleu")
    stats = np.asarray(
        bleu._extract_corpus_statistics(list(texts), [list(references)]), dtype=float
    )

    def reduce(total: NDArray[np.float64]) -> float:
        counts = [round(float(v)) for v in total]
        return float(bleu._compute_score_from_stats(counts).score) / 100

    return CorpusStatistic(stats.reshape(len(texts), -1), reduce)


def chrf_statistic(texts: Sequence[str], references: Sequence[str]) -> CorpusStatistic:
    """Corpus chrF from per-sentence character and word n-gram counts (sacrebleu)."""
    chrf = _sacrebleu("chrf")
    stats = np.asarray(
        chrf._extract_corpus_statistics(list(texts), [list(references)]), dtype=float
    )

    def reduce(total: NDArray[np.float64]) -> float:
        counts = [round(float(v)) for v in total]
        return float(chrf._compute_score_from_stats(counts).score) / 100

    return CorpusStatistic(stats.reshape(len(texts), -1), reduce)


# ---------------------------------------------------------------- instruction following: rubric
def _words(text: str) -> list[str]:
    return re.findall(r"\S+", text)


def _check(check: dict[str, object], text: str) -> bool:
    """One checkable sub-criterion; an unknown type raises ValueError naming it."""
    kind = str(check.get("type", ""))
    value = check.get("value")
    lower = text.lower()
    if kind == "contains":
        return str(value).lower() in lower
    if kind == "not_contains":
        return str(value).lower() not in lower
    if kind == "regex":
        return re.search(str(value), text, re.MULTILINE) is not None
    if kind == "starts_with":
        return text.strip().lower().startswith(str(value).lower())
    if kind == "ends_with":
        return text.strip().lower().endswith(str(value).lower())
    if kind in ("max_words", "min_words", "max_chars", "max_lines"):
        limit = int(str(value))
        size = {
            "max_words": lambda: len(_words(text)),
            "min_words": lambda: len(_words(text)),
            "max_chars": lambda: len(text.strip()),
            "max_lines": lambda: len([x for x in text.strip().splitlines() if x.strip()]),
        }[kind]()
        return size >= limit if kind == "min_words" else size <= limit
    if kind == "lowercase":
        return text == text.lower()
    if kind == "uppercase":
        return text == text.upper()
    if kind == "json_valid":
        import json

        try:
            json.loads(text.strip().removeprefix("```json").removesuffix("```").strip())
        except ValueError:
            return False
        return True
    if kind == "bullets":
        bullets = [x for x in text.splitlines() if re.match(r"\s*([-*•]|\d+[.)])\s+", x)]
        return len(bullets) == int(str(value))
    raise ValueError(f"rubric check type {kind!r} is not known")


RUBRIC_CHECKS = (
    "contains",
    "not_contains",
    "regex",
    "starts_with",
    "ends_with",
    "max_words",
    "min_words",
    "max_chars",
    "max_lines",
    "lowercase",
    "uppercase",
    "json_valid",
    "bullets",
)


def rubric_score(text: str, checks: Sequence[dict[str, object]]) -> float:
    """The share of an item's checks the answer passes (1.0 for an item without checks)."""
    if not checks:
        return 1.0
    return sum(_check(c, text) for c in checks) / len(checks)
