"""A reduced `tunegate demo` on the real models: the printed verdict and figures match Redis.

The quick run trains SmolLM2's LoRA adapter for a few steps, sends a few held-out tickets and
probes through the real proxy (in-process models, shadow stage, 100 % mirroring), judges them
with the real judge worker (plus the pairwise LLM judge against the HTTP judge double, as
``--judge-url`` turns it on) and decides with the real decision engine. The test then reads the
demo's own Redis back (its data stays in the work directory) and checks that what the demo
printed is what was recorded.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import cast

import pytest
import redis

from bench.servers.judge_double import JudgeDouble, prefer_longer
from cli.server import serve_in_thread
from tunegate import keys
from tunegate.records import (
    Decision,
    Pair,
    Verdict,
    decode_decision,
    decode_pair,
    decode_verdict,
)
from tunegate.redis import EmbeddedRedis

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]

LINE = re.compile(
    r"^category (\S+) \[(\w+)\]: (\d+) pairs, candidate (\d+) wins / (\d+) losses / (\d+) ties;"
    r" mean score control ([\d.]+|-), candidate ([\d.]+|-)$",
    re.MULTILINE,
)


def _recorded(workdir: Path, experiment: str) -> tuple[list[Pair], list[Verdict], list[Decision]]:
    server = EmbeddedRedis(workdir / "redis")
    client = redis.Redis.from_url(server.start())
    try:
        pairs = [decode_pair(f) for _, f in _entries(client, keys.pairs(experiment))]
        verdicts = [decode_verdict(f) for _, f in _entries(client, keys.verdicts(experiment))]
        decisions = [decode_decision(f) for _, f in _entries(client, keys.decisions(experiment))]
    finally:
        client.close()
        server.stop()
    return pairs, verdicts, decisions


def _entries(client: redis.Redis, stream: str) -> list[tuple[bytes, dict[bytes, bytes]]]:
    return cast(list[tuple[bytes, dict[bytes, bytes]]], client.xrange(stream))  # sync client


def _counts(verdicts: list[Verdict]) -> dict[tuple[str | None, str], Counter[str]]:
    counts: dict[tuple[str | None, str], Counter[str]] = {}
    for v in verdicts:
        counts.setdefault((v.category, v.scorer), Counter())[str(v.winner)] += 1
    return counts


def _demo(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real `tunegate demo` entry point in a child process (its output is all its own)."""
    return subprocess.run(
        [sys.executable, "-m", "cli", "demo", *argv],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        cwd=ROOT,
        timeout=840,
    )


