"""Read a verdict label out of a judge's answer: strict JSON first, then regex fallbacks.

The scale has an explicit tie: ``A>>B``, ``A>B``, ``A=B``, ``B>A``, ``B>>A`` score the response
shown in slot A 1, .75, .5, .25 and 0. An answer without a label raises :class:`ParseFailure`;
it is never read as a tie.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

import orjson

from judge.errors import ParseFailure

__all__ = ["LABELS", "SLOT_A_SCORE", "ParsedVerdict", "expected_score", "parse_verdict"]

#: Slot A's score for each label, in the order of the scale.
SLOT_A_SCORE: dict[str, float] = {"A>>B": 1.0, "A>B": 0.75, "A=B": 0.5, "B>A": 0.25, "B>>A": 0.0}
LABELS = tuple(SLOT_A_SCORE)

_ALIASES = {"A>>B": "A>>B", "A>B": "A>B", "A=B": "A=B", "A==B": "A=B", "TIE": "A=B",
            "B>A": "B>A", "B>>A": "B>>A", "A<B": "B>A", "A<<B": "B>>A"}  # fmt: skip
_LABEL_RE = r"(A\s*>>\s*B|A\s*>\s*B|A\s*==?\s*B|B\s*>>\s*A|B\s*>\s*A|A\s*<<\s*B|A\s*<\s*B|tie)"
_FALLBACKS = (
    re.compile(r'"verdict"\s*:\s*"\s*' + _LABEL_RE + r'\s*"', re.IGNORECASE),
    re.compile(r"\[\[\s*" + _LABEL_RE + r"\s*\]\]", re.IGNORECASE),
    re.compile(r"verdict\s*[:=]\s*\**\s*" + _LABEL_RE, re.IGNORECASE),
)


@dataclass(frozen=True, slots=True)
class ParsedVerdict:
    """A label from the scale and the analysis that came before it."""

    label: str
    analysis: str


def _canonical(text: str) -> str | None:
    return _ALIASES.get(re.sub(r"\s+", "", text).upper())


def parse_verdict(raw: str) -> ParsedVerdict:
    """The label in ``raw`` (JSON ``{"analysis", "verdict"}`` or a fallback form)."""
    text = raw.strip()
    if text.startswith("```"):
        text = re.sub(r"^```(?:json)?\s*|\s*```$", "", text)
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        value = None
    if isinstance(value, dict) and isinstance(value.get("verdict"), str):
        label = _canonical(value["verdict"])
        if label is not None:
            return ParsedVerdict(label, str(value.get("analysis") or ""))
    for pattern in _FALLBACKS:
        matches = pattern.findall(text)
        if matches:
            label = _canonical(matches[-1])
            if label is not None:
                return ParsedVerdict(label, text[: text.rfind(matches[-1])].strip())
    raise ParseFailure("no verdict label in the judge output", raw=raw)


def expected_score(label_logprobs: Mapping[str, float]) -> float | None:
    """Slot A's expected score under the judge's probabilities of the five labels (renormalised)."""
    known = {label: lp for label, lp in label_logprobs.items() if label in SLOT_A_SCORE}
    if not known:
        return None
    top = max(known.values())
    weights = {label: math.exp(lp - top) for label, lp in known.items()}
    total = sum(weights.values())
    return sum(SLOT_A_SCORE[label] * w for label, w in weights.items()) / total
