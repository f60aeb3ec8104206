"""Programmatic scorers, routing and the family check."""

from __future__ import annotations

import hashlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rouge_score import rouge_scorer

from judge.family import check_family, model_family
from judge.routing import resolve_scorers, shortcut
from judge.scorers import build_registry
from judge.scorers.base import ScoreContext
from judge.scorers.json_fields import response_object
from judge.scorers.retrieval import reciprocal_rank
from judge.scorers.rouge import lcs_length, rouge_l
from tests.judge.helpers import arm, make_pair, retrieval_pair
from tunegate.errors import ConfigError
from tunegate.records import Arm, Pair, Winner


def hashing_embedder(texts: list[str]) -> list[list[float]]:
    """Deterministic bag-of-words vectors: each word adds 1 to a hashed dimension."""
    vectors = []
    for text in texts:
        vec = [0.0] * 32
        for word in text.lower().split():
            vec[int(hashlib.md5(word.encode()).hexdigest(), 16) % 32] += 1
        vectors.append(vec)
    return vectors


def test_rouge_l_by_hand():
    assert lcs_length(["a", "b", "c", "d"], ["a", "c", "d", "e"]) == 3
    # LCS 3, precision 3/4, recall 3/4 -> F1 .75
    assert rouge_l("a b c d", "a c d e") == pytest.approx(0.75)
    # as rouge_score: no tokens on either side scores 0; punctuation and case are not tokens
    assert rouge_l("", "") == 0.0 and rouge_l("x", "") == 0.0 and rouge_l("x y", "z") == 0.0
    assert rouge_l("The CAT, sat!", "the cat sat") == 1.0


_REFERENCE_ROUGE = rouge_scorer.RougeScorer(["rougeL"])
_WORDS = st.sampled_from(["the", "cat", "sat", "on", "mat", "Mat", "café", "x_1", "3.5", "a"])
_TEXT = st.lists(st.one_of(_WORDS, st.text(max_size=6)), max_size=40).map(
    lambda words: " ".join(words)
)


@settings(max_examples=300, deadline=None)
@given(_TEXT, _TEXT)
def test_rouge_l_equals_the_rouge_score_package(candidate: str, reference: str) -> None:
    expected = _REFERENCE_ROUGE.score(reference, candidate)["rougeL"].fmeasure
    assert rouge_l(candidate, reference) == pytest.approx(expected, abs=1e-12)


def test_rouge_l_equals_the_reference_on_long_answers() -> None:
    rng = random.Random(7)
    words = [f"w{i}" for i in range(60)]
    for n, m in ((1500, 150), (150, 1500)):
        candidate = " ".join(rng.choice(words) for _ in range(n))
        reference = " ".join(rng.choice(words) for _ in range(m))
        expected = _REFERENCE_ROUGE.score(reference, candidate)["rougeL"].fmeasure
        assert rouge_l(candidate, reference) == pytest.approx(expected, abs=1e-12)


def test_json_answer_extraction():
    assert response_object('Here:\n```json\n{"a": 1}\n```') == {"a": 1}
    assert response_object('result {"a": {"b": 2}} ok') == {"a": {"b": 2}}
    assert response_object("[1, 2]") is None and response_object("nope") is None


def test_retrieval_reciprocal_rank():
    query = [1.0, 0.0]
    docs = [[0.0, 1.0], [1.0, 0.1], [0.7, 0.7]]
    assert reciprocal_rank([query, *docs], 1) == 1.0
    assert reciprocal_rank([query, *docs], 2) == 0.5
    assert reciprocal_rank([query, *docs], 0) == pytest.approx(1 / 3)


