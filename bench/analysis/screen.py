"""Which looks of each simulated stream could change the stage: a vectorised superset.

The decision Monte Carlo calls the production ``decide()`` only at the looks where this screen
says a stage change is possible; at the other looks no test can fire, or every category still
blocks, so ``decide()`` would say "continue" (tests/analysis checks that the screened run gives
the very same outcome as calling ``decide()`` at every look, and the bench audits a sample of
streams the same way). The screen uses the same statistical functions as the tests, with slack
where it re-derives a quantity (the Holm step, the category blocking rule, the tokens interval
on the pairs where both arms answered), so it can only over-call, never miss.

Per look it gives three things (:class:`Screen`): *change*, a roll-back test or the equivalence
stop might fire, whatever the stage; *superior*, the superiority test has fired; *unblocked*, no
category surely blocks a stage change. The state-dependent parts of the A/B stage (exposure,
the SRM test of the current stage) are left to the driver.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from analysis.betting import betting_pvalue
from analysis.budget import alpha_for
from analysis.gate import planned_n
from analysis.guardrails import BLOCK_EVIDENCE, CATEGORY_BET
from analysis.quantiles import quantile_ranks
from analysis.sequential import asymptotic_cs, msprt_pvalue, rho_squared
from bench.analysis.streams import Batch
from tunegate.experiments import Policy
from tunegate.records import Arm

__all__ = ["Screen", "screen"]

_SLACK = 2.0  # the re-derived tokens test is screened at twice its alpha
_EPS = 1e-9  # slack on the re-derived category statistics (sums instead of numpy's two passes)


@dataclass(frozen=True)
class Screen:
    change: np.ndarray  # runs x looks: a roll-back or the equivalence stop might fire
    superior: np.ndarray  # runs x looks: judge superiority fired (after the burn-in)
    unblocked: np.ndarray  # runs x looks: after the burn-in, no category surely blocks

    def shadow(self) -> np.ndarray:
        """Looks where decide() could change a shadow experiment's stage."""
        return np.asarray(self.change | (self.superior & self.unblocked))


def _judge(b: Batch, policy: Policy, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(loss or equivalence might fire, superiority fired) per pair."""
    x = b.scores
    sup = msprt_pvalue(x, policy.win_rate_bar, policy.mde, policy.prior_sd_ratio, policy.min_pairs)
    superior = (sup <= alpha_for(policy, "judge_superiority")) & (t >= policy.min_pairs)
    loss = betting_pvalue(x, 0.5 - policy.loss_margin, "less")
    hit = (loss <= alpha_for(policy, "judge_loss")) & (t >= policy.min_rollback_pairs)
    lo, hi = asymptotic_cs(x, alpha_for(policy, "judge_equivalence"), planned_n(policy))
    after = t >= policy.min_pairs
    lo = np.maximum.accumulate(np.where(after, lo, -math.inf), axis=-1)
    hi = np.minimum.accumulate(np.where(after, hi, math.inf), axis=-1)
    m = policy.equivalence_margin
    hit |= after & (lo >= 0.5 - m) & (hi <= 0.5 + m)
    return hit, superior


def _categories(b: Batch, policy: Policy) -> tuple[np.ndarray, np.ndarray]:
    """(a category might roll back, some category surely blocks) per pair.

    Holm rejects a category only if the smallest p-value times the number of categories seen is
    at most alpha, and the category's own p-value is; blocking is re-derived from running sums.
    """
    tol = policy.category_regression_tolerance
    null = 0.5 - tol / 2
    alpha = alpha_for(policy, "categories") * (1 + 1e-6)
    p_min = np.ones(b.scores.shape)
    seen = np.zeros(b.scores.shape)
    own = np.zeros(b.scores.shape, dtype=bool)
    blocked = np.zeros(b.scores.shape, dtype=bool)
    for c in np.unique(b.category):
        mask = b.category == c
        p = betting_pvalue(b.scores, null, "less", mask=mask, design=CATEGORY_BET)
        count = np.cumsum(mask, axis=-1)
        p_min = np.minimum(p_min, p)
        seen += count >= 1
        own |= (p <= alpha) & (count >= policy.min_rollback_pairs)
        n = np.maximum(count, 1)
        x = np.where(mask, b.scores, 0.0)
        mean = np.cumsum(x, axis=-1) / n
        std = np.sqrt(np.maximum(np.cumsum(x * x, axis=-1) / n - mean * mean, 0.0))
        net = 2 * mean - 1
        se = np.maximum(2 * std, 0.5) / np.sqrt(n)
        surely = (p <= BLOCK_EVIDENCE * (1 - 1e-6)) | (net - se < -tol - _EPS)
        blocked |= (count >= 1) & surely
    return own & (p_min * np.maximum(seen, 1) <= alpha), blocked


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


def screen(b: Batch, policy: Policy, looks: np.ndarray) -> Screen:
    """The screen of every stream of a batch at ``looks`` (pair counts, 1-based)."""
    t = np.arange(1, b.scores.shape[-1] + 1)
    change, superior = _judge(b, policy, t)
    roll, blocked = _categories(b, policy)
    change |= roll | _errors(b, policy, t) | _tokens(b, policy)
    burnt = t >= policy.min_pairs
    at = looks - 1
    return Screen(
        change[:, at] | _latency(b, policy, looks),
        superior[:, at],
        (burnt & ~blocked)[:, at],
    )
