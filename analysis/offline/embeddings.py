"""Embedding metrics: retrieval, STS, alignment/uniformity, named pairs, a 2-D projection.

Retrieval metrics are per query (recall@k, MRR@10, nDCG@10 with linear gain, as scikit-learn's
``ndcg_score`` and sentence-transformers' ``InformationRetrievalEvaluator`` compute them), so the
two models compare by the paired bootstrap. STS is Spearman's rho between cosine similarity and
the gold scores (scipy), compared by a paired bootstrap of both models' rho on the same resampled
pairs. Alignment and uniformity follow Wang & Isola (2020) on L2-normalised embeddings:
alignment E||f(x) - f(y)||^2 over positive pairs (lower is better), uniformity
log E exp(-2 ||f(x) - f(y)||^2) over all distinct pairs (lower is more uniform). Named pairs must
move closer or apart. :func:`projection` places base and fine-tuned embeddings of the same points
in one 2-D PCA (scikit-learn) fit on their union, for the report to draw.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats
from sklearn.decomposition import PCA

from analysis.offline.paired import OVERALL, Comparison

__all__ = [
    "DomainGap",
    "NamedPair",
    "PairMove",
    "Projection",
    "RetrievalScores",
    "alignment",
    "domain_gap",
    "named_pair_moves",
    "normalize_rows",
    "projection",
    "retrieval_scores",
    "spearman",
    "sts_comparison",
    "uniformity",
]

FloatArray = NDArray[np.float64]


def normalize_rows(x: ArrayLike) -> FloatArray:
    """Rows scaled to unit L2 norm (a zero row stays zero)."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError("embeddings must be a 2-D array (items x dimensions)")
    norms = np.linalg.norm(a, axis=1, keepdims=True)
    out: FloatArray = np.divide(a, norms, out=np.zeros_like(a), where=norms > 0)
    return out


@dataclass(frozen=True, slots=True)
class RetrievalScores:
    """Per-query retrieval metrics, in the order of the query ids."""

    queries: list[str]
    recall: dict[int, FloatArray]  # k -> per-query recall@k
    mrr: FloatArray  # MRR@10
    ndcg: FloatArray  # nDCG@10

    def means(self) -> dict[str, float]:
        out = {f"recall@{k}": float(v.mean()) for k, v in self.recall.items()}
        return out | {"mrr@10": float(self.mrr.mean()), "ndcg@10": float(self.ndcg.mean())}


def retrieval_scores(
    query_ids: Sequence[str],
    queries: ArrayLike,
    doc_ids: Sequence[str],
    corpus: ArrayLike,
    qrels: Mapping[str, Mapping[str, float]],
    ks: Sequence[int] = (1, 5, 10),
) -> RetrievalScores:
    """Rank the corpus by cosine similarity for each query; qrels: query -> {doc: relevance > 0}.

    Queries without a relevant document are refused (their recall is undefined). Ties in the
    similarity keep the corpus order (a stable sort), as a reader of the ranking would see it.
    """
    q = normalize_rows(queries)
    c = normalize_rows(corpus)
    if len(query_ids) != q.shape[0] or len(doc_ids) != c.shape[0]:
        raise ValueError("ids and embeddings must have the same number of rows")
    position = {d: i for i, d in enumerate(doc_ids)}
    depth = min(max([*ks, 10]), len(doc_ids))
    recall = {k: np.zeros(len(query_ids)) for k in ks}
    mrr = np.zeros(len(query_ids))
    ndcg = np.zeros(len(query_ids))
    for row, qid in enumerate(query_ids):
        relevant = {position[d]: float(r) for d, r in qrels.get(qid, {}).items() if r > 0}
        if not relevant:
            raise ValueError(f"query {qid!r} has no relevant document in the qrels")
        scores = c @ q[row]
        ranking = np.argsort(-scores, kind="stable")[:depth]
        hits = [int(i) in relevant for i in ranking]
        for k in ks:
            recall[k][row] = sum(hits[:k]) / len(relevant)
        first = next((rank for rank, hit in enumerate(hits[:10], start=1) if hit), None)
        mrr[row] = 0.0 if first is None else 1 / first
        gains = [relevant.get(int(i), 0.0) for i in ranking[:10]]
        dcg = sum(g / math.log2(rank + 2) for rank, g in enumerate(gains))
        ideal = sorted(relevant.values(), reverse=True)[:10]
        ndcg[row] = dcg / sum(g / math.log2(rank + 2) for rank, g in enumerate(ideal))
    return RetrievalScores(list(query_ids), recall, mrr, ndcg)


