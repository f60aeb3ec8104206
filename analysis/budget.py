"""The alpha budget: each test that can change a stage gets a fixed share of ``policy.alpha``.

Every share is spent by an always-valid test (a confidence sequence, a mixture SPRT or a betting
e-process), so each test's chance of ever firing wrongly, however often the controller looks,
is at most its share; by the union bound the chance that any of them fires wrongly is at most
the sum of the shares, which is ``policy.alpha``. docs/statistics.md states the design; each
Decision's evidence lists every test with the alpha it was given (:class:`TestOutcome`).

The category test gets the largest share: it splits it over the categories (Holm), and a
category with a fifth of the traffic must roll back on the few pairs it has (docs/statistics.md
measures it). The judge's superiority test (start the A/B, promote) comes next: its power needs
the alpha only through log(1 / alpha), so halving its share costs a few percent more pairs. The
roll-back tests carry margins, so they rarely come near their share when the candidate is as
good as the control.
"""

from __future__ import annotations

from dataclasses import dataclass

from tunegate.experiments import Policy

__all__ = ["SHARES", "TestOutcome", "alpha_for"]

SHARES: dict[str, float] = {
    "judge_superiority": 0.2,  # start the A/B; promote when the success metric is the judge
    "judge_loss": 0.1,  # roll back: win rate below 0.5 - loss margin (early path)
    "judge_equivalence": 0.025,  # stop: the interval sits inside 0.5 +- equivalence margin
    "categories": 0.5,  # roll back: a category regresses beyond its tolerance (Holm)
    "error_rate": 0.025,  # roll back on a breach / promote once non-inferior
    "latency_p95": 0.025,
    "tokens": 0.025,
    "srm": 0.05,  # pause: split over the ramp's steps, one test per stage
    "live": 0.05,  # promote on live feedback (Bonferroni over the live metrics)
}
assert abs(sum(SHARES.values()) - 1.0) < 1e-12


def alpha_for(policy: Policy, test: str) -> float:
    """The alpha one test may spend under ``policy``."""
    return policy.alpha * SHARES[test]


@dataclass(frozen=True)
class TestOutcome:
    """One always-valid test as a Decision reports it: what it asked, spent and found."""

    __test__ = False  # not a pytest class, despite the name

    name: str  # e.g. "judge_superiority", "category:probe", "guardrail:error_rate:breach"
    acts: str  # what firing does: start_ab/promote, roll_back, stop_equivalent, pause, ...
    method: str  # msprt, betting, confidence_sequence, quantile_cs, dirichlet_multinomial
    null: str  # the hypothesis it can reject, in words
    estimate: float
    p_value: float | None  # always-valid p-value, where the test has one
    interval: tuple[float, float] | None  # always-valid interval, where the test has one
    alpha: float
    n: int
    min_sample: int
    fired: bool

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "acts": self.acts,
            "method": self.method,
            "null": self.null,
            "estimate": self.estimate,
            "p_value": self.p_value,
            "interval": list(self.interval) if self.interval is not None else None,
            "alpha": self.alpha,
            "n": self.n,
            "min_sample": self.min_sample,
            "fired": self.fired,
        }
