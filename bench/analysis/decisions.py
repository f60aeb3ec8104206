"""The decision Monte Carlo: simulated streams through the production Evidence builder and decide().

Each cell simulates ``runs`` streams of judged pairs (with both arms' errors, latencies and
tokens) and looks every ``every`` pairs up to ``horizon``. At a look the driver builds the
stream's records (bench/analysis/streams.py), turns them into Evidence with
``analysis.evidence.build_evidence`` and asks ``analysis.decide.decide`` -- the code the
controller runs -- stopping at the first stage change. Looks where no test can fire are skipped
by a vectorised screen (bench/analysis/screen.py); ``audit`` streams per cell are also run with
``decide()`` at every look and must end the same way. Beside each figure the naive rule -- the
fixed-sample tests the controller used to re-run at every look (z-test on the win rate,
per-category t-tests with Holm, checked before the burn-in) -- runs on the same streams.

Shadow cells start in the shadow stage; A/B cells start at the first weight of a short ramp and
apply every ramp the decision makes (the state's ``updated_at`` moves, so exposure and the SRM
test restart), until a promotion, a roll-back, a pause or the horizon.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
from scipy.stats import norm
from scipy.stats import t as student_t

from analysis.budget import alpha_for
from analysis.decide import decide
from analysis.evidence import Evidence, build_evidence
from analysis.srm import srm_log_bayes_factor
from bench.analysis.screen import first_candidate_look
from bench.analysis.streams import START, Batch, Scenario, generate, records
from tunegate.experiments import ArmConfig, ExperimentConfig, Policy
from tunegate.records import Action, ExperimentState, Pair, Stage, Verdict

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
    audit: int = 0  # streams also driven with decide() at every look
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
    audit_mismatches: int = 0
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
    """One stream's records, built lazily up to where the decisions need them."""

    def __init__(self, batch: Batch, run: int, horizon: int, weight: float) -> None:
        self.batch, self.run, self.horizon = batch, run, horizon
        self.weights = np.full(horizon, weight)
        self.built = 0
        self.pairs: list[Pair] = []
        self.verdicts: list[Verdict] = []
        self.evidence: Evidence | None = None

    def upto(self, t: int) -> Evidence:
        if t > self.built or self.evidence is None:
            stop = self.horizon if self.built else t  # first a prefix, then the whole stream
            p, v = records(self.batch, self.run, self.built, max(stop, t), self.weights)
            self.pairs += p
            self.verdicts += v
            self.built = max(stop, t)
            self.evidence = build_evidence("exp", self.pairs, self.verdicts, [])
        return self.evidence.until(_at(t))

    def reweight(self, t: int, weight: float) -> None:
        """From pair ``t`` on the candidate serves ``weight`` of requests: rebuild from there."""
        self.weights[t:] = weight
        keep = min(t, self.built)
        self.pairs, self.verdicts = self.pairs[:keep], self.verdicts[:keep]
        self.built = keep
        self.evidence = None


def _drive(
    stream: _Stream, looks: np.ndarray, first: int, config: ExperimentConfig, every_look: bool
) -> tuple[str, int, int]:
    """(first stage-changing action or "none", its look, decide() calls)."""
    calls = 0
    state = (
        ExperimentState(stage=Stage.AB, ab_weight=config.ab_weight, updated_at=START - 1)
        if config.stage is Stage.AB
        else None
    )
    since_idx = 0
    j = 0 if every_look else first
    while j < looks.size:
        t = int(looks[j])
        if not every_look and not _worth_a_look(stream, config, state, since_idx, t, j, first):
            j += 1
            continue
        d = decide(config, state, stream.upto(t), _at(t))
        calls += 1
        if d.action is Action.RAMP and state is not None:
            state = state.model_copy(update={"ab_weight": d.weight_after, "updated_at": _at(t)})
            stream.reweight(t, d.weight_after)
            since_idx = t
        elif d.action is not Action.CONTINUE:
            return d.action.value, t, calls
        j += 1
    return "none", -1, calls


