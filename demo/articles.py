"""The retrieval task: knowledge-base articles for the invented products and queries that need them.

Each article covers one product's family of error codes (``KP-4xx`` is Kestrel Pay's identity
family, the same first-digit convention as the tickets). A query names a product's code or
describes a symptom in user words; its candidates are the right article plus hard negatives: the
same product's other families and other products' article on the same family. Seeded, so the
shipped ``data/retrieval.jsonl`` is reproducible; held-out queries are never used in training.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path

from demo.tickets import PRODUCTS, TEAMS

__all__ = [
    "RETRIEVAL_FILE",
    "Article",
    "Query",
    "articles",
    "generate_queries",
    "load_queries",
    "write_queries",
]

RETRIEVAL_FILE = Path(__file__).parent / "data" / "retrieval.jsonl"

AREAS = {
    "network": "the device loses its uplink, packets drop or the tunnel resets",
    "storage": "quota is exhausted, files stop syncing or a volume turns read-only",
    "billing": "a card is declined, an invoice is duplicated or a charge is wrong",
    "identity": "sign-in fails, a session token expires early or single sign-on loops",
    "platform": "the service crashes, background jobs hang or the API answers 500",
    "mobile": "the phone app freezes, push messages stop or the battery drains",
}

SYMPTOMS = {
    "network": ["keeps dropping off the wifi", "connection goes away every hour", "no internet"],
    "storage": ["my files will not upload", "says the drive is full", "folder is read only"],
    "billing": ["charged me twice", "my card got rejected", "the invoice amount is wrong"],
    "identity": ["I cannot log in", "it keeps asking for my password", "login page loops"],
    "platform": ["the whole thing crashed", "jobs are stuck forever", "server error page"],
    "mobile": ["the iphone app freezes", "no notifications on android", "app eats my battery"],
}

QUERY_TEMPLATES = [
    "{product} shows {code}, what does it mean?",
    "how do I fix {code}",
    "{code} on {product} again",
    "{product}: {symptom}",
    "help, {product} {symptom}",
    "{symptom} ({product})",
]


@dataclass(frozen=True, slots=True)
class Article:
    id: str
    product: str
    area: str
    text: str


@dataclass(frozen=True, slots=True)
class Query:
    id: str
    split: str
    text: str
    candidates: list[str]  # article ids, in the order sent
    relevant: int  # index of the right article among candidates


def articles() -> list[Article]:
    """One article per product and error-code family."""
    digit = {team: d for d, team in TEAMS.items()}
    found = []
    for product, prefix in sorted(PRODUCTS.items()):
        for area, description in AREAS.items():
            text = (
                f"{product} error codes {prefix}-{digit[area]}xx ({area}): {description}."
                f" Collect the {product} diagnostics bundle and route it to the {area} team."
            )
            found.append(Article(f"{prefix}-{digit[area]}xx", product, area, text))
    return found


def _query(rng: random.Random, index: int, split: str, pool: list[Article]) -> Query:
    target = rng.choice(pool)
    code = f"{PRODUCTS[target.product]}-{target.id[3]}{rng.randint(0, 99):02d}"
    text = rng.choice(QUERY_TEMPLATES).format(
        product=target.product if rng.random() < 0.7 else target.product.lower(),
        code=code,
        symptom=rng.choice(SYMPTOMS[target.area]),
    )
    same_product = [a for a in pool if a.product == target.product and a is not target]
    same_area = [a for a in pool if a.area == target.area and a is not target]
    negatives = rng.sample(same_product, 4) + rng.sample(same_area, 3)
    candidates = [target, *negatives]
    rng.shuffle(candidates)
    return Query(
        f"{split}-{index:03d}", split, text, [a.id for a in candidates], candidates.index(target)
    )


def generate_queries(train: int = 320, heldout: int = 48, seed: int = 11) -> list[Query]:
    """Distinct queries; no held-out text appears in the training split."""
    rng = random.Random(seed)
    pool = articles()
    seen: set[str] = set()
    queries: list[Query] = []
    for split, count in (("train", train), ("heldout", heldout)):
        made = 0
        while made < count:
            query = _query(rng, made, split, pool)
            if query.text in seen:
                continue
            seen.add(query.text)
            queries.append(query)
            made += 1
    return queries


def write_queries(path: Path = RETRIEVAL_FILE) -> None:
    path.write_text("".join(json.dumps(asdict(q)) + "\n" for q in generate_queries()))


def load_queries(split: str | None = None, path: Path = RETRIEVAL_FILE) -> list[Query]:
    queries = [Query(**json.loads(line)) for line in path.read_text().splitlines() if line]
    return [q for q in queries if split is None or q.split == split]
