"""The console's pages: experiments, one experiment's evidence, the pair browser, labelling.

Server-rendered (jinja2, autoescaped) from what Redis holds: the state hash, the decisions the
controller wrote (their evidence carries every figure, so the proxy never imports analysis),
the pairs and verdicts streams (proxy/console/browse.py) and the labels stream, which the label
form appends HumanLabel records to.
"""

from __future__ import annotations

import logging
import random
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import cast
from urllib.parse import parse_qs, quote, urlencode

import redis.asyncio as aioredis
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from proxy.console import browse, csrf, plots, view
from proxy.console.auth import COOKIE, Reader, Writer
from proxy.errors import BadRequest, NotFound, Unavailable, UnknownModel
from proxy.experiments import config_state
from proxy.routes.auth import role_for_token
from proxy.routes.deps import runtime
from proxy.runtime import Runtime
from tunegate import keys
from tunegate.errors import RecordError, StoreUnavailable
from tunegate.experiments import ExperimentConfig
from tunegate.records import Arm, Decision, HumanLabel, Winner, decode_decision, encode
from tunegate.redis import store_errors
from tunegate.state import read_state

__all__ = ["router"]

router = APIRouter(prefix="/console", include_in_schema=False)
_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
)
_STREAM_ID = re.compile(r"^\d{1,20}(-\d{1,20})?$")
_CHOICES = {"left", "right", "tie"}
_rng = random.SystemRandom()
DECISIONS_PLOTTED = 200
log = logging.getLogger(__name__)


def _page(request: Request, name: str, status: int = 200, **context: object) -> HTMLResponse:
    """A rendered page whose forms carry the session's CSRF token (set as a cookie if new)."""
    token, new = csrf.session_token(request)
    html = _templates.get_template(name).render({**context, "csrf": token})
    response = HTMLResponse(html, status_code=status)
    if new:
        csrf.set_token(response, request, token)
    return response


def _experiment(rt: Runtime, name: str) -> ExperimentConfig:
    cfg = rt.experiment(name)
    if cfg is None:
        raise UnknownModel(f"no experiment named '{name}'")
    return cfg


def _redis(rt: Runtime) -> aioredis.Redis:
    assert rt.redis is not None  # the runtime is ready (the dependency checked)
    return rt.redis


async def _form(request: Request) -> dict[str, str]:
    """An urlencoded form (the body is at most the app's small-body limit), last value wins."""
    try:
        text = (await request.body()).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest("the form is not UTF-8") from exc
    return {k: v[-1] for k, v in parse_qs(text, keep_blank_values=True).items()}


@router.get("/login")
async def login_page(request: Request) -> Response:
    return _page(request, "login.html")


@router.post("/login")
async def login(request: Request) -> Response:
    rt = runtime(request)
    form = await _form(request)
    csrf.check_csrf(request, form)
    token = form.get("token", "")
    if role_for_token(rt, token) is None:
        return _page(request, "login.html", 401, error="That token is not valid.")
    response = RedirectResponse("/console/", status_code=303)
    secure = request.url.scheme == "https"
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=secure)
    csrf.set_token(response, request, csrf.new_token())  # a new session, a new token
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    csrf.check_csrf(request, await _form(request))
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(COOKIE)
    return response


async def _latest_decisions(rt: Runtime, name: str, count: int) -> list[Decision]:
    with store_errors("read decisions"):
        entries = cast(
            browse.Entries, await _redis(rt).xrevrange(keys.decisions(name), count=count)
        )
    out = []
    for _, fields in entries:
        try:
            out.append(decode_decision(fields))
        except RecordError:
            continue
    return out[::-1]


async def _overview(rt: Runtime, cfg: ExperimentConfig) -> dict[str, object]:
    state = await read_state(_redis(rt), cfg.name) or config_state(cfg)
    latest = await _latest_decisions(rt, cfg.name, 1)
    step = cfg.ramp.index(state.ab_weight) + 1 if state.ab_weight in cfg.ramp else None
    return {"cfg": cfg, "state": state, "decision": latest[-1] if latest else None, "step": step}


