"""Self-preference check: warn (refuse if strict) when the judge shares the candidate's family."""

from __future__ import annotations

import logging
import re

from tunegate.errors import ConfigError

__all__ = ["FAMILIES", "check_family", "model_family"]

log = logging.getLogger(__name__)

#: Model family -> name pattern. Order matters: the first match wins.
FAMILIES: dict[str, str] = {
    "llama": r"llama|vicuna|alpaca",
    "qwen": r"qwen|qwq",
    "mistral": r"mistral|mixtral|ministral|codestral",
    "gemma": r"gemma|gemini",
    "phi": r"\bphi[-_]?\d",
    "gpt": r"gpt|\bo[134](-|$)|davinci",
    "claude": r"claude",
    "smollm": r"smollm",
    "deepseek": r"deepseek",
    "falcon": r"falcon",
    "olmo": r"olmo",
    "granite": r"granite",
}


def model_family(name: str | None) -> str | None:
    if not name:
        return None
    lowered = name.lower()
    return next((f for f, pattern in FAMILIES.items() if re.search(pattern, lowered)), None)


def check_family(judge_model: str, candidate_models: dict[str, str], *, strict: bool) -> list[str]:
    """Warnings for experiments whose candidate shares the judge's family; ConfigError if strict."""
    judge_family = model_family(judge_model)
    warnings = []
    for experiment, candidate in candidate_models.items():
        if judge_family is not None and model_family(candidate) == judge_family:
            warnings.append(
                f"experiment {experiment!r}: judge {judge_model!r} is of the candidate"
                f" {candidate!r}'s family ({judge_family}); expect self-preference bias"
            )
    for warning in warnings:
        log.warning("%s", warning)
    if strict and warnings:
        raise ConfigError("judge.strict_family_check: " + "; ".join(warnings))
    return warnings
