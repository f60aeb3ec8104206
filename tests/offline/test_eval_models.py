"""`tunegate eval` on real tiny models in-process: a base with its prompt vs base + LoRA."""

from __future__ import annotations

import json

from cli import main
from tests.offline.pipeline_fixtures import tiny_pair, write_jsonl, write_spec

__all__ = ["tiny_pair"]


def _local(path, adapter=None) -> dict[str, object]:
    local = {"path": str(path), "device": "cpu", "batch_window_ms": 5.0, "max_batch_size": 8}
    if adapter is not None:
        local["adapter"] = str(adapter)
    return {"local": local, "timeout_seconds": 120}


def test_base_with_prompt_vs_lora_in_process(tmp_path, tiny_pair, capsys):
    base, lora = tiny_pair
    rows = [
        {"id": f"t{i}", "prompt": f"Support ticket {i}: the billing page shows error E{i}.",
         "reference": "billing", "category": "billing" if i % 2 else "login",
         "checks": [{"type": "max_words", "value": 40}]}
        for i in range(8)
    ]  # fmt: skip
    write_jsonl(tmp_path / "test.jsonl", rows)
    spec = write_spec(
        tmp_path / "eval.yaml",
        {
            "name": "tiny",
            "upstreams": {"base": _local(base), "tuned": _local(base, lora)},
            "control": {
                "upstream": "base",
                "system_prompt": "Route the ticket to a team.",
                "few_shot": [{"user": "Ticket: cannot log in", "assistant": "login"}],
            },
            "candidate": {"upstream": "tuned"},
            "decoding": {"max_tokens": 6},
            "tests": [{"path": "test.jsonl", "metrics": ["accuracy", "rouge_l", "rubric", "chrf"]}],
            "cache_dir": str(tmp_path / "cache"),
            "out_dir": str(tmp_path / "out"),
            "bootstrap_resamples": 300,
        },
    )
    code = main(["eval", "--spec", str(spec), "--json"])
    document = json.loads(capsys.readouterr().out)
    assert code == document["exit_code"] and code in (0, 1, 3)
    items = document["items"]
    assert len(items) == 8
    # both arms answered every item, and differently: the LoRA changes the random model
    assert all(i["errors"] == {} for i in items)
    assert any(i["control"] != i["candidate"] for i in items)
    metrics = {c["metric"] for c in document["comparisons"]}
    assert metrics == {"accuracy", "rouge_l", "rubric", "chrf"}
    chrf = next(
        c for c in document["comparisons"] if c["metric"] == "chrf" and c["category"] == "all"
    )
    assert chrf["test"] == "bootstrap" and 0 <= chrf["control"] <= 1
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["model_calls"] == 16
    html = (tmp_path / "out" / "report.html").read_text()
    assert "data:image/png;base64," in html and "<script" not in html and 'src="http' not in html
    assert "Wins" in html and "Losses" in html