@router.get("/")
async def experiments(request: Request, rt: Reader) -> Response:
    try:
        rows = [await _overview(rt, cfg) for cfg in rt.experiments]
    except StoreUnavailable as exc:
        raise Unavailable("the store is unavailable") from exc
    return _page(request, "experiments.html", rows=rows)


@router.get("/experiments/{name}")
async def experiment(name: str, request: Request, rt: Reader) -> Response:
    cfg = _experiment(rt, name)
    try:
        overview = await _overview(rt, cfg)
        decisions = await _latest_decisions(rt, name, DECISIONS_PLOTTED)
        with store_errors("count labels"):
            labels = int(await _redis(rt).xlen(keys.labels(name)))
        live = await _corrected_now(rt, cfg)
    except StoreUnavailable as exc:
        raise Unavailable("the store is unavailable") from exc
    latest = decisions[-1] if decisions else None
    evidence = latest.evidence if latest is not None else {}
    return _page(
        request,
        "experiment.html",
        cfg=cfg,
        state=overview["state"],
        decision=overview["decision"],
        step=overview["step"],
        series=plots.win_rate_series(decisions, cfg.policy.win_rate_bar),
        bars=plots.category_bars(latest),
        judge=evidence.get("judge") or {},
        corrected=evidence.get("corrected"),
        live=live,
        live_available=rt.corrected_now is not None,
        guardrails=evidence.get("guardrails") or [],
        labels=labels,
    )


async def _corrected_now(rt: Runtime, cfg: ExperimentConfig) -> dict[str, object] | None:
    """The corrected estimate from the labels and verdicts now (None: no labels, or no hook)."""
    if rt.corrected_now is None:
        return None
    try:
        return await rt.corrected_now(_redis(rt), cfg)
    except (RecordError, ValueError) as exc:  # a bad record or argument: the page still shows
        log.warning("experiment %s: live corrected estimate failed: %s", cfg.name, exc)
        return None


def _ms(value: str | None, name: str) -> int | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise BadRequest(f"{name}: not an ISO date and time: {value!r}", param=name) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0, int(moment.timestamp() * 1000))


def _filters(request: Request) -> tuple[browse.Filters, dict[str, str]]:
    q = request.query_params
    winner = q.get("winner") or None
    if winner is not None and winner not in {w.value for w in Winner}:
        raise BadRequest(f"winner: one of candidate, control, tie, not {winner!r}", param="winner")
    filters = browse.Filters(
        category=q.get("category") or None,
        winner=Winner(winner) if winner else None,
        disagreement=q.get("disagreement") == "1",
        errors=q.get("errors") == "1",
        since_ms=_ms(q.get("since"), "since"),
        until_ms=_ms(q.get("until"), "until"),
    )
    kept = {k: v for k, v in q.items() if k != "cursor" and v}
    return filters, kept


def _stream_id(value: str, name: str) -> str:
    if not _STREAM_ID.match(value):
        raise BadRequest(f"{name}: not a stream id: {value[:40]!r}", param=name)
    return value


@router.get("/experiments/{name}/pairs")
async def pairs(name: str, request: Request, rt: Reader) -> Response:
    cfg = _experiment(rt, name)
    filters, kept = _filters(request)
    cursor = request.query_params.get("cursor") or None
    if cursor is not None:
        _stream_id(cursor, "cursor")
    try:
        with store_errors("read pairs"):
            found = await browse.page(_redis(rt), cfg.name, filters, cursor=cursor)
    except StoreUnavailable as exc:
        raise Unavailable("the store is unavailable") from exc
    more = urlencode({**kept, "cursor": found.next_cursor}) if found.next_cursor else None
    return _page(
        request, "pairs.html", cfg=cfg, page=found, query=kept, more=more, prompt=view.prompt_text
    )


