"""The pairwise LLM judge gates only after calibration; both orders, permutation test."""

from __future__ import annotations

import json
from pathlib import Path

from bench.servers.judge_double import JudgeDouble, prefer_longer
from cli import main
from cli.server import serve_in_thread
from tests.offline.pipeline_fixtures import oracle, write_jsonl, write_spec

__all__ = ["oracle"]

GOOD = {"judge_model": "judge-x", "accuracy": 0.9, "kappa": 0.8, "swap_consistency": 0.95}


def _setup(tmp_path, url, calibration) -> tuple[Path, int]:
    n = 24
    rows = [{"id": f"o{i}", "prompt": f"explain {i}", "category": "open"} for i in range(n)]
    write_jsonl(tmp_path / "open.jsonl", rows)
    spec: dict[str, object] = {
        "name": "open",
        "upstreams": {"double": {"base_url": url}},
        "control": {"upstream": "double", "model": "base", "system_prompt": "Explain."},
        "candidate": {"upstream": "double", "model": "tuned"},
        "tests": [{"path": "open.jsonl", "metrics": ["pairwise"]}],
        "cache_dir": str(tmp_path / "cache"),
        "out_dir": str(tmp_path / "out"),
    }
    if calibration is not None:
        (tmp_path / "calibration.json").write_text(json.dumps(calibration))
        spec["judge"] = {"calibration": "calibration.json"}
    return write_spec(tmp_path / "eval.yaml", spec), n


def _config(tmp_path: Path, judge_url: str) -> Path:
    config = tmp_path / "tunegate.yaml"
    config.write_text(
        json.dumps({"judge": {"endpoint": {"model": "judge-x", "base_url": f"{judge_url}/v1"}}})
    )
    return config


def test_calibrated_judge_gates_with_both_orders(tmp_path, oracle, capsys):
    server, url = oracle
    judge = JudgeDouble(policy=prefer_longer)
    spec, n = _setup(tmp_path, url, GOOD)
    for i in range(n):
        server.answers[("base", f"explain {i}")] = "short"
        server.answers[("tuned", f"explain {i}")] = "a much longer and more helpful explanation"
    with serve_in_thread(judge.app) as judge_url:
        code = main(["eval", "--spec", str(spec), "--config", str(_config(tmp_path, judge_url)),
                     "--json", "--no-html"])  # fmt: skip
    document = json.loads(capsys.readouterr().out)
    assert code == 0 and document["outcome"] == "pass"
    overall = next(c for c in document["comparisons"] if c["category"] == "all")
    assert overall["metric"] == "pairwise" and overall["test"] == "permutation"
    # "A>B" (not ">>") in both orders: candidate score .75, a preference of +0.5 per item
    assert overall["candidate"] == 0.5 and overall["control"] == 0.0
    assert len(judge.calls) == 2 * n  # both orders of every item
    with serve_in_thread(judge.app) as judge_url:  # a re-run asks neither the arms nor the judge
        again = main(["eval", "--spec", str(spec), "--config", str(_config(tmp_path, judge_url)),
                      "--no-html"])  # fmt: skip
    assert again == 0 and len(judge.calls) == 2 * n


def test_uncalibrated_or_failing_judge_may_not_gate(tmp_path, oracle, capsys):
    _, url = oracle
    judge = JudgeDouble(policy=prefer_longer)
    with serve_in_thread(judge.app) as judge_url:
        config = str(_config(tmp_path, judge_url))
        spec, _ = _setup(tmp_path, url, None)
        assert main(["eval", "--spec", str(spec), "--config", config]) == 2
        assert "tunegate judge calibrate" in capsys.readouterr().err
        spec, _ = _setup(tmp_path, url, {**GOOD, "kappa": 0.1})
        assert main(["eval", "--spec", str(spec), "--config", config]) == 2
        assert "kappa 0.1 is below 0.4" in capsys.readouterr().err
        spec, _ = _setup(tmp_path, url, {**GOOD, "judge_model": "other"})
        assert main(["eval", "--spec", str(spec), "--config", config]) == 2
        assert "not the configured judge 'judge-x'" in capsys.readouterr().err
    assert judge.calls == []
    spec, _ = _setup(tmp_path, url, GOOD)
    assert main(["eval", "--spec", str(spec)]) == 2  # no judge.endpoint at all
    assert "judge.endpoint" in capsys.readouterr().err
