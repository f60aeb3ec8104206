"""Task metrics against hand-computed cases and against the reference libraries."""

from __future__ import annotations

import numpy as np
import pytest
import sacrebleu
from hypothesis import given, settings
from hypothesis import strategies as st
from rouge_score import rouge_scorer
from sklearn.metrics import f1_score

from analysis.offline.items import EvalItem
from analysis.offline.metrics import (
    bleu_statistic,
    chrf_statistic,
    exact_match,
    macro_f1,
    macro_f1_statistic,
    normalize_label,
    rouge_l,
    rubric_score,
    sentence_bleu,
    sentence_chrf,
)
from cli.eval.scoring import METRICS

LABELS = st.sampled_from(["billing", "login", "network", "other"])


def test_exact_match_and_labels_by_hand():
    assert exact_match(" Paris\n", "Paris") == 1.0
    assert exact_match("paris", "Paris") == 0.0
    assert normalize_label("Billing.\nBecause the card failed") == "billing"
    assert normalize_label("**login**") == "login"
    assert normalize_label("") == ""


def test_macro_f1_by_hand():
    # billing: tp 1 fp 1 fn 1 -> f1 .5 ; login: tp 1 fp 1 fn 1 -> .5 ; other: tp 1 -> 1
    refs = ["billing", "billing", "login", "login", "other"]
    preds = ["billing", "login", "billing", "login", "other"]
    assert macro_f1(preds, refs) == pytest.approx((0.5 + 0.5 + 1.0) / 3)
    # a prediction outside the reference classes counts as wrong (a false negative only)
    assert macro_f1(["zzz", "login"], ["billing", "login"]) == pytest.approx(0.5)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(LABELS, LABELS), min_size=1, max_size=40), st.integers(0, 2**16))
def test_macro_f1_statistic_matches_sklearn_on_resamples(pairs, seed):
    preds, refs = [p for p, _ in pairs], [r for _, r in pairs]
    stat = macro_f1_statistic(preds, refs)
    labels = sorted(set(refs))
    expected = f1_score(refs, preds, labels=labels, average="macro", zero_division=0)
    assert stat.score() == pytest.approx(expected)
    rows = np.random.default_rng(seed).integers(0, len(refs), size=len(refs))
    sub_refs, sub_preds = [refs[i] for i in rows], [preds[i] for i in rows]
    present = sorted(set(sub_refs))  # classes absent from the resample drop out of the mean
    resampled = f1_score(sub_refs, sub_preds, labels=present, average="macro", zero_division=0)
    assert stat.score(rows) == pytest.approx(resampled)


def test_rouge_l_against_rouge_score_and_by_hand():
    # LCS of "the cat sat on the mat" / "the cat is on the mat" = 5 words -> P = R = 5/6
    assert rouge_l("the cat sat on the mat", "the cat is on the mat") == pytest.approx(5 / 6)
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    for a, b in [("a b c d", "a c d e"), ("summary of the news", "the news in summary")]:
        assert rouge_l(a, b) == pytest.approx(scorer.score(b, a)["rougeL"].fmeasure)
    assert rouge_l("", "reference") == 0.0


def test_bleu_and_chrf_against_sacrebleu():
    hyps = ["the cat sat on the mat", "a quick brown fox", "hello there general kenobi"]
    refs = ["the cat sat on a mat", "the quick brown fox jumps", "hello there"]
    corpus = sacrebleu.corpus_bleu(hyps, [refs]).score / 100
    assert bleu_statistic(hyps, refs).score() == pytest.approx(corpus)
    assert chrf_statistic(hyps, refs).score() == pytest.approx(
        sacrebleu.corpus_chrf(hyps, [refs]).score / 100
    )
    rows = np.array([0, 0, 2])
    resampled = [hyps[i] for i in rows], [refs[i] for i in rows]
    assert bleu_statistic(hyps, refs).score(rows) == pytest.approx(
        sacrebleu.corpus_bleu(resampled[0], [resampled[1]]).score / 100
    )
    assert sentence_bleu(hyps[0], refs[0]) == pytest.approx(
        sacrebleu.sentence_bleu(hyps[0], [refs[0]]).score / 100
    )
    assert sentence_chrf(hyps[1], refs[1]) == pytest.approx(
        sacrebleu.sentence_chrf(hyps[1], [refs[1]]).score / 100
    )


def test_rubric_checks_by_hand():
    text = "- one\n- two\n- three"
    checks: list[dict[str, object]] = [
        {"type": "bullets", "value": 3},
        {"type": "max_words", "value": 6},
        {"type": "contains", "value": "TWO"},
        {"type": "not_contains", "value": "four"},
        {"type": "regex", "value": r"^- t"},
        {"type": "starts_with", "value": "- one"},
        {"type": "lowercase"},
        {"type": "json_valid"},  # fails
    ]
    assert rubric_score(text, checks) == pytest.approx(7 / 8)
    assert rubric_score('```json\n{"a": 1}\n```', [{"type": "json_valid"}]) == 1.0
    assert rubric_score("x", []) == 1.0
    with pytest.raises(ValueError, match="'shout'"):
        rubric_score("x", [{"type": "shout"}])


def _item(reference: str) -> EvalItem:
    return EvalItem(prompt="p", reference=reference)


def test_structured_extraction_scores_malformed_json_zero():
    reference = '{"product": "Quillbase", "severity": "high", "team": "billing"}'
    item = _item(reference)
    field_accuracy = METRICS["field_accuracy"][1]
    json_exact = METRICS["json_exact"][1]
    assert field_accuracy(
        '{"product": "quillbase", "severity": "low", "team": "billing"}', item
    ) == pytest.approx(2 / 3)
    assert field_accuracy('Here: ```json\n{"product": "Quillbase"}\n```', item) == pytest.approx(
        1 / 3
    )
    assert field_accuracy('{"product": "Quillbase", "severity": ', item) == 0.0  # malformed
    assert field_accuracy("no json at all", item) == 0.0
    assert json_exact(reference, item) == 1.0
    assert json_exact('{"product": "Quillbase", "severity": "high"}', item) == 0.0
    assert (
        json_exact('{"product": "Quillbase", "severity": "high", "team": "billing", "x": 1}', item)
        == 0.0
    )
    # the live path's json_fields scorer, as the judge scores it
    assert METRICS["json_fields"][1]("not json", item) == 0.0
    assert METRICS["json_fields"][1](reference, item) == pytest.approx(1.0)


def test_judge_scorers_are_reused_per_arm():
    item = _item("4")
    assert METRICS["contains"][1]("2 + 2 = 4", item) == 1.0
    assert METRICS["contains"][1]("14", item) == 0.0
    assert METRICS["probe"][1]("The answer is 4.", item) == 1.0
    rubric = EvalItem(prompt="p", checks=[{"type": "max_words", "value": 2}])
    assert METRICS["probe"][1]("too many words here", rubric) == 0.0
