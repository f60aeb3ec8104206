"""JSON validity and field-level accuracy against a reference JSON object.

An arm scores ``0.2 * valid + 0.8 * accuracy``: valid when its answer holds a JSON object
(code fences and surrounding prose allowed), accuracy the share of the reference's top-level
fields whose value it reproduces (strings compared case- and whitespace-insensitively).
"""

from __future__ import annotations

import re

import orjson

from judge.scorers.base import ArmScorer, ScoreContext

__all__ = ["JsonFieldsScorer", "field_accuracy", "reference_object", "response_object"]

_VALID_WEIGHT = 0.2


def reference_object(reference: str | None) -> dict[str, object] | None:
    if reference is None:
        return None
    try:
        value = orjson.loads(reference)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) and value else None


def response_object(text: str) -> dict[str, object] | None:
    """The JSON object in an answer: the whole text, a fenced block, or the outermost braces."""
    candidates = [text.strip()]
    fenced = re.search(r"```(?:json)?\s*(.*?)```", text, re.DOTALL)
    if fenced:
        candidates.append(fenced.group(1).strip())
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start : end + 1])
    for candidate in candidates:
        try:
            value = orjson.loads(candidate)
        except orjson.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    return None


def _same(a: object, b: object) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return " ".join(a.lower().split()) == " ".join(b.lower().split())
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        return float(a) == float(b)
    return a == b


def field_accuracy(answer: dict[str, object], reference: dict[str, object]) -> float:
    return sum(_same(answer.get(k), v) for k, v in reference.items()) / len(reference)


class JsonFieldsScorer(ArmScorer):
    name = "json_fields"

    def applies(self, ctx: ScoreContext) -> bool:
        return super().applies(ctx) and reference_object(ctx.reference) is not None

    def score_text(self, text: str, reference: str) -> float:
        ref = reference_object(reference)
        answer = response_object(text)
        if ref is None or answer is None:
            return 0.0
        return _VALID_WEIGHT + (1 - _VALID_WEIGHT) * field_accuracy(answer, ref)
