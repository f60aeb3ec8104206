"""The embedding path of an evaluation: embed every text with both arms, then compare.

Sets (JSONL): retrieval as ``queries`` ({id, text, category?}), ``corpus`` ({id, text}) and
``qrels`` ({query_id, doc_id, score?}); STS pairs ({sentence1, sentence2, score, category?});
named pairs ({left, right, direction: closer|apart}). Per query recall@1/5/10, MRR@10 and
nDCG@10 are compared by the paired bootstrap (analysis/offline/embeddings.py computes them);
STS by the bootstrap of both models' Spearman rho. A ``held_out_topic`` set is judged like a
probe (non-inferiority within the acceptable drop), beside its in-domain twin: the gap between
the two shows overfitting to the training domain. Named pairs that do not move the required way
fail the run. Alignment and uniformity (Wang & Isola) and a 2-D projection go in the report.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from analysis.offline.cache import OutputCache
from analysis.offline.compare import MetricScores, Role, Scored, compare_metric
from analysis.offline.metrics import MetricKind
from analysis.offline.paired import Comparison
from analysis.offline.spec import EmbeddingSetSpec, EvalSpec
from analysis.offline.split import read_rows
from cli.eval.arms import ArmClients, embed
from tunegate.errors import ConfigError

__all__ = ["EmbeddingOutcome", "evaluate_embeddings"]

_PRIMARY = {"retrieval": "ndcg@10", "sts": "sts_spearman"}
_PROJECTION_POINTS = 400
_UNIFORMITY_POINTS = 2000


@dataclass(slots=True)
class EmbeddingOutcome:
    scored: list[Scored] = field(default_factory=list)
    sections: dict[str, object] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    calls: int = 0


def _text_id(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _rows(path: Path | None, what: str, need: tuple[str, ...]) -> list[dict[str, object]]:
    if path is None or not path.is_file():
        raise ConfigError(f"embeddings: {what} file {path} does not exist")
    rows = read_rows(path)
    for number, row in enumerate(rows, start=1):
        missing = [k for k in need if k not in row]
        if missing:
            raise ConfigError(f"{path} row {number}: missing {', '.join(missing)}")
    return rows


@dataclass(slots=True)
class _Loaded:
    spec: EmbeddingSetSpec
    texts: dict[str, str]  # text id -> text
    rows: dict[str, list[dict[str, object]]]


def _load(s: EmbeddingSetSpec) -> _Loaded:
    texts: dict[str, str] = {}

    def add(value: object) -> str:
        text = str(value)
        texts[_text_id(text)] = text
        return text

    rows: dict[str, list[dict[str, object]]] = {}
    if s.kind == "retrieval":
        rows["queries"] = _rows(s.queries, "queries", ("id", "text"))
        rows["corpus"] = _rows(s.corpus, "corpus", ("id", "text"))
        rows["qrels"] = _rows(s.qrels, "qrels", ("query_id", "doc_id"))
        for row in rows["queries"] + rows["corpus"]:
            add(row["text"])
    elif s.kind == "sts":
        rows["pairs"] = _rows(s.path, "sts", ("sentence1", "sentence2", "score"))
        for row in rows["pairs"]:
            add(row["sentence1"])
            add(row["sentence2"])
    else:
        rows["pairs"] = _rows(s.path, "named pairs", ("left", "right", "direction"))
        for row in rows["pairs"]:
            if row["direction"] not in ("closer", "apart"):
                raise ConfigError(f"{s.path}: direction must be closer or apart")
            add(row["left"])
            add(row["right"])
    return _Loaded(s, texts, rows)


Vectors = Callable[[str, str], NDArray[np.float64]]  # (arm, text) -> vector


def _retrieval(loaded: _Loaded, vec: Vectors) -> list[MetricScores]:
    from analysis.offline.embeddings import retrieval_scores

    queries, corpus = loaded.rows["queries"], loaded.rows["corpus"]
    qrels: dict[str, dict[str, float]] = {}
    for row in loaded.rows["qrels"]:
        qrels.setdefault(str(row["query_id"]), {})[str(row["doc_id"])] = float(
            row.get("score", 1.0)  # type: ignore[arg-type]  # JSON number
        )
    query_ids = [str(q["id"]) for q in queries if str(q["id"]) in qrels]
    by_id = {str(q["id"]): q for q in queries}
    doc_ids = [str(d["id"]) for d in corpus]
    per_arm = {}
    for arm in ("control", "candidate"):
        q = np.array([vec(arm, str(by_id[i]["text"])) for i in query_ids])
        d = np.array([vec(arm, str(doc["text"])) for doc in corpus])
        per_arm[arm] = retrieval_scores(query_ids, q, doc_ids, d, qrels)
    categories = [str(by_id[i].get("category", "default")) for i in query_ids]
    out = []
    control, candidate = per_arm["control"], per_arm["candidate"]
    for k in sorted(control.recall):
        out.append(
            MetricScores(
                f"recall@{k}",
                MetricKind.CONTINUOUS,
                query_ids,
                categories,
                control.recall[k],
                candidate.recall[k],
            )
        )
    out.append(MetricScores("mrr@10", MetricKind.CONTINUOUS, query_ids, categories,
                            control.mrr, candidate.mrr))  # fmt: skip
    out.append(MetricScores("ndcg@10", MetricKind.CONTINUOUS, query_ids, categories,
                            control.ndcg, candidate.ndcg))  # fmt: skip
    return out


def _cosine(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) or 1.0))


def _sts(loaded: _Loaded, vec: Vectors, spec: EvalSpec) -> Scored:
    from analysis.offline.embeddings import sts_comparison

    pairs = loaded.rows["pairs"]
    gold = np.array([float(p["score"]) for p in pairs])  # type: ignore[arg-type]  # JSON number
    sims = {
        arm: np.array(
            [_cosine(vec(arm, str(p["sentence1"])), vec(arm, str(p["sentence2"]))) for p in pairs]
        )
        for arm in ("control", "candidate")
    }
    comparison = sts_comparison(
        gold,
        sims["control"],
        sims["candidate"],
        alpha=spec.alpha,
        resamples=spec.bootstrap_resamples,
        seed=spec.seed,
    )
    return Scored(loaded.spec.name, "task", comparison, primary=True)


def _named(loaded: _Loaded, vec: Vectors) -> tuple[dict[str, object], list[str]]:
    from analysis.offline.embeddings import NamedPair, named_pair_moves

    pairs = [
        NamedPair(str(p["left"]), str(p["right"]), p["direction"])  # type: ignore[arg-type]
        for p in loaded.rows["pairs"]
    ]
    side = {
        arm: (
            np.array([vec(arm, p.left) for p in pairs]),
            np.array([vec(arm, p.right) for p in pairs]),
        )
        for arm in ("control", "candidate")
    }
    moves = named_pair_moves(pairs, side["control"], side["candidate"])
    failures = [
        f"{loaded.spec.name}: '{m.pair.left}' / '{m.pair.right}' should move {m.pair.direction}"
        f" but moved {m.moved:+.3f} (cosine {m.before:.3f} -> {m.after:.3f})"
        for m in moves
        if not m.ok
    ]
    report = [
        {"left": m.pair.left, "right": m.pair.right, "direction": m.pair.direction,
         "before": m.before, "after": m.after, "ok": m.ok}
        for m in moves
    ]  # fmt: skip
    return {"pairs": report}, failures


def _space(loaded: list[_Loaded], vec: Vectors, spec: EvalSpec) -> dict[str, object]:
    """Alignment over positive pairs, uniformity over all texts, and the 2-D projection."""
    from analysis.offline.embeddings import alignment, projection, uniformity

    positives: list[tuple[str, str]] = []
    for item in loaded:
        if item.spec.kind == "retrieval":
            queries = {str(q["id"]): str(q["text"]) for q in item.rows["queries"]}
            docs = {str(d["id"]): str(d["text"]) for d in item.rows["corpus"]}
            positives += [
                (queries[str(r["query_id"])], docs[str(r["doc_id"])])
                for r in item.rows["qrels"]
                if str(r["query_id"]) in queries and str(r["doc_id"]) in docs
            ]
        elif item.spec.kind == "sts":
            scores = [float(p["score"]) for p in item.rows["pairs"]]  # type: ignore[arg-type]
            top = float(np.quantile(scores, 0.75)) if scores else 0.0
            positives += [
                (str(p["sentence1"]), str(p["sentence2"]))
                for p in item.rows["pairs"]
                if float(p["score"]) >= top  # type: ignore[arg-type]
            ]
    texts = sorted({t for item in loaded for t in item.texts.values()})
    rng = np.random.default_rng(spec.seed)
    sample = [texts[i] for i in sorted(rng.permutation(len(texts))[:_UNIFORMITY_POINTS])]
    shown = sample[:_PROJECTION_POINTS]
    space: dict[str, object] = {}
    for arm in ("control", "candidate"):
        entry: dict[str, float] = {}
        if positives:
            entry["alignment"] = alignment(
                np.array([vec(arm, a) for a, _ in positives]),
                np.array([vec(arm, b) for _, b in positives]),
            )
        if len(sample) >= 2:
            entry["uniformity"] = uniformity(np.array([vec(arm, t) for t in sample]))
        space[arm] = entry
    if len(shown) >= 2:
        shape = {vec(arm, shown[0]).shape for arm in ("control", "candidate")}
        if len(shape) == 1:  # the projection needs one space: same dimension for both models
            found = projection(
                np.array([vec("control", t) for t in shown]),
                np.array([vec("candidate", t) for t in shown]),
                seed=spec.seed,
            )
            space["projection"] = {
                "control": found.base.tolist(),
                "candidate": found.tuned.tolist(),
                "explained_variance": list(found.explained_variance),
                "mean_shift": found.mean_shift(),
            }
    return space


async def evaluate_embeddings(
    spec: EvalSpec, clients: ArmClients, cache: OutputCache, on_done: Callable[[object], None]
) -> EmbeddingOutcome:
    """Embed every text with both arms (cached), then every comparison and section."""
    loaded = [_load(s) for s in spec.embeddings]
    texts: dict[str, str] = {}
    for item in loaded:
        texts.update(item.texts)
    outputs = await embed(clients, cache, texts, concurrency=spec.concurrency, on_done=on_done)
    failed = sorted({k[1] for k, out in outputs.items() if out.embedding is None})
    if failed:
        first = next(out.error for out in outputs.values() if out.embedding is None)
        raise ConfigError(f"embeddings: {len(failed)} texts got no embedding (first: {first})")
    vectors = {k: np.asarray(out.embedding, dtype=np.float64) for k, out in outputs.items()}

    def vec(arm: str, text: str) -> NDArray[np.float64]:
        return vectors[(arm, _text_id(text), 0)]

    result = EmbeddingOutcome()
    named: dict[str, object] = {}
    for item in loaded:
        role: Role = "probe" if item.spec.split == "held_out_topic" else "task"
        if item.spec.kind == "retrieval":
            for scores in _retrieval(item, vec):
                found = compare_metric(
                    item.spec.name,
                    role,
                    scores,
                    alpha=spec.alpha,
                    acceptable_drop=spec.thresholds.probe_acceptable_drop,
                    resamples=spec.bootstrap_resamples,
                    seed=spec.seed,
                    overall=True,
                )
                for s in found:
                    s.primary = role == "task" and s.primary and scores.metric == "ndcg@10"
                result.scored += found
        elif item.spec.kind == "sts":
            scored = _sts(item, vec, spec)
            if role == "probe":
                scored.role, scored.primary = "probe", False
            result.scored.append(scored)
        else:
            section, failures = _named(item, vec)
            named[item.spec.name] = section
            result.failures += failures
    result.sections["embeddings"] = {
        **_space(loaded, vec, spec),
        "named_pairs": named,
        "domain_gap": _domain_gaps(result.scored, spec),
    }
    return result


def _relative(c: Comparison) -> float | None:
    return c.candidate / c.control - 1 if c.control else None


def _domain_gaps(scored: list[Scored], spec: EvalSpec) -> list[dict[str, object]]:
    """In-domain vs held-out-topic effect of each primary metric (the overfitting signal)."""
    from analysis.offline.embeddings import domain_gap

    overall = [s for s in scored if s.comparison.category == "all"]
    gaps = []
    for inside in (s for s in overall if s.role == "task"):
        for outside in (s for s in overall if s.role == "probe"):
            if inside.comparison.metric != outside.comparison.metric:
                continue
            if inside.comparison.metric not in _PRIMARY.values():
                continue
            gap = domain_gap(inside.comparison, outside.comparison)
            # the held-out set is judged on the relative scale (like a probe): compare both so
            relative = [_relative(c) for c in (inside.comparison, outside.comparison)]
            gaps.append(
                {
                    "metric": inside.comparison.metric,
                    "in_domain": inside.set,
                    "held_out": outside.set,
                    "in_domain_change": relative[0],
                    "held_out_change": relative[1],
                    "gap": None if None in relative else relative[0] - relative[1],  # type: ignore[operator]
                    "overfit": gap.overfit(spec.alpha),
                }
            )
    return gaps