def _sides(row: browse.PairRow) -> dict[str, object]:
    assert row.pair is not None
    control, candidate = (view.answer(row.pair, arm) for arm in (Arm.CONTROL, Arm.CANDIDATE))
    return {
        "control": control,
        "candidate": candidate,
        "diff": view.json_diff(control.text, candidate.text) if control.text else None,
        "ranks": {a.arm.value: view.retrieval_ranks(a.embeddings) for a in (control, candidate)},
        "prompt": view.prompt_text(row.pair),
    }


@router.get("/experiments/{name}/pairs/{stream_id}")
async def pair(name: str, stream_id: str, request: Request, rt: Reader) -> Response:
    cfg = _experiment(rt, name)
    _stream_id(stream_id, "pair")
    try:
        with store_errors("read a pair"):
            row = await browse.one_pair(_redis(rt), cfg.name, stream_id)
    except StoreUnavailable as exc:
        raise Unavailable("the store is unavailable") from exc
    if row is None:
        raise NotFound(f"no pair {stream_id} in '{name}'")
    if row.pair is None:
        return _page(request, "pair.html", cfg=cfg, row=row, sides=None)
    return _page(request, "pair.html", cfg=cfg, row=row, sides=_sides(row))


@router.get("/experiments/{name}/label")
async def label_page(name: str, request: Request, rt: Reader, done: int = 0) -> Response:
    cfg = _experiment(rt, name)
    try:
        with store_errors("draw a pair"):
            row, sample = await browse.draw_unlabelled(_redis(rt), cfg.name, _rng)
            labels = int(await _redis(rt).xlen(keys.labels(name)))
    except StoreUnavailable as exc:
        raise Unavailable("the store is unavailable") from exc
    if row is None:
        return _page(request, "label.html", cfg=cfg, row=None, labels=labels, done=done)
    left = _rng.choice([Arm.CONTROL, Arm.CANDIDATE])  # blind: a random side for each arm
    sides = _sides(row)
    return _page(
        request,
        "label.html",
        cfg=cfg,
        row=row,
        left_arm=left.value,
        left=sides[left.value],
        right=sides[left.other.value],
        prompt=sides["prompt"],
        sample=sample,
        labels=labels,
        done=done,
    )


@router.post("/experiments/{name}/labels")
async def record_label(name: str, request: Request, rt: Writer) -> Response:
    cfg = _experiment(rt, name)
    form = await _form(request)
    csrf.check_csrf(request, form)
    stream_id = _stream_id(form.get("pair", ""), "pair")
    choice, left = form.get("choice", ""), form.get("left_arm", "")
    if choice not in _CHOICES:
        raise BadRequest("choice: one of left, right, tie", param="choice")
    if left not in {a.value for a in Arm}:
        raise BadRequest("left_arm: control or candidate", param="left_arm")
    sample = form.get("sample") or browse.SAMPLE_TIME
    if sample not in browse.SAMPLES:
        raise BadRequest(f"sample: one of {', '.join(browse.SAMPLES)}", param="sample")
    try:
        with store_errors("record a label"):
            row = await browse.one_pair(_redis(rt), cfg.name, stream_id)
            if row is None or row.pair is None:
                raise NotFound(f"no readable pair {stream_id} in '{name}'")
            left_arm = Arm(left)
            picked = {"left": left_arm, "right": left_arm.other}.get(choice)
            label = HumanLabel(
                pair_id=row.pair.id,
                pair_stream_id=row.stream_id,
                experiment=cfg.name,
                winner=Winner.TIE if picked is None else Winner(picked.value),
                reviewer=form.get("reviewer", "")[:200],
                sample=sample,
                note=form.get("note", "")[:2000],
            )
            await _redis(rt).xadd(
                keys.labels(cfg.name),
                encode(label),  # type: ignore[arg-type]  # redis-py's field type is invariant
                maxlen=rt.retention.labels,
                approximate=True,
            )
    except StoreUnavailable as exc:
        raise Unavailable("the store is unavailable") from exc
    before = form.get("done", "")
    done = (
        min(int(before), 10**6) + 1
        if before.isascii() and before.isdigit() and len(before) < 8
        else 1
    )
    url = f"/console/experiments/{quote(cfg.name)}/label?done={done}"
    return RedirectResponse(url, status_code=303)
