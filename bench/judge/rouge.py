"""ROUGE-L timings: the judge's scorer against the pure-Python LCS it replaced and rouge-score.

Both baselines fill an n·m table in Python, so at 20,000 tokens a side they take minutes; they
are timed at 1,500 and 3,000 tokens and extrapolated to 20,000 by the square law (marked
"extrapolated") unless ``--full`` asks to time them there too.
"""

from __future__ import annotations

import random
import re
import statistics
import time
from collections.abc import Callable

from rouge_score import rouge_scorer

from judge.scorers.rouge import rouge_l

__all__ = ["old_rouge_l", "report"]

_TOKEN = re.compile(r"\w+")


def _old_lcs(a: list[str], b: list[str]) -> int:
    """The judge's former LCS (one row of memory, pure Python), kept as the baseline."""
    if len(a) < len(b):
        a, b = b, a
    row = [0] * (len(b) + 1)
    for x in a:
        diagonal = 0
        for j, y in enumerate(b, start=1):
            above = row[j]
            row[j] = diagonal + 1 if x == y else max(row[j], row[j - 1])
            diagonal = above
    return row[-1]


def old_rouge_l(candidate: str, reference: str) -> float:
    c, r = _TOKEN.findall(candidate.lower()), _TOKEN.findall(reference.lower())
    if not c or not r:
        return float(c == r)
    lcs = _old_lcs(c, r)
    if lcs == 0:
        return 0.0
    p, q = lcs / len(c), lcs / len(r)
    return 2 * p * q / (p + q)


def _text(tokens: int, seed: int) -> str:
    rng = random.Random(seed)
    return " ".join(f"w{rng.randrange(400)}" for _ in range(tokens))


def _time(fn: Callable[[str, str], float], a: str, b: str, repeats: int) -> float:
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn(a, b)
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def report(*, full: bool = False) -> None:
    scorer = rouge_scorer.RougeScorer(["rougeL"])

    def reference_package(a: str, b: str) -> float:
        return float(scorer.score(b, a)["rougeL"].fmeasure)

    print("ROUGE-L per arm (answer and reference of the same length), median seconds:")
    measured: dict[str, dict[int, float]] = {"old": {}, "rouge-score": {}, "new": {}}
    for tokens in (1_500, 3_000, 20_000):
        a, b = _text(tokens, 1), _text(tokens, 2)
        measured["new"][tokens] = _time(rouge_l, a, b, 5)
        if tokens < 20_000 or full:
            measured["old"][tokens] = _time(old_rouge_l, a, b, 1)
            measured["rouge-score"][tokens] = _time(reference_package, a, b, 1)
    for tokens in (1_500, 20_000):
        cells = []
        for name in ("old", "rouge-score", "new"):
            value = measured[name].get(tokens)
            note = ""
            if value is None:  # the square law from the 3,000-token run
                value, note = measured[name][3_000] * (tokens / 3_000) ** 2, " (extrapolated)"
            cells.append(f"{name} {value:.4g} s{note}")
        new = measured["new"][tokens]
        old = measured["old"].get(tokens, measured["old"][3_000] * (tokens / 3_000) ** 2)
        print(f"  {tokens:>6} tokens: " + "; ".join(cells) + f"; new is x{old / new:,.0f} faster")


if __name__ == "__main__":
    report()
