"""Inline SVG plots from the decisions' evidence: the win rate with its confidence sequence over
time, and per-category win rates with their intervals. Coordinates only; the templates draw them.
"""

from __future__ import annotations

from dataclasses import dataclass

from tunegate.records import Decision

__all__ = ["Bar", "Series", "category_bars", "win_rate_series"]

WIDTH, HEIGHT, PAD = 640, 220, 30


def _y(value: float) -> float:
    """Win rate in [0, 1] to the SVG's y (0 at the bottom)."""
    clipped = min(1.0, max(0.0, value))
    return round(HEIGHT - PAD - clipped * (HEIGHT - 2 * PAD), 1)


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


@dataclass
class Series:
    """Polylines over the decisions, oldest first: estimate, CS band, corrected estimate."""

    estimate: str = ""
    band: str = ""  # a closed polygon: upper bounds left to right, lower bounds back
    corrected: str = ""
    last_corrected: tuple[float, float] | None = None  # a dot: one decision draws no line
    bar_y: float = _y(0.5)
    half_y: float = _y(0.5)
    points: int = 0
    width: int = WIDTH
    height: int = HEIGHT


def win_rate_series(decisions: list[Decision], bar: float) -> Series:
    """The judge's win rate and always-valid interval at each decision, plus the corrected one."""
    rows = []
    for d in decisions:
        judge = d.evidence.get("judge")
        if not isinstance(judge, dict) or not judge.get("n"):
            continue
        est, lo, hi = (_number(judge.get(k)) for k in ("win_rate", "cs_lower", "cs_upper"))
        if est is None or lo is None or hi is None:
            continue
        corrected = d.evidence.get("corrected")
        fixed = _number(corrected.get("estimate")) if isinstance(corrected, dict) else None
        rows.append((est, lo, hi, fixed))
    series = Series(bar_y=_y(bar), points=len(rows))
    if not rows:
        return series
    step = (WIDTH - 2 * PAD) / max(1, len(rows) - 1)
    xs = [round(PAD + i * step, 1) for i in range(len(rows))]
    series.estimate = " ".join(f"{x},{_y(r[0])}" for x, r in zip(xs, rows, strict=True))
    upper = [f"{x},{_y(r[2])}" for x, r in zip(xs, rows, strict=True)]
    lower = [f"{x},{_y(r[1])}" for x, r in zip(xs, rows, strict=True)]
    series.band = " ".join(upper + lower[::-1])
    dots = [(x, _y(r[3])) for x, r in zip(xs, rows, strict=True) if r[3] is not None]
    series.corrected = " ".join(f"{x},{y}" for x, y in dots)
    series.last_corrected = dots[-1] if dots else None
    return series


@dataclass(frozen=True)
class Bar:
    category: str
    n: int
    win_rate: float
    x: float  # the bar's left edge
    width: float
    y: float  # its top
    lower_y: float
    upper_y: float


def category_bars(decision: Decision | None) -> list[Bar]:
    """One bar per category of the latest decision (win rate, Wilson interval)."""
    if decision is None:
        return []
    items = decision.evidence.get("category_summaries")
    if not isinstance(items, list):
        return []
    rows = [c for c in items if isinstance(c, dict)][:20]
    if not rows:
        return []
    slot = (WIDTH - 2 * PAD) / len(rows)
    bars = []
    for i, item in enumerate(rows):
        rate = _number(item.get("win_rate")) or 0.0
        wilson = item.get("wilson")
        lo, hi = (
            (_number(wilson[0]) or 0.0, _number(wilson[1]) or 1.0)
            if isinstance(wilson, list) and len(wilson) == 2
            else (rate, rate)
        )
        bars.append(
            Bar(
                category=str(item.get("category", "")),
                n=int(_number(item.get("n")) or 0),
                win_rate=rate,
                x=round(PAD + i * slot + slot * 0.15, 1),
                width=round(slot * 0.7, 1),
                y=_y(rate),
                lower_y=_y(lo),
                upper_y=_y(hi),
            )
        )
    return bars
