"""Embedding metrics vs hand cases, scikit-learn, torch (Wang & Isola), sentence-transformers."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from sklearn.metrics import ndcg_score

from analysis.offline.embeddings import (
    NamedPair,
    RetrievalScores,
    alignment,
    domain_gap,
    named_pair_moves,
    normalize_rows,
    projection,
    retrieval_scores,
    spearman,
    sts_comparison,
    uniformity,
)
from analysis.offline.paired import bootstrap, verdict
from tests.offline import minilm


def _unit(angle_degrees: float) -> list[float]:
    a = math.radians(angle_degrees)
    return [math.cos(a), math.sin(a)]


DOCS = ["d0", "d1", "d2", "d3"]
CORPUS = [_unit(0), _unit(30), _unit(90), _unit(180)]


def test_retrieval_hand_case():
    # q0 at 10 degrees ranks d0, d1, d2, d3; q1 at 100 degrees ranks d2, d1, d3, d0
    queries = [_unit(10), _unit(100)]
    qrels = {"q0": {"d1": 1, "d3": 1}, "q1": {"d2": 2, "d0": 1}}
    s = retrieval_scores(["q0", "q1"], queries, DOCS, CORPUS, qrels, ks=(1, 2, 3))
    assert s.recall[1].tolist() == [0, 0.5] and s.recall[2].tolist() == [0.5, 0.5]
    assert s.recall[3].tolist() == [0.5, 0.5]
    assert s.mrr.tolist() == [0.5, 1.0]
    ndcg_q0 = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    assert s.ndcg[0] == pytest.approx(ndcg_q0)
    # scikit-learn's ndcg_score (linear gain) on the same scores, graded relevance included
    for row, qid in enumerate(["q0", "q1"]):
        truth = [[qrels[qid].get(d, 0) for d in DOCS]]
        scores = [np.asarray(CORPUS) @ np.asarray(queries[row])]
        assert s.ndcg[row] == pytest.approx(ndcg_score(truth, scores, k=10))
    assert s.means()["mrr@10"] == 0.75
    with pytest.raises(ValueError, match="no relevant"):
        retrieval_scores(["q"], [_unit(0)], DOCS, CORPUS, {"q": {"d0": 0}})


def test_alignment_and_uniformity_match_wang_and_isola_reference():
    rng = np.random.default_rng(0)
    x = normalize_rows(rng.normal(size=(50, 8)))
    y = normalize_rows(x + rng.normal(scale=0.3, size=(50, 8)))
    tx, ty = torch.tensor(x), torch.tensor(y)
    ref_align = (tx - ty).norm(p=2, dim=1).pow(2).mean().item()  # align_loss, alpha=2
    ref_uniform = torch.pdist(tx, p=2).pow(2).mul(-2).exp().mean().log().item()  # uniform_loss
    assert alignment(x, y) == pytest.approx(ref_align, rel=1e-9)
    assert uniformity(x) == pytest.approx(ref_uniform, rel=1e-6)
    collapsed = np.tile(x[:1], (10, 1))
    assert uniformity(collapsed) == pytest.approx(0.0, abs=1e-9)  # no spread at all
    assert uniformity(x) < -1 and alignment(x, x) == 0.0


def test_spearman_and_paired_sts_comparison():
    rng = np.random.default_rng(1)
    gold = rng.uniform(0, 5, 120)
    good = gold + rng.normal(scale=0.5, size=120)
    bad = gold + rng.normal(scale=4.0, size=120)
    c = sts_comparison(gold, bad, good, seed=3)
    assert c.diff > 0.2 and c.ci_low > 0 and c.p < 0.01 and verdict(c) == "pass"
    same = sts_comparison(gold, good, good)
    assert same.diff == 0 and same.p == 1 and same.p_regression == 1
    # spearman of cosine similarities: identical sides give cosine 1 for every pair
    sims_left, sims_right = _unit_pairs(gold)
    assert spearman(sims_left, sims_right, gold) == pytest.approx(1.0)


def _unit_pairs(gold: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # pairs whose angle falls as the gold score rises: cosine is monotone in gold
    angles = 90 * (1 - np.asarray(gold) / 5)
    left = np.array([_unit(0)] * len(gold))
    right = np.array([_unit(a) for a in angles])
    return left, right


def test_named_pairs_domain_gap_and_projection():
    pairs = [NamedPair("a", "b", "closer"), NamedPair("c", "d", "apart")]
    base = (np.array([_unit(0), _unit(0)]), np.array([_unit(60), _unit(20)]))
    tuned = (np.array([_unit(0), _unit(0)]), np.array([_unit(10), _unit(80)]))
    moves = named_pair_moves(pairs, base, tuned)
    assert [m.ok for m in moves] == [True, True]
    assert moves[0].before == pytest.approx(0.5) and moves[0].after == pytest.approx(_unit(10)[0])
    wrong = named_pair_moves(pairs, tuned, base)
    assert [m.ok for m in wrong] == [False, False]

    rng = np.random.default_rng(2)
    x = rng.random(200)
    gap = domain_gap(
        bootstrap(x, x + 0.1, metric="ndcg@10", category="in_domain"),
        bootstrap(x, x + rng.normal(0, 0.2, 200), metric="ndcg@10", category="held_out"),
    )
    assert gap.gap > 0.05 and gap.overfit()
    with pytest.raises(ValueError, match="same metric"):
        domain_gap(gap.in_domain, bootstrap(x, x, metric="mrr@10"))

    points = rng.normal(size=(30, 12))
    same = projection(points, points)
    assert same.base.shape == (30, 2) and same.mean_shift() == pytest.approx(0, abs=1e-9)
    moved = projection(points, points + rng.normal(scale=0.5, size=(30, 12)))
    assert moved.mean_shift() > 0.05 and sum(moved.explained_variance) <= 1
    with pytest.raises(ValueError, match="same points"):
        projection(points, points[:, :6])


RETRIEVAL_CORPUS: dict[str, Any] = {
    "c0": "To reset your password, open Settings and choose Security.",
    "c1": "Refunds are paid back to the original card within five days.",
    "c2": "The invoice lists every charge of the billing month.",
    "c3": "Our office is closed on public holidays.",
    "c4": "Two-factor authentication adds a code sent to your phone.",
    "c5": "Shipping to Canada takes about a week.",
    "c6": "You can export your data as a CSV file from the dashboard.",
    "c7": "Cancel the subscription any time from the Plans page.",
}
RETRIEVAL_QUERIES: dict[str, Any] = {
    "q0": "I forgot my password",
    "q1": "when do I get my money back",
    "q2": "how long does delivery to Canada take",
    "q3": "download my data as a spreadsheet",
    "q4": "stop my subscription",
    "q5": "what is on my bill",
}
QRELS = {
    "q0": {"c0", "c4"},
    "q1": {"c1"},
    "q2": {"c5"},
    "q3": {"c6"},
    "q4": {"c7"},
    "q5": {"c2"},
}


@pytest.mark.slow
def test_retrieval_matches_sentence_transformers_evaluator_on_minilm():
    from sentence_transformers.sentence_transformer.evaluation import (
        InformationRetrievalEvaluator,
    )

    evaluator = InformationRetrievalEvaluator(
        RETRIEVAL_QUERIES,
        RETRIEVAL_CORPUS,
        QRELS,
        mrr_at_k=[10],
        ndcg_at_k=[10],
        accuracy_at_k=[1],
        precision_recall_at_k=[1, 3],
        map_at_k=[10],
        show_progress_bar=False,
        write_csv=False,
        score_functions={"cosine": lambda a, b: a @ b.T},
        main_score_function="cosine",
    )
    reference = evaluator(minilm.model())
    qids, dids = list(RETRIEVAL_QUERIES), list(RETRIEVAL_CORPUS)
    ours = retrieval_scores(
        qids,
        minilm.embed([RETRIEVAL_QUERIES[q] for q in qids]),
        dids,
        minilm.embed([RETRIEVAL_CORPUS[d] for d in dids]),
        {q: dict.fromkeys(QRELS[q], 1) for q in qids},
        ks=(1, 3),
    ).means()
    assert ours["mrr@10"] == pytest.approx(reference["cosine_mrr@10"], abs=1e-6)
    assert ours["ndcg@10"] == pytest.approx(reference["cosine_ndcg@10"], abs=1e-6)
    assert ours["recall@1"] == pytest.approx(reference["cosine_recall@1"], abs=1e-6)
    assert ours["recall@3"] == pytest.approx(reference["cosine_recall@3"], abs=1e-6)
    assert ours["mrr@10"] > 0.8  # MiniLM retrieves these support answers


@pytest.mark.slow
def test_minilm_beats_a_random_encoder_and_moves_named_pairs(tmp_path):
    from sentence_transformers import SentenceTransformer

    from bench.models.tiny import build_encoder

    directory = build_encoder(tmp_path / "enc")
    pooling = directory / "1_Pooling" / "config.json"  # sentence-transformers 6 wants the width
    pooling.write_text(json.dumps({**json.loads(pooling.read_text()), "embedding_dimension": 32}))
    random_encoder = SentenceTransformer(str(directory), device="cpu")
    pairs = [
        NamedPair("heart attack", "myocardial infarction", "closer"),
        NamedPair("Python programming", "snake species", "apart"),
    ]
    lefts, rights = [p.left for p in pairs], [p.right for p in pairs]
    tuned = (minilm.embed(lefts), minilm.embed(rights))
    base = (random_encoder.encode(lefts), random_encoder.encode(rights))
    moves = named_pair_moves(pairs, base, tuned)
    assert moves[0].after > 0.5 and moves[0].after > moves[1].after
    qids, dids = list(RETRIEVAL_QUERIES), list(RETRIEVAL_CORPUS)
    qrels = {q: dict.fromkeys(QRELS[q], 1) for q in qids}

    def scores(encode: Callable[[list[str]], Any]) -> RetrievalScores:
        return retrieval_scores(
            qids,
            encode([RETRIEVAL_QUERIES[q] for q in qids]),
            dids,
            encode([RETRIEVAL_CORPUS[d] for d in dids]),
            qrels,
        )

    base_scores = scores(lambda t: random_encoder.encode(t))
    tuned_scores = scores(minilm.embed)
    c = bootstrap(base_scores.mrr, tuned_scores.mrr, metric="mrr@10")
    assert c.diff > 0.3 and c.ci_low > 0
