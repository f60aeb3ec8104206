"""An experiment's decision state: every statistic decide() reads, moved forward by the fold.

:class:`DecisionState` is what a look needs instead of the rows (analysis/evidence_columns.py):
per judged pair the judge gate's sums, confidence-sequence intersections, mSPRT and betting
maxima, per category the same for its regression test, the paired-correctness counts; per pair
the error-rate e-processes, the tokens confidence sequence, a latency histogram per arm and the
in-stage SRM counts. :meth:`DecisionState.add_judged` / :meth:`add_pairs` take a page of rows,
so the store (analysis/evidence_store.py) updates it in the same transaction as its cursors, and
a bulk load (all rows as one page) is the array version itself.

Its shape depends on the policy (alphas, margins, burn-in): :func:`params` is the fingerprint;
a state built under other parameters is rebuilt from the rows (once, when the policy changes).
The SRM counts restart when the stage's start or weight changes (the look passes them in): the
pairs of the new stage arrive after it started, so they are all counted from then on.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from analysis.budget import alpha_for
from analysis.gate import planned_n
from analysis.guardrails import CATEGORY_BET
from analysis.running import (
    AsymptoticRun,
    BettingRun,
    EmpiricalBernsteinRun,
    LatencyHistogram,
    MsprtRun,
    SrmRun,
    Sums,
)
from tunegate.experiments import Policy

__all__ = ["CategoryState", "DecisionState", "params"]


def params(policy: Policy) -> dict[str, float]:
    """Everything the state's shape depends on: a state is reused only under equal params."""
    return {
        "alpha": policy.alpha,
        "alpha_eq": alpha_for(policy, "judge_equivalence"),
        "alpha_tokens": alpha_for(policy, "tokens"),
        "planned": planned_n(policy),
        "burn": policy.min_pairs,
        "bar": policy.win_rate_bar,
        "mde": policy.mde,
        "ratio": policy.prior_sd_ratio,
        "loss_null": 0.5 - policy.loss_margin,
        "category_null": 0.5 - policy.category_regression_tolerance / 2,
        "error_null": (1 + policy.error_rate_margin) / 2,
        "tokens_margin": policy.tokens_margin,
    }


