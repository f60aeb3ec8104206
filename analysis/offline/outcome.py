"""The gate's answer: pass, fail (regressions named) or inconclusive (items that would settle it).

Holm first (pass claims within the task's and the probes' families, regression claims across
both together: an unchanged model fails at most alpha of runs). Then:

- **fail** when any comparison shows a regression: a task metric significantly worse than the
  control in any category, or a probe category whose drop is significantly beyond the acceptable
  margin and at least the fail threshold (``thresholds.probe_fail_drop``);
- **pass** when every primary task comparison (each metric over all items) shows superiority and
  every probe category is shown non-inferior within the acceptable drop (or, warned, its drop is
  significant but below the fail threshold);
- **inconclusive** otherwise, with the number of items the unsettled comparisons would need if
  their estimates held.

Exit codes (documented in docs/eval.md and ``tunegate eval --help``): 0 pass, 1 fail, 2 usage or
configuration error, 3 inconclusive.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from analysis.offline.compare import Scored
from analysis.offline.paired import holm_gate, items_needed, verdict

__all__ = [
    "EXIT_FAIL",
    "EXIT_INCONCLUSIVE",
    "EXIT_PASS",
    "EXIT_USAGE",
    "Outcome",
    "Result",
    "decide_outcome",
]

EXIT_PASS = 0
EXIT_FAIL = 1
EXIT_USAGE = 2
EXIT_INCONCLUSIVE = 3


class Outcome(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"

    @property
    def exit_code(self) -> int:
        return {"pass": EXIT_PASS, "fail": EXIT_FAIL, "inconclusive": EXIT_INCONCLUSIVE}[self.value]


@dataclass(slots=True)
class Result:
    """The outcome with its reasons and every comparison with its verdict."""

    outcome: Outcome
    reasons: list[str]
    regressions: list[str]
    items_needed: int | None
    comparisons: list[Scored]
    verdicts: list[str] = field(default_factory=list)  # per comparison: pass, warn, fail, ...


def _name(s: Scored) -> str:
    c = s.comparison
    where = "" if c.category == "all" else f" [{c.category}]"
    return f"{s.set}/{c.metric}{where}"


def _describe(s: Scored) -> str:
    c = s.comparison
    unit = "relative " if c.scale == "relative" else ""
    return (
        f"{_name(s)}: control {c.control:.3f}, candidate {c.candidate:.3f},"
        f" {unit}difference {c.diff:+.3f} [{c.ci_low:+.3f}, {c.ci_high:+.3f}], n={c.n}"
    )


def _adjusted(scored: list[Scored]) -> list[Scored]:
    """Holm as the gate reads it (paired.holm_gate): pass claims within their family, regression
    claims across task and probes together, so an unchanged model fails at most alpha of runs."""
    task = [i for i, s in enumerate(scored) if s.role == "task"]
    probes = [i for i, s in enumerate(scored) if s.role == "probe"]
    adjusted_task, adjusted_probes = holm_gate(
        [scored[i].comparison for i in task], [scored[i].comparison for i in probes]
    )
    out = list(scored)
    for i, comparison in zip([*task, *probes], [*adjusted_task, *adjusted_probes], strict=True):
        out[i] = replace(scored[i], comparison=comparison)
    return out


def decide_outcome(
    scored: list[Scored],
    *,
    alpha: float,
    probe_fail_drop: float,
    power: float = 0.8,
    failures: Sequence[str] = (),
) -> Result:
    """Holm within each family, then pass / fail / inconclusive as the module docstring says.

    ``failures`` are problems with the data that fail the run whatever the comparisons say
    (a test set contaminated beyond the threshold); they are listed with the regressions.
    """
    if not scored and not failures:
        return Result(Outcome.INCONCLUSIVE, ["Nothing was compared."], [], None, [])
    adjusted = _adjusted(scored)
    verdicts: list[str] = []
    regressions, warnings, unsettled = list(failures), [], []
    for s in adjusted:
        v = verdict(s.comparison, alpha, probe_fail_drop if s.role == "probe" else None)
        verdicts.append(v)
        if v == "fail":
            regressions.append(_describe(s))
        elif v == "warn":
            warnings.append(_describe(s))
        elif v == "inconclusive" and (s.primary or s.role == "probe"):
            unsettled.append(s)
    family = {role: sum(s.role == role for s in adjusted) for role in ("task", "probe")}
    reasons: list[str] = []
    if regressions:
        reasons.append("Regressions:")
        reasons += [f"- {r}" for r in regressions]
        outcome = Outcome.FAIL
    elif unsettled:
        outcome = Outcome.INCONCLUSIVE
        reasons.append("Not yet settled:")
        reasons += [f"- {_describe(s)}" for s in unsettled]
    else:
        outcome = Outcome.PASS
        reasons.append("Every task metric improves and no probe category regresses.")
    if warnings:
        reasons.append("Drops beyond the acceptable margin, below the fail threshold (warnings):")
        reasons += [f"- {w}" for w in warnings]
    needed: int | None = None
    if outcome is Outcome.INCONCLUSIVE:
        counts = [
            items_needed(s.comparison, alpha=alpha, power=power, tests=family[s.role])
            for s in unsettled
        ]
        known = [c for c in counts if c is not None]
        needed = max(known) if known else None
        if needed is not None:
            reasons.append(f"About {needed} more items per comparison would settle it.")
        else:
            reasons.append("The unsettled estimates sit on their margins: more items won't help.")
    return Result(outcome, reasons, regressions, needed, adjusted, verdicts)
