"""A reduced `tunegate demo` on the real models: the printed verdict and figures match Redis.

The quick run uses the two shipped LoRA adapters (demo/adapters/), sends a few held-out tickets and
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
from demo.generative import round_items
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


def _prompt(pair: Pair) -> str:
    messages = pair.request_json()["messages"]
    assert isinstance(messages, list)
    return str(messages[0]["content"])


def _sections(out: str) -> dict[str, str]:
    """The printed story of each experiment, keyed by name (each starts with a rule line)."""
    parts = re.split(r"^─+ (\S+) ─+$", out, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def _check_printed(section: str, verdicts: list[Verdict], decisions: list[Decision]) -> None:
    """The figures and every decision printed for one experiment are what its Redis holds."""
    printed = {(m[0], m[1]): m for m in LINE.findall(section)}
    counts = _counts(verdicts)
    assert set(printed) == set(counts)
    for key, counter in counts.items():
        _, _, n, wins, losses, ties, _, _ = printed[key]
        assert (int(n), int(wins), int(losses), int(ties)) == (
            sum(counter.values()),
            counter["candidate"],
            counter["control"],
            counter["tie"],
        )
    shown = re.findall(r"^Verdict: (\w+) \(stage (\w+) -> (\w+)", section, re.MULTILINE)
    assert shown == [(d.action.value, d.stage_before.value, d.stage_after.value) for d in decisions]


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
    # off a terminal, progress is one line per stage with the elapsed time
    assert re.search(r"^\[\s*[\d.]+s\] candidates: load the base model.*: started", out, re.M)
    sections = _sections(out)
    assert list(sections) == ["support-triage", "support-triage-mixed"]
    total_calls = 0
    for experiment, section in sections.items():
        assert "Candidate: the shipped project-trained adapter (sha256 checked" in section
        # the offline gate ran on the same held-out tickets and probes before any traffic
        assert "Offline gate (tunegate eval, before any traffic):" in section
        report_json = workdir / "offline" / experiment / "report" / "report.json"
        offline = json.loads(report_json.read_text())
        assert {c["set"] for c in offline["comparisons"]} <= {"tickets", "probes"}
        # the shadow stage's items and every probe the A/B rounds may send
        later_probes = [i for r in round_items(4, 4, 2) for i in r if i.category == "probe"]
        assert len(offline["items"]) == 8 + len(later_probes)

        pairs, verdicts, decisions = _recorded(workdir, experiment)
        shadow = [p for p in pairs if p.user_key_hash is None]  # round 0: no users
        assert Counter(p.category for p in shadow) == {"tickets": 4, "probe": 4}
        assert all(p.control and p.candidate for p in pairs)
        assert {
            (p.control.status, p.candidate.status) for p in pairs if p.control and p.candidate
        } == {(200, 200)}
        by_scorer = Counter(v.scorer for v in verdicts)
        assert by_scorer["json_fields"] + by_scorer["contains"] == len(pairs)
        assert by_scorer["pairwise"] == len(pairs)  # the LLM judge saw every pair
        total_calls += 2 * sum(v.scorer == "pairwise" and v.reason != "identical" for v in verdicts)
        _check_printed(section, verdicts, decisions)
        assert decisions and all(d.applied or d.stage_after == d.stage_before for d in decisions)
        if offline["outcome"] != "pass":  # the policy requires an offline pass before the A/B
            assert all(d.action.value != "start_ab" for d in decisions)
        if any(d.stage_before.value == "ab" for d in decisions):  # A/B rounds: sticky users
            ab = [p for p in pairs if p.user_key_hash is not None]
            rounds = sum(d.stage_before.value == "ab" for d in decisions)
            fresh = round_items(4, 4, 2)[:rounds]
            # each round every one of the 8 users asks once: the fresh items, then repeats
            assert len(ab) == rounds * 8 and all(len(r) < 8 for r in fresh)
            for r in range(rounds):  # one request per user a round
                round_users = [p.user_key_hash for p in ab[8 * r : 8 * r + 8]]
                assert len(set(round_users)) == 8
            new = {i.prompt for r in fresh for i in r}
            shadow_prompts = {_prompt(p) for p in shadow}
            asked = {_prompt(p) for p in ab}
            # the fresh items are new evidence; every other request repeats an earlier question
            assert new and not new & shadow_prompts and asked <= new | shadow_prompts
            seen: dict[str, list[str]] = {}  # each user's served arms, in stream order
            for p in ab:
                seen.setdefault(p.user_key_hash or "", []).append(p.served_arm.value)
            # sticky: a ramp only moves users from control to candidate, never back
            for arms in seen.values():
                assert arms == sorted(arms, key=["control", "candidate"].index)
        printed = {(m[0], m[1]): m for m in LINE.findall(section)}
        # the quick demo's probes are the first ones, which the base model answers right
        assert float(printed[("probe", "contains")][6]) == 1.0
        # the base model cannot know the invented products' routing: its triage is mostly wrong
        assert float(printed[("tickets", "json_fields")][6]) < 0.5
        html = workdir / "reports" / f"{experiment}.html"
        assert f"HTML report: {html.resolve()}" in section
        assert html.stat().st_size > 1000
    assert len(judge.calls) == total_calls  # both orders of each judged pair

    # --train trains both adapters (one step here) over the base the first run kept, ...
    tiny = ("--quick", "--items", "1", "--probes", "1", "--json", "--no-offline")
    where = ("--workdir", str(workdir), "--cache-dir", str(cache))
    trained = _demo(*tiny, "--train", "--steps", "1", *where)
    assert trained.returncode == 0, trained.stderr
    assert re.search(r"train LoRA adapter 'mixed': 1/1 \(loss [\d.]+\)", trained.stderr)
    result = json.loads(trained.stdout)
    assert [c["adapter_source"] for c in result["candidates"]] == ["trained", "trained"]
    assert "prepare.load" in result["timings"] and "prepare.train" in result["timings"]
    # ... and a second such run, without a judge endpoint, reuses both from the cache
    captured = _demo(*tiny, "--train", "--steps", "1", *where)
    assert captured.returncode == 0, captured.stderr
    result = json.loads(captured.stdout)
    assert "Pairwise LLM judge: off" in captured.stderr
    assert result["adapter_reused"] is True and result["sent"] == 2
    assert [c["adapter_source"] for c in result["candidates"]] == ["cache", "cache"]
    assert "prepare.load" not in result["timings"]  # the kept base checkpoint: no training
    assert result["llm_judge"] is None
    assert result["offline"] is None  # --no-offline
    assert {c["category"] for c in result["categories"]} == {"tickets", "probe"}
    assert set(result["cpu_timings"]) >= {"prepare", "live", "total"}


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
    offline = json.loads((workdir / "offline" / "kb-search" / "report" / "report.json").read_text())
    assert result["offline"]["outcome"] == offline["outcome"]
    metrics = {c["metric"] for c in offline["comparisons"] if c["category"] == "all"}
    assert {"ndcg@10", "mrr@10", "recall@1"} <= metrics
    assert offline["embeddings"]["control"]["uniformity"] <= 0
    if offline["outcome"] != "pass":
        assert result["action"] != "start_ab"