def _plain(value: Any) -> Any:
    """``dataclasses.asdict`` for the state's values: dataclasses and dicts become dicts, the
    rest (numbers, strings, None, the histograms' lists of counts) is shared, not copied."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


@dataclass
class CategoryState:
    sums: Sums
    test: BettingRun
    wins: int = 0
    losses: int = 0


@dataclass
class DecisionState:
    params: dict[str, float]
    # judged pairs
    judge: Sums = field(default_factory=Sums)
    wins: int = 0
    losses: int = 0
    as_alpha: AsymptoticRun = field(default=None)  # type: ignore[assignment]  # __post_init__
    as_eq: AsymptoticRun = field(default=None)  # type: ignore[assignment]
    eb_alpha: EmpiricalBernsteinRun = field(default=None)  # type: ignore[assignment]
    eb_eq: EmpiricalBernsteinRun = field(default=None)  # type: ignore[assignment]
    msprt: MsprtRun = field(default=None)  # type: ignore[assignment]
    loss: BettingRun = field(default=None)  # type: ignore[assignment]
    categories: dict[str, CategoryState] = field(default_factory=dict)
    correct: dict[str, int] = field(default_factory=dict)  # paired correctness counts
    judge_last: float = -math.inf
    # pairs
    pairs: int = 0
    pairs_last: float = -math.inf
    err_n: int = 0
    err_control: float = 0.0
    err_candidate: float = 0.0
    err_breach: BettingRun | None = None
    err_within: BettingRun | None = None
    tok_control: float = 0.0
    tok_candidate: float = 0.0
    tokens: Sums = field(default_factory=Sums)
    tok_run: AsymptoticRun = field(default=None)  # type: ignore[assignment]
    latency: dict[str, LatencyHistogram] = field(default_factory=dict)
    srm: SrmRun = field(default_factory=lambda: SrmRun(0.0, 0.0))

    def __post_init__(self) -> None:
        p = self.params
        burn = int(p["burn"])
        self.as_alpha = self.as_alpha or AsymptoticRun(p["alpha"], p["planned"], burn)
        self.as_eq = self.as_eq or AsymptoticRun(p["alpha_eq"], p["planned"], burn)
        self.eb_alpha = self.eb_alpha or EmpiricalBernsteinRun(p["alpha"])
        self.eb_eq = self.eb_eq or EmpiricalBernsteinRun(p["alpha_eq"])
        self.msprt = self.msprt or MsprtRun(p["bar"], p["mde"], p["ratio"], burn)
        self.loss = self.loss or BettingRun(p["loss_null"], "less")
        self.tok_run = self.tok_run or AsymptoticRun(p["alpha_tokens"], p["planned"], burn)
        if p["error_null"] < 1:
            self.err_breach = self.err_breach or BettingRun(p["error_null"], "greater")
            self.err_within = self.err_within or BettingRun(p["error_null"], "less")
        for key in ("n", "candidate", "control", "candidate_only", "control_only"):
            self.correct.setdefault(key, 0)
        for arm in ("control", "candidate"):
            self.latency.setdefault(arm, LatencyHistogram())

    @classmethod
    def for_policy(cls, policy: Policy) -> DecisionState:
        return cls(params(policy))

    # -- judged pairs ------------------------------------------------------------------------
    def add_judged_rows(self, rows: np.ndarray, names: list[str]) -> None:
        """A page of JUDGE_ROW rows (analysis/evidence_columns.py) in fold order."""
        self.add_judged(
            rows["score"], rows["category"], names, rows["time"], rows["candidate"],
            rows["control"],
        )  # fmt: skip

    def add_pair_rows(self, rows: np.ndarray) -> None:
        """A page of PAIR_ROW rows in fold order."""

        def errors(codes: np.ndarray) -> np.ndarray:
            return np.where(codes < 0, math.nan, codes.astype(np.float64))

        self.add_pairs(
            rows["time"],
            rows["served"].astype(np.float64),
            (errors(rows["err_control"]), errors(rows["err_candidate"])),
            (rows["lat_control"], rows["lat_candidate"]),
            (rows["tok_control"].astype(np.float64), rows["tok_candidate"].astype(np.float64)),
        )

    def add_judged(
        self,
        scores: np.ndarray,
        codes: np.ndarray,
        names: list[str],
        times: np.ndarray,
        candidate: np.ndarray,
        control: np.ndarray,
    ) -> None:
        """A page of judged pairs in fold order: scores in [0, 1], category codes into
        ``names``, per-arm correctness or nan."""
        x = np.asarray(scores, dtype=np.float64)
        if x.size == 0:
            return
        if np.any((x < 0) | (x > 1)):
            raise ValueError("scores must lie in [0, 1]")
        before = dataclasses.replace(self.judge)
        t, mean, var = before.paths(x)
        self.as_alpha.add(t, mean, var)
        self.as_eq.add(t, mean, var)
        self.eb_alpha.add(before, x)
        self.eb_eq.add(before, x)
        self.msprt.add(t, mean, var)
        self.loss.add(x)
        self.judge.add(x)
        self.wins += int(np.count_nonzero(x > 0.5))
        self.losses += int(np.count_nonzero(x < 0.5))
        codes = np.asarray(codes)
        for code in np.unique(codes):
            name = names[int(code)]
            xc = x[codes == code]
            cat = self.categories.get(name)
            if cat is None:
                null = self.params["category_null"]
                cat = self.categories[name] = CategoryState(
                    Sums(), BettingRun(null, "less", CATEGORY_BET)
                )
            cat.test.add(xc)
            cat.sums.add(xc)
            cat.wins += int(np.count_nonzero(xc > 0.5))
            cat.losses += int(np.count_nonzero(xc < 0.5))
        known = ~np.isnan(candidate) & ~np.isnan(control)
        cand, ctrl = candidate[known] >= 0.5, control[known] >= 0.5
        c = self.correct
        c["n"] += int(known.sum())
        c["candidate"] += int(cand.sum())
        c["control"] += int(ctrl.sum())
        c["candidate_only"] += int(np.count_nonzero(cand & ~ctrl))
        c["control_only"] += int(np.count_nonzero(~cand & ctrl))
        self.judge_last = max(self.judge_last, float(np.max(times)))

    # -- pairs -------------------------------------------------------------------------------
    def add_pairs(
        self,
        times: np.ndarray,
        served: np.ndarray,
        errors: tuple[np.ndarray, np.ndarray],
        latency: tuple[np.ndarray, np.ndarray],
        tokens: tuple[np.ndarray, np.ndarray],
    ) -> None:
        """A page of pairs in fold order: (control, candidate) errors, latencies and tokens."""
        if times.size == 0:
            return
        self.pairs += int(times.size)
        self.pairs_last = max(self.pairs_last, float(np.max(times)))
        both = ~np.isnan(errors[0]) & ~np.isnan(errors[1])
        e_ctrl, e_cand = errors[0][both], errors[1][both]
        if e_ctrl.size:
            y = (e_cand - e_ctrl + 1) / 2
            if self.err_breach is not None and self.err_within is not None:
                self.err_breach.add(y)
                self.err_within.add(y)
            self.err_n += int(e_ctrl.size)
            self.err_control += float(e_ctrl.sum())
            self.err_candidate += float(e_cand.sum())
        both = ~np.isnan(tokens[0]) & ~np.isnan(tokens[1])
        t_ctrl, t_cand = tokens[0][both], tokens[1][both]
        if t_ctrl.size:
            d = t_cand - (1 + self.params["tokens_margin"]) * t_ctrl
            t, mean, var = self.tokens.paths(d)
            self.tok_run.add(t, mean, var)
            self.tokens.add(d)
            self.tok_control += float(t_ctrl.sum())
            self.tok_candidate += float(t_cand.sum())
        for arm, values in zip(("control", "candidate"), latency, strict=True):
            self.latency[arm].add(values[~np.isnan(values)])
        self.srm.add(np.asarray(served, dtype=np.float64)[times >= self.srm.since])

    def stage(self, since: float, weight: float) -> None:
        """Restart the in-stage counts when the stage's start or weight changed."""
        if (self.srm.since, self.srm.weight) != (since, weight):
            self.srm = SrmRun(since, weight)

    @property
    def last_time(self) -> float | None:
        """Newest verdict time, else newest pair time (as ``Evidence.last_time``)."""
        for last in (self.judge_last, self.pairs_last):
            if last > -math.inf:
                return last
        return None

    # -- storage -----------------------------------------------------------------------------
    def to_json(self) -> str:
        """Floats round-trip exactly (repr); infinities as JSON's Infinity. The text of
        ``json.dumps(dataclasses.asdict(self))``, without asdict's deep copy of every value (a
        third of a fold's Python time at 2,000 entries a page)."""
        return json.dumps(_plain(self))

    @classmethod
    def from_json(cls, text: str | bytes) -> DecisionState:
        d: dict[str, Any] = json.loads(text)
        out = cls(d["params"])
        for name, value in d.items():
            current = getattr(out, name)
            if name == "categories":
                out.categories = {
                    k: CategoryState(Sums(**v["sums"]), BettingRun(**v["test"]), v["wins"],
                                     v["losses"])
                    for k, v in value.items()
                }  # fmt: skip
            elif name == "latency":
                out.latency = {k: LatencyHistogram(v["counts"]) for k, v in value.items()}
            elif dataclasses.is_dataclass(current) or name in ("err_breach", "err_within"):
                if value is not None:
                    kind = type(current) if current is not None else BettingRun
                    setattr(out, name, kind(**value))
            else:
                setattr(out, name, value)
        return out
