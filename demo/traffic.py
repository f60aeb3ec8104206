"""Live traffic for the demo: an ``openai`` SDK client sends held-out items through the proxy.

Each item carries its category and reference answer as the headers the proxy records
(``x-tunegate-category``, ``x-tunegate-reference``); retrieval items also carry the label
``task=retrieval`` (``x-tunegate-label-task``). The proxy's pair id comes back on every answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from openai import APIError, AsyncOpenAI

__all__ = [
    "CATEGORY_HEADER",
    "PAIR_ID_HEADER",
    "REFERENCE_HEADER",
    "USER_HEADER",
    "Sent",
    "TrafficItem",
    "send_traffic",
]

CATEGORY_HEADER = "x-tunegate-category"
REFERENCE_HEADER = "x-tunegate-reference"
LABEL_PREFIX = "x-tunegate-label-"
PAIR_ID_HEADER = "x-tunegate-pair-id"
USER_HEADER = "x-user-id"  # the experiments' default sticky key


@dataclass(frozen=True, slots=True)
class TrafficItem:
    """One request: a chat prompt, or an embeddings input list ``[query, doc_0, …]``."""

    category: str
    reference: str
    prompt: str | None = None
    inputs: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    user: str | None = None  # the sticky user id (``x-user-id``) of the A/B stage

    def headers(self) -> dict[str, str]:
        headers = {CATEGORY_HEADER: self.category, REFERENCE_HEADER: self.reference}
        headers.update({LABEL_PREFIX + k: v for k, v in self.labels.items()})
        if self.user is not None:
            headers[USER_HEADER] = self.user
        return headers


@dataclass(frozen=True, slots=True)
class Sent:
    """What the client saw: the pair id, the served answer (text or vector count) or the error."""

    item: TrafficItem
    pair_id: str | None
    text: str | None
    error: str | None


async def _send_one(client: AsyncOpenAI, model: str, item: TrafficItem, max_tokens: int) -> Sent:
    try:
        if item.prompt is not None:
            chat = await client.chat.completions.with_raw_response.create(
                model=model,
                messages=[{"role": "user", "content": item.prompt}],
                temperature=0.0,
                max_tokens=max_tokens,
                extra_headers=item.headers(),
            )
            answer = chat.parse().choices[0].message.content or ""
            return Sent(item, chat.headers.get(PAIR_ID_HEADER), answer, None)
        # floats, not the SDK's default base64: the pair keeps the body as the judge reads it
        embedded = await client.embeddings.with_raw_response.create(
            model=model,
            input=list(item.inputs),
            encoding_format="float",
            extra_headers=item.headers(),
        )
        vectors = len(embedded.parse().data)
        return Sent(item, embedded.headers.get(PAIR_ID_HEADER), f"{vectors} vectors", None)
    except APIError as exc:
        return Sent(item, None, None, f"{type(exc).__name__}: {exc.message}")


async def send_traffic(
    base_url: str,
    model: str,
    items: list[TrafficItem],
    *,
    concurrency: int = 4,
    max_tokens: int = 48,
    timeout_s: float = 120.0,
    on_sent: Callable[[Sent], None] | None = None,
) -> list[Sent]:
    """Send every item (``concurrency`` at a time) and return what came back, in item order."""
    client = AsyncOpenAI(base_url=base_url, api_key="demo", max_retries=2, timeout=timeout_s)
    gate = asyncio.Semaphore(concurrency)

    async def one(item: TrafficItem) -> Sent:
        async with gate:
            sent = await _send_one(client, model, item, max_tokens)
        if on_sent is not None:
            on_sent(sent)
        return sent

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(item)) for item in items]
    finally:
        await client.close()
    return [task.result() for task in tasks]