def _cosines(a: ArrayLike, b: ArrayLike) -> FloatArray:
    x, y = normalize_rows(a), normalize_rows(b)
    if x.shape != y.shape:
        raise ValueError("pair embeddings must have the same shape")
    return np.asarray(np.sum(x * y, axis=1))


def spearman(left: ArrayLike, right: ArrayLike, gold: ArrayLike) -> float:
    """Spearman's rho between the pairs' cosine similarity and the gold scores (scipy)."""
    return float(stats.spearmanr(_cosines(left, right), np.asarray(gold)).statistic)


def _rank_corr(sims: FloatArray, gold: FloatArray) -> FloatArray:
    """Spearman's rho of each row (rank with average ties, then Pearson): shape (B,)."""
    a = stats.rankdata(sims, axis=1)
    b = stats.rankdata(gold, axis=1)
    a -= a.mean(axis=1, keepdims=True)
    b -= b.mean(axis=1, keepdims=True)
    denom = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    rho: FloatArray = np.divide(
        (a * b).sum(axis=1), denom, out=np.zeros(a.shape[0]), where=denom > 0
    )
    return rho


def sts_comparison(
    gold: ArrayLike,
    base_sims: ArrayLike,
    tuned_sims: ArrayLike,
    *,
    metric: str = "sts_spearman",
    category: str = OVERALL,
    alpha: float = 0.05,
    resamples: int = 2000,
    seed: int = 0,
) -> Comparison:
    """Paired bootstrap of rho(tuned) - rho(base): the same resampled pairs for both models.

    Spearman's rho is no mean of per-item values, so each resample is ranked afresh (vectorised
    over the resamples in chunks).
    """
    g = np.asarray(gold, dtype=np.float64)
    base = np.asarray(base_sims, dtype=np.float64)
    tuned = np.asarray(tuned_sims, dtype=np.float64)
    n = g.size
    if base.shape != g.shape or tuned.shape != g.shape or n < 3:
        raise ValueError("gold, base and tuned similarities: one per pair, at least 3 pairs")
    control = float(stats.spearmanr(base, g).statistic)
    candidate = float(stats.spearmanr(tuned, g).statistic)
    diff = candidate - control
    rng = np.random.default_rng(seed)
    chunk = max(1, 2_000_000 // n)
    star = []
    for start in range(0, resamples, chunk):
        idx = rng.integers(0, n, size=(min(chunk, resamples - start), n))
        star.append(_rank_corr(tuned[idx], g[idx]) - _rank_corr(base[idx], g[idx]))
    replicates = np.concatenate(star)
    low, high = np.quantile(replicates, [alpha, 1 - alpha])
    count = replicates.size
    return Comparison(
        metric=metric,
        category=category,
        n=n,
        control=control,
        candidate=candidate,
        diff=diff,
        ci_low=float(low),
        ci_high=float(high),
        p=(1 + int(np.sum(replicates <= 0))) / (count + 1),
        kind="superiority",
        margin=0.0,
        test="bootstrap",
        confidence=1 - 2 * alpha,
        se=float(np.std(replicates, ddof=1)),
        p_regression=(1 + int(np.sum(replicates >= 0))) / (count + 1),
    )


def alignment(left: ArrayLike, right: ArrayLike, power: float = 2.0) -> float:
    """Wang & Isola's alignment: mean ||f(x) - f(y)||^power over positive pairs (lower: closer)."""
    x, y = normalize_rows(left), normalize_rows(right)
    if x.shape != y.shape or x.shape[0] == 0:
        raise ValueError("alignment needs the same number of left and right embeddings, >= 1")
    return float(np.mean(np.linalg.norm(x - y, axis=1) ** power))


def uniformity(embeddings: ArrayLike, t: float = 2.0) -> float:
    """Wang & Isola's uniformity: log mean exp(-t ||f(x) - f(y)||^2) over distinct pairs."""
    x = normalize_rows(embeddings)
    n = x.shape[0]
    if n < 2:
        raise ValueError("uniformity needs at least 2 embeddings")
    gram = x @ x.T
    upper = np.triu_indices(n, k=1)
    squared = np.clip(2 - 2 * gram[upper], 0, None)  # ||a - b||^2 of unit vectors
    values = -t * squared
    top = float(values.max())
    return top + math.log(float(np.mean(np.exp(values - top))))  # log-mean-exp, stable


@dataclass(frozen=True, slots=True)
class NamedPair:
    """Two texts that the fine-tune must move closer (synonyms) or apart (look-alikes)."""

    left: str
    right: str
    direction: Literal["closer", "apart"]


@dataclass(frozen=True, slots=True)
class PairMove:
    """How a named pair's cosine similarity moved, and whether it moved the required way."""

    pair: NamedPair
    before: float
    after: float

    @property
    def moved(self) -> float:
        return self.after - self.before

    @property
    def ok(self) -> bool:
        return self.moved > 0 if self.pair.direction == "closer" else self.moved < 0


def named_pair_moves(
    pairs: Sequence[NamedPair],
    base: tuple[ArrayLike, ArrayLike],
    tuned: tuple[ArrayLike, ArrayLike],
) -> list[PairMove]:
    """Each pair's cosine before (base model's left/right embeddings) and after (tuned)."""
    before = _cosines(*base)
    after = _cosines(*tuned)
    if len(pairs) != before.size or before.size != after.size:
        raise ValueError("one embedding per named pair side, for both models")
    return [
        PairMove(pair, float(b), float(a)) for pair, b, a in zip(pairs, before, after, strict=True)
    ]


@dataclass(frozen=True, slots=True)
class DomainGap:
    """The fine-tune's effect in the training domain beside a held-out topic."""

    in_domain: Comparison
    held_out: Comparison

    @property
    def gap(self) -> float:
        return self.in_domain.diff - self.held_out.diff

    def overfit(self, alpha: float = 0.05) -> bool:
        """Shown better in the training domain while the held-out topic is not shown better."""
        return self.in_domain.p_pass <= alpha < self.held_out.p_pass


def domain_gap(in_domain: Comparison, held_out: Comparison) -> DomainGap:
    """Pair the in-domain and held-out-topic comparisons of the same metric."""
    if in_domain.metric != held_out.metric:
        raise ValueError("compare the same metric in and out of the training domain")
    return DomainGap(in_domain, held_out)


@dataclass(frozen=True, slots=True)
class Projection:
    """2-D coordinates of the same points under both models, in one PCA fit on their union."""

    base: FloatArray  # (n, 2)
    tuned: FloatArray  # (n, 2)
    explained_variance: tuple[float, float]

    def mean_shift(self) -> float:
        """Mean distance a point moved in the projection."""
        return float(np.mean(np.linalg.norm(self.tuned - self.base, axis=1)))


def projection(base: ArrayLike, tuned: ArrayLike, seed: int = 0) -> Projection:
    """PCA(2) of the normalised base and tuned embeddings of the same points, fit on both."""
    a, b = normalize_rows(base), normalize_rows(tuned)
    if a.shape != b.shape or a.shape[0] < 2:
        raise ValueError("base and tuned embeddings of the same points (same shape, >= 2 rows)")
    pca = PCA(n_components=2, random_state=seed).fit(np.vstack([a, b]))
    ratio = pca.explained_variance_ratio_
    return Projection(pca.transform(a), pca.transform(b), (float(ratio[0]), float(ratio[1])))
