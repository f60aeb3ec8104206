"""What every report shows of a comparison: its label, the numbers, the verdict's mark."""

from __future__ import annotations

__all__ = ["MARKS", "comparison_label", "comparisons", "interval", "number"]

MARKS = {"pass": "✅", "warn": "⚠️", "fail": "❌", "inconclusive": "❔"}


def comparisons(document: dict[str, object]) -> list[dict[str, object]]:
    value = document.get("comparisons")
    return [c for c in value if isinstance(c, dict)] if isinstance(value, list) else []


def comparison_label(c: dict[str, object]) -> str:
    where = "" if c.get("category") == "all" else f" [{c.get('category')}]"
    return f"{c.get('set')}/{c.get('metric')}{where}"


def number(value: object, digits: int = 3, sign: bool = False) -> str:
    if not isinstance(value, int | float):
        return "-"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def interval(c: dict[str, object]) -> str:
    """``+0.120 [+0.050, +0.190]``; relative changes end in ``rel``."""
    low, high = number(c.get("ci_low"), sign=True), number(c.get("ci_high"), sign=True)
    relative = " rel" if c.get("scale") == "relative" else ""
    return f"{number(c.get('diff'), sign=True)} [{low}, {high}]{relative}"
