"""POST /v1/feedback: an application's feedback on a served response, appended as a Feedback record.

The arm that served the pair is read from the pair id itself, which the proxy signed
(``proxy/pair_ids.py``): no Redis lookup, no per-request key. A forged, altered or foreign id, or
one older than ``proxy.feedback_window_seconds``, is answered 404.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from proxy.errors import NotFound, Unavailable, UnknownModel
from proxy.extract import experiment_facts
from proxy.routes.deps import json_response, runtime
from proxy.runtime import Runtime
from tunegate import keys
from tunegate.errors import StoreUnavailable
from tunegate.records import Feedback, encode
from tunegate.redis import store_errors

__all__ = ["FeedbackBody", "router"]

router = APIRouter()


class FeedbackBody(BaseModel):
    """What the application posts."""

    model_config = ConfigDict(extra="forbid")
    pair_id: str = Field(min_length=1, max_length=64)
    model: str = Field(min_length=1, max_length=256)  # the experiment's public model name
    # a rating, a reward or a 0/1 outcome: bounded so one value cannot swamp the analysis
    value: float = Field(allow_inf_nan=False, ge=-1e6, le=1e6)
    label: str | None = Field(default=None, max_length=200)


@router.post("/v1/feedback")
async def post_feedback(
    body: FeedbackBody, request: Request, rt: Annotated[Runtime, Depends(runtime)]
) -> Response:
    cfg = rt.experiment(body.model)
    if cfg is None:
        raise UnknownModel(f"The model '{body.model}' is not an experiment", param="model")
    assert rt.redis is not None and rt.pair_ids is not None
    served = rt.pair_ids.served_arm(cfg.name, body.pair_id)
    if served is None:
        raise NotFound(f"Unknown pair id '{body.pair_id}'")
    try:
        with store_errors("feedback"):
            headers = dict(request.headers.items())
            record = Feedback(
                pair_id=body.pair_id,
                experiment=cfg.name,
                arm=served,
                value=body.value,
                label=body.label,
                user_key_hash=experiment_facts(cfg, {}, headers).user_key_hash,
            )
            entry_id = await rt.redis.xadd(
                keys.feedback(cfg.name),
                encode(record),  # type: ignore[arg-type]  # redis-py types fields too narrowly
                maxlen=rt.retention.feedback,
                approximate=True,
            )
    except StoreUnavailable as exc:
        raise Unavailable("feedback store unavailable, retry later") from exc
    rt.metrics.feedback.labels(cfg.name, record.arm.value).inc()
    entry = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
    return json_response({"id": entry, "pair_id": body.pair_id, "arm": record.arm})
