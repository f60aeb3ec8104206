"""`tunegate eval` for embedding models: two real tiny encoders in-process."""

from __future__ import annotations

import json

import numpy as np

from bench.models.tiny import SENTENCES
from cli import main
from tests.offline.pipeline_fixtures import tiny_encoders, write_csv, write_jsonl, write_spec

__all__ = ["tiny_encoders"]


def _local(path) -> dict[str, object]:
    return {"local": {"kind": "embeddings", "path": str(path), "device": "cpu"}}


def _data(tmp_path, prefix: str, n_queries: int, write=write_jsonl, suffix: str = "jsonl"):
    words = " ".join(SENTENCES).split()
    docs = [{"id": f"d{i}", "text": " ".join(words[i : i + 6])} for i in range(20)]
    queries = [
        {"id": f"q{i}", "text": " ".join(words[i + 1 : i + 4]), "category": "a" if i % 2 else "b"}
        for i in range(n_queries)
    ]
    qrels = [{"query_id": f"q{i}", "doc_id": f"d{i}"} for i in range(n_queries)]
    return {
        "queries": str(write(tmp_path / f"{prefix}q.{suffix}", queries)),
        "corpus": str(write(tmp_path / f"{prefix}c.{suffix}", docs)),
        "qrels": str(write(tmp_path / f"{prefix}r.{suffix}", qrels)),
    }


def test_retrieval_sts_named_pairs_space_and_projection(tmp_path, tiny_encoders, capsys):
    mean_pooled, cls_pooled = tiny_encoders
    sts = [
        {"sentence1": SENTENCES[i % 5], "sentence2": SENTENCES[(i * 2) % 5], "score": float(i % 5)}
        for i in range(12)
    ]
    named = [
        {"left": "heart attack", "right": "myocardial infarction", "direction": "closer"},
        {"left": "Python programming", "right": "snake species", "direction": "apart"},
    ]
    spec = write_spec(
        tmp_path / "eval.yaml",
        {
            "name": "encoder",
            "endpoint": "embeddings",
            "upstreams": {"base": _local(mean_pooled), "tuned": _local(cls_pooled)},
            "control": {"upstream": "base"},
            "candidate": {"upstream": "tuned"},
            "embeddings": [
                {"name": "retrieval", "kind": "retrieval", **_data(tmp_path, "in", 12)},
                {
                    "name": "held-out",
                    "kind": "retrieval",
                    "split": "held_out_topic",
                    **_data(tmp_path, "out", 10, write_csv, "csv"),  # CSV reads like JSONL
                },
                {
                    "name": "sts",
                    "kind": "sts",
                    "path": str(write_csv(tmp_path / "sts.csv", sts)),
                },
                {
                    "name": "named",
                    "kind": "named_pairs",
                    "path": str(write_jsonl(tmp_path / "named.jsonl", named)),
                },
            ],
            "cache_dir": str(tmp_path / "cache"),
            "out_dir": str(tmp_path / "out"),
            "bootstrap_resamples": 300,
        },
    )
    code = main(["eval", "--spec", str(spec), "--json"])
    document = json.loads(capsys.readouterr().out)
    assert code == document["exit_code"]
    found = {(c["set"], c["metric"], c["category"]) for c in document["comparisons"]}
    for metric in ("recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10"):
        assert ("retrieval", metric, "all") in found
        assert ("held-out", metric, "all") in found
    assert ("retrieval", "ndcg@10", "a") in found
    assert ("sts", "sts_spearman", "all") in found
    held = [c for c in document["comparisons"] if c["set"] == "held-out"]
    assert all(c["role"] == "probe" and c["kind"] == "non_inferiority" for c in held)
    space = document["embeddings"]
    for arm in ("control", "candidate"):
        assert space[arm]["alignment"] >= 0
        assert space[arm]["uniformity"] <= 0
    coords = np.asarray(space["projection"]["control"])
    assert (
        coords.shape[1] == 2 and coords.shape == np.asarray(space["projection"]["candidate"]).shape
    )
    pairs = space["named_pairs"]["named"]["pairs"]
    assert [p["direction"] for p in pairs] == ["closer", "apart"]
    for pair in pairs:
        if not pair["ok"]:
            assert document["outcome"] == "fail"
            assert any(pair["left"] in r for r in document["regressions"])
    assert document["embeddings"]["domain_gap"][0]["metric"] == "ndcg@10"
    html = (tmp_path / "out" / "report.html").read_text()
    assert "Embedding space" in html
    # a re-run embeds nothing again
    assert main(["eval", "--spec", str(spec), "--no-html"]) == code
    assert json.loads((tmp_path / "out" / "run.json").read_text())["model_calls"] == 0
