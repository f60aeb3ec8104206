"""`tunegate eval` from flags alone (the common case), and what people read: terminal, Markdown."""

from __future__ import annotations

import json

from rich.console import Console

from analysis.offline.report import render_markdown, render_terminal
from cli import main
from tests.offline.pipeline_fixtures import oracle, write_jsonl

__all__ = ["oracle"]


def test_flags_without_a_spec(tmp_path, oracle, capsys):
    server, url = oracle
    n = 30
    rows = [{"id": f"q{i}", "prompt": f"label {i}", "reference": "billing"} for i in range(n)]
    write_jsonl(tmp_path / "test.jsonl", rows)
    for i in range(n):
        server.answers[("tuned", f"label {i}")] = "Billing."
        server.answers[("base", f"label {i}")] = "billing" if i < 5 else "login"
    config = tmp_path / "tunegate.yaml"
    config.write_text(
        json.dumps({"upstreams": {"base": {"base_url": url}, "tuned": {"base_url": url}}})
    )
    code = main(
        ["eval", "--config", str(config), "--control", "base", "--candidate", "tuned",
         "--system-prompt", "Answer with the team.", "--test", str(tmp_path / "test.jsonl"),
         "--metric", "accuracy", "--metric", "macro_f1", "--out", str(tmp_path / "out"),
         "--cache-dir", str(tmp_path / "cache"), "--seed", "7"]
    )  # fmt: skip
    assert code == 0
    document = json.loads((tmp_path / "out" / "report.json").read_text())
    assert document["seed"] == 7 and document["arms"]["control"]["system_prompt"]
    overall = {c["metric"]: c for c in document["comparisons"]}
    assert overall["accuracy"]["control"] == 5 / 30 and overall["accuracy"]["candidate"] == 1.0
    assert overall["macro_f1"]["test"] == "bootstrap" and overall["macro_f1"]["candidate"] == 1.0
    out = capsys.readouterr().out
    assert "outcome: PASS" in out and "task/accuracy" in out
    # the control saw its production prompt; the candidate did not
    assert server.calls == 2 * n


def test_terminal_and_markdown_name_regressions():
    document: dict[str, object] = {
        "name": "exp",
        "candidate_version": "v2",
        "outcome": "fail",
        "control_note": "strongest baseline",
        "reasons": ["Regressions:", "- probes/probe [facts]: worse"],
        "regressions": ["probes/probe [facts]: worse"],
        "items_needed": None,
        "comparisons": [
            {"set": "probes", "metric": "probe", "category": "facts", "n": 20, "control": 0.9,
             "candidate": 0.5, "diff": -0.44, "ci_low": -0.6, "ci_high": -0.3, "scale": "relative",
             "p": 0.9, "p_adjusted": 0.95, "verdict": "fail"},
        ],
    }  # fmt: skip
    markdown = render_markdown(document)
    assert "**fail**" in markdown and "- probes/probe [facts]: worse" in markdown
    assert "| probes/probe [facts] | 20 | 0.900 | 0.500 | -0.440 [-0.600, -0.300] rel |" in markdown
    console = Console(record=True, width=160)
    render_terminal(document, console)
    text = console.export_text()
    assert "outcome: FAIL" in text and "probes/probe [facts]" in text and "fail" in text
