"""Which looks of each simulated stream could change the stage: a vectorised superset.

The decision Monte Carlo calls the production ``decide()`` at every look where this screen
says a stage-changing test might fire, and at every later look of that stream until the stage
changes; at the other looks no test can fire, so ``decide()`` would say "continue" (it changes
a stage only when a test fires; tests/analysis checks that the screened run gives the very same
outcome as calling ``decide()`` at every look, and the bench audits a sample of streams the same
way). The screen uses the same statistical functions as the tests, with slack where it
re-derives a quantity (the tokens interval on the pairs where both arms answered), so it can
only over-call, never miss.
"""

from __future__ import annotations

import math

import numpy as np

from analysis.betting import betting_pvalue
from analysis.budget import alpha_for
from analysis.gate import planned_n
from analysis.quantiles import quantile_ranks
from analysis.sequential import asymptotic_cs, msprt_pvalue, rho_squared
from bench.analysis.streams import Batch
from tunegate.experiments import Policy
from tunegate.records import Arm

__all__ = ["first_candidate_look"]

_SLACK = 2.0  # the re-derived tokens test is screened at twice its alpha


def _judge(b: Batch, policy: Policy, t: np.ndarray) -> np.ndarray:
    x = b.scores
    sup = msprt_pvalue(x, policy.win_rate_bar, policy.mde, policy.prior_sd_ratio, policy.min_pairs)
    hit = (sup <= alpha_for(policy, "judge_superiority")) & (t >= policy.min_pairs)
    loss = betting_pvalue(x, 0.5 - policy.loss_margin, "less")
    hit |= (loss <= alpha_for(policy, "judge_loss")) & (t >= policy.min_rollback_pairs)
    lo, hi = asymptotic_cs(x, alpha_for(policy, "judge_equivalence"), planned_n(policy))
    after = t >= policy.min_pairs
    lo = np.maximum.accumulate(np.where(after, lo, -math.inf), axis=-1)
    hi = np.minimum.accumulate(np.where(after, hi, math.inf), axis=-1)
    m = policy.equivalence_margin
    hit |= after & (lo >= 0.5 - m) & (hi <= 0.5 + m)
    return hit


def _categories(b: Batch, policy: Policy) -> np.ndarray:
    hit = np.zeros(b.scores.shape, dtype=bool)
    null = 0.5 - policy.category_regression_tolerance / 2
    for c in np.unique(b.category):
        mask = b.category == c
        p = betting_pvalue(b.scores, null, "less", mask=mask)
        count = np.cumsum(mask, axis=-1)
        hit |= (p <= alpha_for(policy, "categories")) & (count >= policy.min_rollback_pairs)
    return hit


def _errors(b: Batch, policy: Policy, t: np.ndarray) -> np.ndarray:
    y = (b.errors[Arm.CANDIDATE] - b.errors[Arm.CONTROL] + 1) / 2
    null = (1 + policy.error_rate_margin) / 2
    if null >= 1:
        return np.zeros(y.shape, dtype=bool)
    p = betting_pvalue(y, null, "greater")
    return (p <= alpha_for(policy, "error_rate")) & (t >= policy.min_rollback_pairs)


def _tokens(b: Batch, policy: Policy) -> np.ndarray:
    ok = (b.errors[Arm.CONTROL] == 0) & (b.errors[Arm.CANDIDATE] == 0)
    d = np.where(
        ok, b.tokens[Arm.CANDIDATE] - (1 + policy.tokens_margin) * b.tokens[Arm.CONTROL], 0
    )
    n = np.cumsum(ok, axis=-1).astype(float)
    safe = np.maximum(n, 1)
    mean = np.cumsum(d, axis=-1) / safe
    raw = np.maximum(np.cumsum(d * d, axis=-1) / safe - mean * mean, 0)
    var = (0.25 + n * raw) / (n + 1)
    alpha = _SLACK * alpha_for(policy, "tokens")
    rho2 = rho_squared(alpha, planned_n(policy))
    radius = np.sqrt(
        var
        * 2
        * (safe * rho2 + 1)
        / (safe * safe * rho2)
        * np.log(np.sqrt(safe * rho2 + 1) / alpha)
    )
    lower = np.where(n >= policy.min_pairs, mean - radius, -math.inf)
    return np.maximum.accumulate(lower, axis=-1) > 0


def _latency(b: Batch, policy: Policy, looks: np.ndarray) -> np.ndarray:
    """Breach per look (runs x looks): the candidate's p95 lower bound over the control's upper.

    Runs differ in how many answers each arm had, so their ranks differ a little; the screen
    takes the candidate's largest lower rank and the control's smallest upper rank across the
    batch, which can only over-call, and one partition per look and arm finds them.
    """
    alpha = alpha_for(policy, "latency_p95") / 2
    limit = 1 + policy.latency_p95_margin
    out = np.zeros((b.runs, looks.size), dtype=bool)
    lat = {arm: np.where(b.errors[arm] == 0, b.latency[arm], math.inf) for arm in Arm}
    ok = {arm: np.cumsum(b.errors[arm] == 0, axis=-1) for arm in Arm}
    for j, t in enumerate(looks):
        if t < policy.min_rollback_pairs or quantile_ranks(int(t), 0.95, alpha)[1] > t:
            continue  # no finite upper bound for the control yet at this size: no breach
        n_ctrl, n_cand = ok[Arm.CONTROL][:, t - 1], ok[Arm.CANDIDATE][:, t - 1]
        hi = min(quantile_ranks(int(n), 0.95, alpha)[1] for n in np.unique(n_ctrl))
        lo = max(quantile_ranks(int(n), 0.95, alpha)[0] for n in np.unique(n_cand))
        if hi > t or lo < 1:
            continue
        ctrl_hi = np.partition(lat[Arm.CONTROL][:, :t], hi - 1, axis=-1)[:, hi - 1]
        cand_lo = np.partition(lat[Arm.CANDIDATE][:, :t], lo - 1, axis=-1)[:, lo - 1]
        enough = np.minimum(n_ctrl, n_cand) >= policy.min_rollback_pairs
        out[:, j] = enough & (cand_lo > limit * ctrl_hi)
    return out


def first_candidate_look(b: Batch, policy: Policy, looks: np.ndarray) -> np.ndarray:
    """Per stream, the index into ``looks`` of the first look where a test might fire (or len)."""
    t = np.arange(1, b.scores.shape[-1] + 1)
    per_pair = _judge(b, policy, t) | _categories(b, policy) | _errors(b, policy, t)
    per_pair |= _tokens(b, policy)
    at_looks = per_pair[:, looks - 1] | _latency(b, policy, looks)
    return np.where(at_looks.any(axis=-1), at_looks.argmax(axis=-1), looks.size)