async def test_retrieval_pair_routes_to_retrieval_and_better_rank_wins():
    good = [[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]  # relevant doc 1 ranks first
    bad = [[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]  # relevant doc 1 ranks second
    ctx = ScoreContext.of(retrieval_pair(good, bad, relevant=1))
    registry = build_registry()
    [scorer] = resolve_scorers(["auto"], ctx, registry)
    assert scorer.name == "retrieval"
    scored = await scorer.score(ctx)
    assert scored.winner is Winner.CANDIDATE and scored.arm_scores == {
        Arm.CANDIDATE: 1.0, Arm.CONTROL: 0.5
    }  # fmt: skip
    tie = await scorer.score(ScoreContext.of(retrieval_pair(good, good, relevant=1)))
    assert tie.winner is Winner.TIE and tie.score == 0.5


async def test_embedding_cosine_with_a_pluggable_embedder():
    registry = build_registry(embed=hashing_embedder, embed_model="hash32")
    ctx = ScoreContext.of(make_pair("the red fox jumps", "blue whales sing", reference="red fox"))
    scorer = registry["embedding_cosine"]
    scored = await scorer.score(ctx)
    assert scored.winner is Winner.CANDIDATE
    assert scored.arm_scores is not None and scored.arm_scores[Arm.CONTROL] < 0.5
    assert scorer.judge_version(ctx) == "embedding_cosine/1:hash32"
    assert "embedding_cosine" not in build_registry()


async def test_regex_and_exact():
    registry = build_registry()
    ctx = ScoreContext.of(make_pair("Answer: 42", "Answer: 41", reference=r"\b42\b"))
    assert (await registry["regex"].score(ctx)).winner is Winner.CANDIDATE
    ctx = ScoreContext.of(make_pair(" 42 ", "42.", reference="42"))
    assert (await registry["exact"].score(ctx)).winner is Winner.CANDIDATE
    assert not registry["regex"].applies(ScoreContext.of(make_pair("a", "b", reference="(")))


def test_shortcuts():
    assert shortcut(ScoreContext.of(make_pair("same", "same"))).reason == "identical"  # type: ignore[union-attr]
    malformed = make_pair(arm("not json"), "ok")  # a 200 whose body does not parse
    assert shortcut(ScoreContext.of(malformed)).reason == "candidate_error"  # type: ignore[union-attr]
    both = make_pair(arm(status=None, error="timeout"), arm(status=502))
    assert shortcut(ScoreContext.of(both)).winner is Winner.TIE  # type: ignore[union-attr]
    assert shortcut(ScoreContext.of(make_pair("a", "b"))) is None


def test_auto_routing_with_reference_kinds():
    registry = build_registry()

    def names(pair: Pair) -> list[str]:
        return [s.name for s in resolve_scorers(["auto"], ScoreContext.of(pair), registry)]

    assert names(make_pair("a", "b", reference='{"k": 1}')) == ["json_fields"]
    assert names(make_pair("a", "b", reference="Paris")) == ["normalized"]
    assert names(make_pair("a", "b")) == []


def test_family_check():
    assert model_family("meta-llama/Llama-3.1-8B") == "llama"
    assert model_family("Qwen2.5-7B-Instruct") == "qwen" and model_family("my-model") is None
    warnings = check_family("llama-3-70b-judge", {"e": "llama-3-8b-ft"}, strict=False)
    assert len(warnings) == 1 and "self-preference" in warnings[0]
    assert check_family("gpt-4o", {"e": "llama-ft"}, strict=True) == []
    with pytest.raises(ConfigError, match="strict_family_check"):
        check_family("qwen-judge", {"e": "qwen2-ft"}, strict=True)


@pytest.mark.parametrize(
    ("text", "reference", "expected"),
    [
        ("2 + 2 = 4", "4", 1.0),
        ("The capital of France is Paris.", "paris", 1.0),
        ("It is 14.", "4", 0.0),
        ("New York City", "new york", 1.0),
        ("York, new", "new york", 0.0),
        ("", "4", 0.0),
        ("The capital of Colombia is Bogotá.", "Bogota", 1.0),  # accents folded
        ("Zürich", "Zurich", 1.0),
        ("Zurich", "Zürich", 1.0),
        ("Bogotá", "Bogotano", 0.0),
    ],
)
def test_contains_matches_whole_words_only(text: str, reference: str, expected: float) -> None:
    from judge.scorers.contains import ContainsScorer

    assert ContainsScorer().score_text(text, reference) == expected
