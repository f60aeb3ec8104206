"""One generated Decision of each kind, and the result a rollout tool must read from each.

EXPECTED is written out here, not imported from tunegate.rollout, so a change to that table
fails these tests until the docs and examples agree with it.
"""

from __future__ import annotations

import time

from tunegate.records import Action, Decision, Stage

__all__ = ["EXPECTED", "KINDS", "decision"]

#: action -> (Argo measurement, Flagger metric check passes, Flagger confirm webhook passes)
EXPECTED: dict[str, tuple[str, bool, bool]] = {
    "start_ab": ("Successful", True, True),
    "ramp": ("Successful", True, True),
    "promote": ("Successful", True, True),
    "roll_back": ("Failed", False, False),
    "stop_equivalent": ("Failed", False, False),
    "continue": ("Inconclusive", True, False),
    "pause": ("Inconclusive", True, False),
}
KINDS = tuple(EXPECTED)

_MOVES: dict[Action, tuple[Stage, Stage, float, float]] = {
    Action.START_AB: (Stage.SHADOW, Stage.AB, 0.0, 0.05),
    Action.RAMP: (Stage.AB, Stage.AB, 0.05, 0.25),
    Action.PROMOTE: (Stage.AB, Stage.PROMOTED, 0.5, 1.0),
    Action.ROLL_BACK: (Stage.AB, Stage.ROLLED_BACK, 0.25, 0.0),
    Action.STOP_EQUIVALENT: (Stage.SHADOW, Stage.ROLLED_BACK, 0.0, 0.0),
    Action.CONTINUE: (Stage.SHADOW, Stage.SHADOW, 0.0, 0.0),
    Action.PAUSE: (Stage.AB, Stage.PAUSED, 0.25, 0.25),
}


def _guardrails(action: Action) -> list[dict[str, object]]:
    breached = action is Action.ROLL_BACK
    return [
        {"name": "error_rate", "breached": breached, "holds": not breached},
        {"name": "latency_p95", "breached": False, "holds": action is not Action.CONTINUE},
        {"name": "tokens", "breached": False, "holds": False},
    ]


def decision(experiment: str, kind: str, *, age_seconds: float = 0.0) -> Decision:
    """A Decision of ``kind`` (an Action value) as the controller would record it."""
    action = Action(kind)
    before, after, w_before, w_after = _MOVES[action]
    win = {Action.ROLL_BACK: 0.31, Action.STOP_EQUIVALENT: 0.5}.get(action, 0.64)
    return Decision(
        experiment=experiment,
        time=time.time() - age_seconds,
        action=action,
        stage_before=before,
        stage_after=after,
        weight_before=w_before,
        weight_after=w_after,
        evidence={
            "judge": {"n": 800, "win_rate": win, "lower": win - 0.05, "cs_upper": win + 0.05},
            "guardrails": _guardrails(action),
        },
        reasons=[f"generated {kind}"],
        reason=f"generated {kind}",
        samples_needed=120 if action is Action.CONTINUE else None,
        needs_approval=after != before,
    )
