"""The cells of the decision Monte Carlo and the figure each one reports against its target."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import beta

from analysis.budget import alpha_for
from analysis.power import fixed_horizon_n
from bench.analysis.decisions import Cell, CellResult, experiment_for
from bench.analysis.streams import Scenario
from tunegate.records import Stage

__all__ = ["Figure", "figures", "grid"]

TIES = (0.0, 0.3, 0.6)
SCHEDULES = ((10, 1000), (1, 300))  # (look every, horizon)


def grid(runs: int, seed: int, audit: int, heavy_runs: int, check: int = 0) -> list[Cell]:
    """Every cell; ``heavy_runs`` for the cells whose streams need decide() at most looks."""
    cells = []
    i = 0

    def add(scenario: Scenario, every: int, horizon: int, n: int, **kw: object) -> None:
        nonlocal i
        cells.append(Cell(scenario, every, horizon, n, seed + i, audit=audit, check=check, **kw))  # type: ignore[arg-type]  # Cell's own fields
        i += 1

    for every, horizon in SCHEDULES:
        for tie in TIES:
            for k in range(1, 6):
                add(Scenario.uniform(f"aa_t{tie}_k{k}", k, 0.5, tie), every, horizon, runs)
    for every, horizon in SCHEDULES:
        for tie in TIES:
            add(Scenario.uniform(f"win60_t{tie}_k3", 3, 0.6, tie), every, horizon, runs)
    for k in (2, 3, 5):
        add(Scenario.one_regresses(k), 10, 1000, heavy_runs, follow=True)
    for tie in TIES:
        n_fixed = _fixed_n(tie)
        add(Scenario.uniform(f"power2mde_t{tie}", 1, 0.6, tie), 10, 1000, runs)
        horizon = max(1000, math.ceil(1.7 * n_fixed / 10) * 10)
        add(Scenario.uniform(f"powermde_t{tie}", 1, 0.55, tie), 10, horizon, runs)
    for k in (1, 3):
        add(Scenario.uniform(f"ab_aa_t0.3_k{k}", k, 0.5, 0.3), 10, 1000, heavy_runs, stage=Stage.AB)
    return cells


def _fixed_n(tie: float, full_alpha: bool = False) -> float:
    """Fixed-horizon n of a one-sided z-test at the gate's alpha (or the whole alpha), MDE 0.05."""
    policy = experiment_for(Cell(Scenario.uniform("x", 1, 0.5, tie), 10, 10, 1, 0)).policy
    alpha = policy.alpha if full_alpha else alpha_for(policy, "judge_superiority")
    return fixed_horizon_n(math.sqrt((1 - tie) / 4), policy.mde, alpha, policy.power)


@dataclass(frozen=True)
class Figure:
    cell: str
    figure: str
    target: str
    value: float
    upper95: float | None
    naive: float | None
    ok: bool

    def row(self) -> str:
        upper = f"{self.upper95:.4f}" if self.upper95 is not None else "-"
        naive = f"{self.naive:.4f}" if self.naive is not None else "-"
        mark = "ok" if self.ok else "MISSED"
        return (
            f"{self.cell:<22} {self.figure:<26} {self.target:<12} {self.value:>8.4f}"
            f" {upper:>8} {naive:>8}  {mark}"
        )


def _upper(k: int, n: int) -> float:
    return float(beta.ppf(0.975, k + 1, n - k)) if k < n else 1.0


def figures(r: CellResult) -> list[Figure]:
    """The figures of one cell against their targets (alpha = the policy's)."""
    c, runs = r.cell, r.cell.runs
    name = f"{c.scenario.name}/{c.every}x{c.horizon}"
    alpha = experiment_for(c).policy.alpha
    kind = c.scenario.name.split("_")[0]
    if c.stage is Stage.AB:
        wrong = sum(
            r.outcomes.get(a, 0) for a in ("promote", "roll_back", "pause", "stop_equivalent")
        )
        up = _upper(wrong, runs)
        return [
            Figure(
                name,
                "A/B A/A wrong change",
                f"<= {alpha}",
                wrong / runs,
                up,
                None,
                up <= alpha + 0.01 and wrong / runs <= alpha,
            )
        ]
    if kind == "aa":
        wrong = sum(r.outcomes.get(a, 0) for a in ("start_ab", "roll_back", "pause"))
        up = _upper(wrong, runs)
        naive = r.naive_share("start_ab", "roll_back")
        return [
            Figure(
                name,
                "A/A any wrong change",
                f"<= {alpha}",
                wrong / runs,
                up,
                naive,
                wrong / runs <= alpha and up <= alpha + 0.01,
            )
        ]
    if kind == "win60":
        rb = r.outcomes.get("roll_back", 0) + r.outcomes.get("stop_equivalent", 0)
        return [
            Figure(
                name,
                "60% winner rolled back",
                "<= 0.005",
                rb / runs,
                _upper(rb, runs),
                r.naive_share("roll_back"),
                rb / runs <= 0.005,
            )
        ]
    if kind == "regress":
        share_rb, promoted = r.share("roll_back"), r.share("promote")
        started = r.started / runs
        return [
            Figure(
                name,
                "regressing: rolled back",
                ">= 0.80",
                share_rb,
                None,
                r.naive_share("roll_back"),
                share_rb >= 0.8,
            ),
            Figure(
                name,
                "regressing: promoted",
                "~ 0",
                promoted,
                _upper(r.outcomes.get("promote", 0), runs),
                r.naive_share("start_ab"),
                promoted <= alpha,
            ),
            Figure(name, "  ... started the A/B", "(info)", started, None, None, True),
        ]
    tie = float(c.scenario.name.split("_t")[1])
    n_fixed = _fixed_n(tie)
    stops = np.asarray(r.stops, dtype=float)
    naive_stops = np.asarray(r.naive_stops, dtype=float)
    if kind == "power2mde":
        med = float(np.median(stops)) / n_fixed if stops.size * 2 > runs else math.inf
        naive_med = float(np.median(naive_stops)) / n_fixed if naive_stops.size * 2 > runs else None
        full = float(np.median(stops)) / _fixed_n(tie, True) if stops.size * 2 > runs else math.inf
        return [
            Figure(name, "median stop / fixed n", "<= 0.35", med, None, naive_med, med <= 0.35),
            Figure(name, "  ... / fixed n at alpha", "(info)", full, None, None, True),
        ]
    power = float((stops <= 1.7 * n_fixed).sum()) / runs
    naive_power = float((naive_stops <= 1.7 * n_fixed).sum()) / runs
    return [
        Figure(name, "power at 1.7 x fixed n", ">= 0.80", power, None, naive_power, power >= 0.8)
    ]
