"""The judge-corrected win rate as it stands now, for the console between the controller's looks.

The controller puts the corrected estimate in each Decision; a reviewer who has just posted a
label should not wait for the next one to see it move. :func:`corrected_now` brings the
incremental evidence store up to date by at most ``max_pages`` folds (each at most the store's
page of new entries per stream, so a view's work is bounded whatever the stream's length; the
controller's next look folds the rest), reads the rows and the labels (read fresh, so the label
just posted counts) and runs the controller's own PPI++ computation with the policy's alpha and
plan (analysis/decide_checks.py). The proxy does not import analysis: the composition root hands
this function to the console (cli/compose.py). The estimate runs in a worker thread
(``python -m bench.corrected_now`` measures what it held the loop for), and so does decoding the
rows (``EvidenceStore.evidence``).
"""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from analysis.decide_checks import corrected_estimate
from analysis.evidence_store import EvidenceStore
from tunegate.experiments import ExperimentConfig

__all__ = ["MAX_PAGES", "corrected_now"]

MAX_PAGES = 2


async def corrected_now(
    client: aioredis.Redis, config: ExperimentConfig, *, max_pages: int = MAX_PAGES
) -> dict[str, object] | None:
    """The corrected estimate's JSON (as in a Decision's evidence), or None without labels."""
    store = EvidenceStore(client, config.name)
    for _ in range(max_pages):
        _, more = await store.fold_page()
        if not more:
            break
    evidence = await store.evidence()
    # PPI++ is O(judged rows) in numpy: 17 ms at 10^5 rows on a busy machine (bench.corrected_now),
    # on the proxy's event loop, which serves the /v1 requests too; a thread keeps it off the loop
    estimate = await asyncio.to_thread(corrected_estimate, evidence, config.policy)
    return None if estimate is None else estimate.to_json()
