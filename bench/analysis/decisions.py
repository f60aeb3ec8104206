"""The decision Monte Carlo: simulated streams through the production Evidence builder and decide().

Each cell simulates ``runs`` streams of judged pairs (with both arms' errors, latencies and
tokens) and looks every ``every`` pairs up to ``horizon``. At a look the driver takes the
stream's Evidence (bench/analysis/streams.py: written from the arrays, and for the first
``check`` streams of a cell compared at every look with what ``analysis.evidence.build_evidence``
makes of the stream's records) and asks ``analysis.decide.decide`` -- the code the controller
runs -- stopping at the first stage change. Looks where no stage change is possible are skipped
by a vectorised screen (bench/analysis/screen.py); the first ``audit`` streams of a cell are
also run with ``decide()`` at every look and must end the same way. Either kind of mismatch
fails the bench. Beside each figure the naive rule -- the
fixed-sample tests the controller used to re-run at every look (z-test on the win rate,
per-category t-tests with Holm, checked before the burn-in) -- runs on the same streams.

Shadow cells start in the shadow stage and end at the first stage change, except ``follow``
cells, which go on into the A/B after a start; A/B cells start at the first weight of a short
ramp. In the A/B stage every ramp the decision makes is applied (the state's ``updated_at``
moves, so exposure and the SRM test restart), until a promotion, a roll-back, a pause or the
horizon.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace

import numpy as np
from scipy.special import stdtr
from scipy.stats import norm

from analysis.budget import alpha_for
from analysis.decide import decide
from analysis.evidence import Evidence
from analysis.srm import srm_log_bayes_factor
from bench.analysis.screen import Screen, screen
from bench.analysis.streams import (
    START,
    Batch,
    Scenario,
    evidence_at,
    generate,
    record_evidence,
    same_evidence,
)
from tunegate.experiments import ArmConfig, ExperimentConfig, Policy
from tunegate.records import Action, ExperimentState, Stage

__all__ = ["Cell", "CellResult", "experiment_for", "run_cell"]

_CHUNK = 500


@dataclass(frozen=True)
class Cell:
    scenario: Scenario
    every: int
    horizon: int
    runs: int
    seed: int
    stage: Stage = Stage.SHADOW
    audit: int = 0  # streams also driven with decide() at every look: must end the same way
    check: int = 0  # streams whose array Evidence is checked against the record builder's
    follow: bool = False  # go on into the A/B after a start (else the start ends the stream)
    ramp: tuple[float, ...] = (0.1, 0.25, 0.5)
    min_exposure: int = 50


@dataclass
class CellResult:
    cell: Cell
    outcomes: dict[str, int] = field(default_factory=dict)  # first stage change -> streams
    stops: list[int] = field(default_factory=list)  # look of each start_ab / promote
    rollback_looks: list[int] = field(default_factory=list)
    naive: dict[str, int] = field(default_factory=dict)
    naive_stops: list[int] = field(default_factory=list)
    decide_calls: int = 0
    started: int = 0  # streams that started the A/B on the way (with ``follow``)
    audit_mismatches: int = 0
    checked_looks: int = 0
    evidence_mismatches: int = 0
    seconds: float = 0.0

    def share(self, *actions: str) -> float:
        return sum(self.outcomes.get(a, 0) for a in actions) / self.cell.runs

    def naive_share(self, *actions: str) -> float:
        return sum(self.naive.get(a, 0) for a in actions) / self.cell.runs


def experiment_for(cell: Cell, **policy: object) -> ExperimentConfig:
    stage = cell.stage
    return ExperimentConfig(
        name="exp",
        control=ArmConfig(upstream="base"),
        candidate=ArmConfig(upstream="tuned"),
        stage=stage,
        ab_weight=cell.ramp[0] if stage is Stage.AB else 0.0,
        ramp=list(cell.ramp),
        policy=Policy.model_validate({"min_exposure_per_stage": cell.min_exposure, **policy}),
    )


def _at(t: int) -> float:
    """The time of a look after ``t`` pairs: just after the t-th verdict."""
    return START + t - 0.5


class _Stream:
    """One stream: its Evidence at a look straight from the arrays; audited against records.

    An audited stream also builds its records once (again after each ramp, which changes the
    served arms from then on), turns them into Evidence with the production builder, and checks
    that every look's array Evidence equals that builder's (``mismatches`` counts the others).
    """

    def __init__(self, batch: Batch, run: int, horizon: int, weight: float, audit: bool) -> None:
        self.batch, self.run, self.horizon = batch, run, horizon
        self.weights = np.full(horizon, weight)
        self.audit = audit
        self.built: Evidence | None = None
        self.looks = 0
        self.mismatches = 0

    def upto(self, t: int) -> Evidence:
        evidence = evidence_at(self.batch, self.run, t, self.weights)
        if self.audit:
            if self.built is None:
                self.built = record_evidence(self.batch, self.run, self.horizon, self.weights)
            seen = self.built.until(_at(t))
            # until() keeps the whole stream's health counts; a look at t has read t verdicts
            seen = replace(seen, judge=replace(seen.judge, pairwise=t))
            self.looks += 1
            self.mismatches += not same_evidence(evidence, seen)
        return evidence

    def reweight(self, t: int, weight: float) -> None:
        """From pair ``t`` on the candidate serves ``weight`` of requests."""
        self.weights[t:] = weight
        self.built = None


def _allowed(
    scr: Screen | None,
    stream: _Stream,
    looks: np.ndarray,
    config: ExperimentConfig,
    state: ExperimentState | None,
    since: int,
) -> np.ndarray:
    """Per look, whether decide() could change the stage (every look without a screen).

    Shadow: a roll-back or the equivalence stop, or superiority with no category blocking. A/B
    adds the state: the stage's SRM test, and a ramp or promotion once the exposure is met.
    """
    if scr is None:
        return np.ones(looks.size, dtype=bool)
    run = stream.run
    if state is None:
        return np.asarray(scr.change[run] | (scr.superior[run] & scr.unblocked[run]))
    policy, weight = config.policy, state.ab_weight
    served = stream.batch.served_u[run, since:] < weight  # this stage's requests, in order
    if served.size == 0 or not 0 < weight < 1:  # a ramp at the last look; or no split to test
        return np.asarray(scr.change[run] & (looks > since))
    at = looks - since - 1  # index of a look's last request within the stage
    inside = at >= 0
    at = np.clip(at, 0, None)
    exposure = np.cumsum(served)[at]
    log_bf = np.maximum.accumulate(srm_log_bayes_factor(served, weight))[at]
    srm = inside & (at + 1 >= policy.min_rollback_pairs)
    srm &= log_bf >= math.log(1 / _srm_alpha(config)) - 1e-9
    ready = inside & (exposure >= policy.min_exposure_per_stage) & scr.unblocked[run]
    if weight >= config.ramp[-1]:
        ready &= scr.superior[run]  # the last step only promotes, on superiority
    return np.asarray(scr.change[run] | srm | ready)


def _drive(
    stream: _Stream,
    looks: np.ndarray,
    scr: Screen | None,
    config: ExperimentConfig,
    follow: bool = False,
) -> tuple[str, int, int, int]:
    """(stage-changing action or "none", its look, decide() calls, look of the A/B start).

    With ``scr`` None, decide() runs at every look; otherwise only where the screen allows.
    The first stage change ends the stream, except that with ``follow`` a start of the A/B and
    every ramp are applied and the stream goes on to a promotion, a roll-back or the horizon.
    """
    calls, started = 0, -1
    state = (
        ExperimentState(stage=Stage.AB, ab_weight=config.ab_weight, updated_at=START - 1)
        if config.stage is Stage.AB
        else None
    )
    allowed = _allowed(scr, stream, looks, config, state, 0)
    j = 0
    while j < looks.size:
        if not allowed[j]:
            j += 1
            continue
        t = int(looks[j])
        d = decide(config, state, stream.upto(t), _at(t))
        calls += 1
        moves = d.action is Action.RAMP and state is not None
        if d.action is Action.START_AB and follow:
            started = t
            moves = True
        if moves:
            state = ExperimentState(stage=Stage.AB, ab_weight=d.weight_after, updated_at=_at(t))
            stream.reweight(t, d.weight_after)
            allowed = _allowed(scr, stream, looks, config, state, t)
        elif d.action is not Action.CONTINUE:
            return d.action.value, t, calls, started
        j += 1
    return "none", -1, calls, started


def _srm_alpha(config: ExperimentConfig) -> float:
    policy = config.policy
    return min(alpha_for(policy, "srm"), policy.srm_threshold) / len(config.ramp)


def _naive(b: Batch, policy: Policy, looks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First look index of the old rules' promotion and roll-back, re-run at every look.

    Running sums are taken over every pair and the tests evaluated at the looks only.
    """
    at = looks - 1
    x = b.scores
    t = looks.astype(float)
    mean = np.cumsum(x, axis=-1)[:, at] / t
    se = np.sqrt(np.maximum(np.cumsum(x * x, axis=-1)[:, at] / t - mean * mean, 1e-12) / t)
    z = norm.ppf(1 - policy.alpha)
    burn = t >= policy.min_pairs
    promote = burn & ((mean - policy.win_rate_bar) / se > z)
    roll = burn & (mean + z * se < 0.5 - policy.loss_margin)
    tol = policy.category_regression_tolerance
    pvals = []
    for c in np.unique(b.category):
        mask = b.category == c
        d = np.where(mask, 2 * x - 1, 0.0)
        n = np.cumsum(mask, axis=-1)[:, at].astype(float)
        safe = np.maximum(n, 2)
        m = np.cumsum(d, axis=-1)[:, at] / safe
        var = np.maximum((np.cumsum(d * d, axis=-1)[:, at] - safe * m * m) / (safe - 1), 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            stat = (m + tol) / np.sqrt(var / safe)  # zero variance: +-inf, p = 0 or 1
        p = stdtr(safe - 1, stat)
        pvals.append(np.where(n >= 2, np.nan_to_num(p, nan=1.0), 1.0))
    p_all = np.sort(np.stack(pvals), axis=0)
    k = p_all.shape[0]
    holm = np.maximum.accumulate(p_all * (k - np.arange(k))[:, None, None], axis=0)
    roll |= (holm <= policy.alpha).any(axis=0)
    return _first(promote), _first(roll)


def _first(hits: np.ndarray) -> np.ndarray:
    return np.asarray(np.where(hits.any(axis=-1), hits.argmax(axis=-1), hits.shape[-1]))


def run_cell(cell: Cell) -> CellResult:
    """Every stream of one cell, seeded; returns counts, stopping looks and the naive figures."""
    started = time.perf_counter()
    rng = np.random.default_rng(cell.seed)
    config = experiment_for(cell)
    looks = np.arange(cell.every, cell.horizon + 1, cell.every)
    result = CellResult(cell)
    done = 0
    for start in range(0, cell.runs, _CHUNK):
        batch = generate(rng, cell.scenario, min(_CHUNK, cell.runs - start), cell.horizon)
        scr = screen(batch, config.policy, looks)
        naive_promote, naive_roll = _naive(batch, config.policy, looks)
        for run in range(batch.runs):
            weight = config.ab_weight
            checked = done < cell.check
            stream = _Stream(batch, run, cell.horizon, weight, checked)
            if checked:  # every look at the starting weight; after a ramp, where decide() runs
                for t in looks:
                    stream.upto(int(t))
            action, look, calls, started = _drive(stream, looks, scr, config, cell.follow)
            result.decide_calls += calls
            result.checked_looks += stream.looks
            result.evidence_mismatches += stream.mismatches
            result.outcomes[action] = result.outcomes.get(action, 0) + 1
            if started >= 0:
                result.started += 1
            if action in ("start_ab", "promote"):
                result.stops.append(look)
            if action == "roll_back":
                result.rollback_looks.append(look)
            if done < cell.audit:
                every = _Stream(batch, run, cell.horizon, weight, False)
                again = _drive(every, looks, None, config, cell.follow)
                result.decide_calls += again[2]
                result.audit_mismatches += again[:2] + again[3:] != (action, look, started)
            done += 1
            naive = "none"
            if naive_roll[run] < looks.size and naive_roll[run] <= naive_promote[run]:
                naive = "roll_back"
            elif naive_promote[run] < looks.size:
                naive = "start_ab"
                result.naive_stops.append(int(looks[naive_promote[run]]))
            result.naive[naive] = result.naive.get(naive, 0) + 1
    result.seconds = time.perf_counter() - started
    return result