def test_quick_generative_demo_prints_what_it_recorded(tmp_path):
    workdir, cache = tmp_path / "work", tmp_path / "cache"
    judge = JudgeDouble(policy=prefer_longer)
    with serve_in_thread(judge.app) as judge_url:
        run = _demo(
            "--quick", "--workdir", str(workdir), "--cache-dir", str(cache),
            "--judge-url", f"{judge_url}/v1", "--judge-model", "judge-double",
            "--judge-key-env", "DEMO_JUDGE_KEY",
            env={"DEMO_JUDGE_KEY": "sk-demo-test"},
        )  # fmt: skip
    code, out = run.returncode, run.stdout
    assert code == 0, out + run.stderr
    assert "Pairwise LLM judge: on (judge-double" in out
    assert "Candidate trained in" in out
    # the offline gate ran on the same held-out tickets and probes before any traffic
    assert "Offline gate (tunegate eval, before any traffic):" in out
    offline = json.loads((workdir / "offline" / "report" / "report.json").read_text())
    assert {c["set"] for c in offline["comparisons"]} <= {"tickets", "probes"}
    assert len(offline["items"]) == 8

    pairs, verdicts, decisions = _recorded(workdir, "support-triage")
    assert len(pairs) == 8 and Counter(p.category for p in pairs) == {"tickets": 4, "probe": 4}
    assert all(p.control and p.candidate for p in pairs)
    assert {(p.control.status, p.candidate.status) for p in pairs if p.control and p.candidate} == {
        (200, 200)
    }
    assert len(decisions) == 1
    by_scorer = Counter(v.scorer for v in verdicts)
    assert by_scorer["json_fields"] == 4 and by_scorer["contains"] == 4
    assert by_scorer["pairwise"] == 8  # the LLM judge saw every pair (or shortcut identical ones)
    judged = sum(v.scorer == "pairwise" and v.reason != "identical" for v in verdicts)
    assert len(judge.calls) == 2 * judged  # both orders of each judged pair

    printed = {(m[0], m[1]): m for m in LINE.findall(out)}
    assert set(printed) == {
        ("probe", "contains"),
        ("tickets", "json_fields"),
        ("probe", "pairwise"),
        ("tickets", "pairwise"),
    }
    for key, counter in _counts(verdicts).items():
        _, _, n, wins, losses, ties, _, _ = printed[key]
        assert (int(n), int(wins), int(losses), int(ties)) == (
            sum(counter.values()),
            counter["candidate"],
            counter["control"],
            counter["tie"],
        )
    # the probes' references are answers the base model really gives, greedily
    assert float(printed[("probe", "contains")][6]) == 1.0
    # the base model cannot know the invented products' routing: its triage is mostly wrong
    assert float(printed[("tickets", "json_fields")][6]) < 0.5

    decision = decisions[0]
    if offline["outcome"] != "pass":  # the policy requires an offline pass before the A/B
        assert decision.action.value != "start_ab"
    assert f"Verdict: {decision.action.value} (stage shadow -> {decision.stage_after.value})" in out
    assert f"HTML report: {(workdir / 'reports' / 'support-triage.html').resolve()}" in out
    assert (workdir / "reports" / "support-triage.html").stat().st_size > 1000

    # a second run, without a judge endpoint, reuses the cached adapter and says both
    captured = _demo(
        "--quick", "--items", "1", "--probes", "1", "--json", "--no-offline",
        "--workdir", str(workdir), "--cache-dir", str(cache),
    )  # fmt: skip
    assert captured.returncode == 0, captured.stderr
    result = json.loads(captured.stdout)
    assert "Pairwise LLM judge: off" in captured.stderr
    assert result["adapter_reused"] is True and result["sent"] == 2
    assert result["llm_judge"] is None
    assert result["offline"] is None  # --no-offline
    assert {c["category"] for c in result["categories"]} == {"tickets", "probe"}


def test_quick_embeddings_demo_reports_the_retrieval_verdicts(tmp_path):
    workdir = tmp_path / "work"
    run = _demo(
        "--embeddings", "--quick", "--items", "6", "--json",
        "--workdir", str(workdir), "--cache-dir", str(tmp_path / "cache"),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    pairs, verdicts, decisions = _recorded(workdir, "kb-search")
    assert len(pairs) == 6 and all(p.labels == {"task": "retrieval"} for p in pairs)
    assert all(v.scorer == "retrieval" for v in verdicts) and len(verdicts) == 6
    # real vectors reached the judge: every pair was scored, none shortcut as identical
    assert all(v.reason == "scored" and v.arm_scores for v in verdicts)
    counts = _counts(verdicts)
    for figures in result["categories"]:
        counter = counts[(figures["category"], "retrieval")]
        assert (figures["wins"], figures["losses"], figures["ties"]) == (
            counter["candidate"],
            counter["control"],
            counter["tie"],
        )
        assert 0 < figures["control_score"] <= 1 and 0 < figures["candidate_score"] <= 1
    assert result["action"] == decisions[0].action.value
    assert result["adapter_reused"] is False
    # the offline gate ran on the same held-out queries first, as an embedding retrieval set
    offline = json.loads((workdir / "offline" / "report" / "report.json").read_text())
    assert result["offline"]["outcome"] == offline["outcome"]
    metrics = {c["metric"] for c in offline["comparisons"] if c["category"] == "all"}
    assert {"ndcg@10", "mrr@10", "recall@1"} <= metrics
    assert offline["embeddings"]["control"]["uniformity"] <= 0
    if offline["outcome"] != "pass":
        assert result["action"] != "start_ab"