def _worth_a_look(
    stream: _Stream,
    config: ExperimentConfig,
    state: ExperimentState | None,
    since: int,
    t: int,
    j: int,
    first: int,
) -> bool:
    """Whether decide() could change the stage at look ``j`` (else it would say continue)."""
    if j >= first:
        return True
    if state is None:
        return False
    served = stream.batch.served_u[stream.run, since:t] < state.ab_weight
    exposure_met = int(served.sum()) >= config.policy.min_exposure_per_stage
    if exposure_met and state.ab_weight < config.ramp[-1]:
        return True  # a ramp is possible
    log_bf = srm_log_bayes_factor(served, state.ab_weight) if served.size else np.zeros(1)
    return bool(log_bf.max() >= math.log(1 / _srm_screen_alpha(config)))


def _srm_screen_alpha(config: ExperimentConfig) -> float:
    policy = config.policy
    return min(alpha_for(policy, "srm"), policy.srm_threshold) / len(config.ramp)


def _naive(b: Batch, policy: Policy, looks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First look index of the old rules' promotion and roll-back, re-run at every look."""
    x = b.scores
    t = np.arange(1, x.shape[-1] + 1)
    mean = np.cumsum(x, axis=-1) / t
    se = np.sqrt(np.maximum(np.cumsum(x * x, axis=-1) / t - mean * mean, 1e-12) / t)
    z = norm.ppf(1 - policy.alpha)
    burn = t >= policy.min_pairs
    promote = burn & ((mean - policy.win_rate_bar) / se > z)
    roll = burn & (mean + z * se < 0.5 - policy.loss_margin)
    tol = policy.category_regression_tolerance
    pvals = []
    for c in np.unique(b.category):
        mask = b.category == c
        d = np.where(mask, 2 * x - 1, 0.0)
        n = np.cumsum(mask, axis=-1).astype(float)
        safe = np.maximum(n, 2)
        m = np.cumsum(d, axis=-1) / safe
        var = np.maximum((np.cumsum(d * d, axis=-1) - safe * m * m) / (safe - 1), 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            stat = (m + tol) / np.sqrt(var / safe)  # zero variance: +-inf, p = 0 or 1
        p = student_t.cdf(stat, safe - 1)
        pvals.append(np.where(n >= 2, np.nan_to_num(p, nan=1.0), 1.0))
    p_all = np.sort(np.stack(pvals), axis=0)
    k = p_all.shape[0]
    holm = np.maximum.accumulate(p_all * (k - np.arange(k))[:, None, None], axis=0)
    roll |= (holm <= policy.alpha).any(axis=0)
    return _first(promote[:, looks - 1]), _first(roll[:, looks - 1])


def _first(hits: np.ndarray) -> np.ndarray:
    return np.asarray(np.where(hits.any(axis=-1), hits.argmax(axis=-1), hits.shape[-1]))


def run_cell(cell: Cell) -> CellResult:
    """Every stream of one cell, seeded; returns counts, stopping looks and the naive figures."""
    started = time.perf_counter()
    rng = np.random.default_rng(cell.seed)
    config = experiment_for(cell)
    looks = np.arange(cell.every, cell.horizon + 1, cell.every)
    result = CellResult(cell)
    audited = 0
    for start in range(0, cell.runs, _CHUNK):
        batch = generate(rng, cell.scenario, min(_CHUNK, cell.runs - start), cell.horizon)
        first = first_candidate_look(batch, config.policy, looks)
        naive_promote, naive_roll = _naive(batch, config.policy, looks)
        for run in range(batch.runs):
            weight = config.ab_weight
            action, look, calls = _drive(
                _Stream(batch, run, cell.horizon, weight), looks, int(first[run]), config, False
            )
            result.decide_calls += calls
            result.outcomes[action] = result.outcomes.get(action, 0) + 1
            if action in ("start_ab", "promote"):
                result.stops.append(look)
            if action == "roll_back":
                result.rollback_looks.append(look)
            if audited < cell.audit:
                audited += 1
                again = _drive(_Stream(batch, run, cell.horizon, weight), looks, 0, config, True)
                result.decide_calls += again[2]
                result.audit_mismatches += (again[0], again[1]) != (action, look)
            naive = "none"
            if naive_roll[run] < looks.size and naive_roll[run] <= naive_promote[run]:
                naive = "roll_back"
            elif naive_promote[run] < looks.size:
                naive = "start_ab"
                result.naive_stops.append(int(looks[naive_promote[run]]))
            result.naive[naive] = result.naive.get(naive, 0) + 1
    result.seconds = time.perf_counter() - started
    return result
