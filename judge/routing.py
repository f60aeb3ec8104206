"""Routing before any LLM call: shortcuts (errors, identical answers) and the scorers a pair gets.

``auto`` picks: the retrieval scorer for embeddings pairs labelled ``task=retrieval``; with a
reference, ``json_fields`` when it parses as a JSON object, else ``normalized``; and the pairwise
LLM judge whenever one is configured (reference-guided when there is a reference).
"""

from __future__ import annotations

from judge.scorers import AUTO, Registry, Scorer
from judge.scorers.base import ScoreContext, Scored
from judge.scorers.json_fields import reference_object
from tunegate.records import Arm, Winner

__all__ = ["resolve_scorers", "shortcut"]


def shortcut(ctx: ScoreContext) -> Scored | None:
    """A verdict that needs no scorer: an arm failed (it loses), or both answered identically."""
    candidate_ok, control_ok = ctx.candidate is not None, ctx.control is not None
    if not candidate_ok and not control_ok:
        return Scored(Winner.TIE, 0.5, "both_error")
    if not candidate_ok:
        return Scored(Winner.CONTROL, 0.0, "candidate_error")
    if not control_ok:
        return Scored(Winner.CANDIDATE, 1.0, "control_error")
    cand, ctrl = ctx.parsed(Arm.CANDIDATE), ctx.parsed(Arm.CONTROL)
    assert cand is not None and ctrl is not None
    if (cand.texts, cand.tool_calls, cand.embeddings) == (
        ctrl.texts,
        ctrl.tool_calls,
        ctrl.embeddings,
    ):
        return Scored(Winner.TIE, 0.5, "identical")
    return None


def _auto(ctx: ScoreContext, registry: Registry, by_reference: list[str] | None) -> list[str]:
    names: list[str] = []
    if ctx.is_retrieval:
        names.append("retrieval")
    elif ctx.pair.reference is not None:
        if by_reference is not None:
            names.extend(by_reference)
        else:
            names.append("json_fields" if reference_object(ctx.reference) else "normalized")
    names.append("pairwise")
    return [n for n in names if n in registry]


def resolve_scorers(
    names: list[str],
    ctx: ScoreContext,
    registry: Registry,
    by_category: dict[str, list[str]] | None = None,
) -> list[Scorer]:
    """The scorers this pair gets, in order, each once; ``auto`` expands as described above.

    ``by_category`` (the experiment's ``category_scorers``) replaces the reference scorer that
    ``auto`` would pick for the pairs of the categories it lists (the LLM judge still runs).
    """
    category = ctx.pair.category
    override = (by_category or {}).get(category) if category is not None else None
    chosen: list[Scorer] = []
    for name in names:
        expanded = _auto(ctx, registry, override) if name == AUTO else [name]
        for item in expanded:
            scorer = registry[item]
            if scorer not in chosen and scorer.applies(ctx):
                chosen.append(scorer)
    return chosen
