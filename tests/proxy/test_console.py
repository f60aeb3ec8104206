"""The console over HTTP on a real proxy and Redis: auth, pages, paging, filters, labels."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis

from proxy.console.auth import COOKIE
from tests.proxy.conftest import ADMIN_TOKEN, Proxy, run_proxy
from tests.proxy.console_data import START, seed
from tunegate import keys
from tunegate.records import Winner, decode_human_label
from tunegate.retention import Retention

EXP = "exp-shadow"


def _form_token(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None, "the page's form carries no CSRF token"
    return found.group(1)


def _login(c: httpx.Client, token: str = ADMIN_TOKEN) -> httpx.Response:
    """Log in as a browser does: the login page first (its form's CSRF token), then the post."""
    csrf = _form_token(c.get("/console/login").text)
    return c.post("/console/login", data={"token": token, "csrf": csrf})


def _csrf(c: httpx.Client) -> str:
    return _form_token(c.get("/console/").text)


@pytest.fixture
def client(proxy: Proxy) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=proxy.url, timeout=10, follow_redirects=False) as c:
        response = _login(c)
        assert response.status_code == 303 and response.headers["location"] == "/console/"
        cookies = [v.lower() for k, v in response.headers.multi_items() if k == "set-cookie"]
        assert len(cookies) == 2  # the session's token and its CSRF token
        assert all("httponly" in c and "samesite=strict" in c for c in cookies)
        yield c


def _pair_ids(html: str) -> list[str]:
    return re.findall(r'/pairs/(\d+-\d+)"', html)


def test_pages_need_a_login(proxy: Proxy) -> None:
    for path in ("/console/", f"/console/experiments/{EXP}", f"/console/experiments/{EXP}/pairs"):
        response = httpx.get(f"{proxy.url}{path}", timeout=5)
        assert response.status_code == 303 and response.headers["location"] == "/console/login"
    wrong = httpx.get(f"{proxy.url}/console/", cookies={"tunegate_console": "nope"}, timeout=5)
    assert wrong.status_code == 303
    script = httpx.get(f"{proxy.url}/console/", headers={"authorization": "Bearer nope"})
    assert script.status_code == 401 and script.json()["error"]["type"]
    bearer = httpx.get(
        f"{proxy.url}/console/", headers={"authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=5
    )
    assert bearer.status_code == 200 and EXP in bearer.text


def test_a_wrong_token_is_refused_on_the_login_page(proxy: Proxy) -> None:
    with httpx.Client(base_url=proxy.url, timeout=5) as c:
        response = _login(c, "guess")
    assert response.status_code == 401 and "not valid" in response.text
    assert "set-cookie" not in response.headers
    label = httpx.post(
        f"{proxy.url}/console/experiments/{EXP}/labels",
        data={"pair": "1-0", "choice": "left", "left_arm": "control"},
        timeout=5,
    )
    assert label.status_code == 303  # to the login page, nothing written


def test_experiments_page_lists_every_experiment(client: httpx.Client, proxy: Proxy) -> None:
    html = client.get("/console/").text
    for exp in proxy.settings.experiments:
        assert f">{exp.name}</a>" in html
    page = client.get(f"/console/experiments/{EXP}")
    assert page.status_code == 200 and "No decision yet" in page.text
    assert client.get("/console/experiments/nope").status_code == 404


def test_paging_walks_the_whole_stream_newest_first(client: httpx.Client, redis_url: str) -> None:
    seed(redis_url, EXP, 65)
    seen: list[str] = []
    url = f"/console/experiments/{EXP}/pairs"
    while True:
        html = client.get(url).text
        seen += _pair_ids(html)
        more = re.search(r'id="older" href="\?([^"]+)"', html)
        if more is None:
            assert 'id="end"' in html
            break
        url = f"/console/experiments/{EXP}/pairs?{more.group(1).replace('&amp;', '&')}"
    expected = [f"{int((START + i) * 1000)}-0" for i in reversed(range(65))]
    assert seen == expected


@pytest.mark.parametrize(
    ("params", "indexes"),
    [
        ({"category": "probe"}, [i for i in range(40) if i % 2]),
        ({"winner": "tie"}, [i for i in range(40) if i % 4 == 0]),
        ({"disagreement": "1"}, [i for i in range(40) if i % 4 == 0]),
        ({"errors": "1"}, [i for i in range(40) if i % 10 == 0]),
        ({"since": "2027-01-15T08:00:10", "until": "2027-01-15T08:00:19"}, list(range(10, 20))),
    ],
)
def test_filters_keep_only_matching_pairs(
    client: httpx.Client, redis_url: str, params: dict[str, str], indexes: list[int]
) -> None:
    seed(redis_url, EXP, 40)
    # START is 2027-01-15T08:00:00Z
    html = client.get(f"/console/experiments/{EXP}/pairs", params=params).text
    expected = [f"{int((START + i) * 1000)}-0" for i in sorted(indexes, reverse=True)][:20]
    assert _pair_ids(html) == expected


def test_pair_page_shows_both_answers_verdicts_and_diffs(
    client: httpx.Client, redis_url: str
) -> None:
    seed(redis_url, EXP, 6)
    json_pair = client.get(f"/console/experiments/{EXP}/pairs/{int((START + 3) * 1000)}-0").text
    assert "question 3?" in json_pair and 'id="json-diff"' in json_pair
    assert "75001" in json_pair and "75002" in json_pair
    assert "control_first" in json_pair and "candidate_first" in json_pair
    assert "the longer answer 3 is more complete" in json_pair
    tool = client.get(f"/console/experiments/{EXP}/pairs/{int((START + 5) * 1000)}-0").text
    assert "tool call" in tool and "lookup" in tool
    failed = client.get(f"/console/experiments/{EXP}/pairs/{int(START * 1000)}-0").text
    assert "timeout" in failed and "orders disagree" in failed


@pytest.mark.parametrize(
    ("path", "status"),
    [
        (f"/console/experiments/{EXP}/pairs?cursor=1;DROP", 400),
        (f"/console/experiments/{EXP}/pairs?winner=nobody", 400),
        (f"/console/experiments/{EXP}/pairs?since=yesterday", 400),
        (f"/console/experiments/{EXP}/pairs/abc", 400),
        (f"/console/experiments/{EXP}/pairs/{'9' * 30}", 400),
        (f"/console/experiments/{EXP}/pairs/1-0", 404),
        ("/console/experiments/%7Bbad%7D/pairs", 404),
    ],
)
def test_hostile_queries_get_a_clear_4xx(client: httpx.Client, path: str, status: int) -> None:
    response = client.get(path)
    assert response.status_code == status, response.text
    assert response.json()["error"]["message"]


def test_a_label_is_recorded_as_its_own_record(client: httpx.Client, redis_url: str) -> None:
    seed(redis_url, EXP, 12)
    page = client.get(f"/console/experiments/{EXP}/label").text
    pair = re.search(r'name="pair" value="([^"]+)"', page)
    left = re.search(r'name="left_arm" value="([^"]+)"', page)
    assert pair is not None and left is not None
    assert "judge" not in page.split('id="prompt"')[1].lower()  # blind: no verdict shown
    response = client.post(
        f"/console/experiments/{EXP}/labels",
        data={
            "pair": pair.group(1),
            "left_arm": left.group(1),
            "choice": "right",
            "reviewer": "ana",
            "done": "0",
            "csrf": _csrf(client),
        },
    )
    assert response.status_code == 303 and response.headers["location"].endswith("done=1")
    raw = redis.Redis.from_url(redis_url)
    try:
        ((_, fields),) = raw.xrange(keys.labels(EXP))  # type: ignore[misc]  # a list here
    finally:
        raw.close()
    label = decode_human_label(fields)  # type: ignore[arg-type]  # bytes fields from redis-py
    other = "candidate" if left.group(1) == "control" else "control"
    assert label.winner is Winner(other) and label.reviewer == "ana"
    assert label.pair_id == f"p{(int(pair.group(1).split('-')[0]) // 1000 - int(START)):05d}"


@pytest.mark.parametrize(
    "form",
    [
        {"pair": "x", "choice": "left", "left_arm": "control"},
        {"pair": "1800000000000-0", "choice": "both", "left_arm": "control"},
        {"pair": "1800000000000-0", "choice": "left", "left_arm": "judge"},
        {"pair": "1-0", "choice": "left", "left_arm": "control"},
    ],
)
def test_a_bad_label_form_is_refused(
    client: httpx.Client, redis_url: str, form: dict[str, Any]
) -> None:
    seed(redis_url, EXP, 2)
    response = client.post(
        f"/console/experiments/{EXP}/labels", data={**form, "csrf": _csrf(client)}
    )
    assert 400 <= response.status_code < 500, response.text
    raw = redis.Redis.from_url(redis_url)
    try:
        assert raw.xlen(keys.labels(EXP)) == 0
    finally:
        raw.close()


def test_non_utf8_form_is_a_400(client: httpx.Client) -> None:
    response = client.post(
        f"/console/experiments/{EXP}/labels",
        content=b"pair=\xff\xfe",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 400


@pytest.mark.parametrize(("done", "shown"), [("4", "5"), ("²", "1"), ("9" * 40, "1"), ("-3", "1")])
def test_the_label_counter_survives_odd_values(
    client: httpx.Client, redis_url: str, done: str, shown: str
) -> None:
    seed(redis_url, EXP, 3)
    response = client.post(
        f"/console/experiments/{EXP}/labels",
        data={
            "pair": f"{int(START * 1000) + 1000}-0",
            "choice": "tie",
            "left_arm": "control",
            "done": done,
            "csrf": _csrf(client),
        },
    )
    assert response.status_code == 303
    assert response.headers["location"].endswith(f"done={shown}")


def test_log_out_drops_the_cookie(client: httpx.Client) -> None:
    response = client.post("/console/logout", data={"csrf": _csrf(client)})
    assert response.status_code == 303 and response.headers["location"] == "/console/login"
    assert client.get("/console/").status_code == 303


def test_labels_are_trimmed_to_retention_labels_not_feedback(proxy: Proxy, redis_url: str) -> None:
    settings = proxy.settings.model_copy(update={"retention": Retention(labels=100)})
    seed(redis_url, EXP, 3)
    raw = redis.Redis.from_url(redis_url)
    try:
        for i in range(400):  # old labels beyond the bound
            raw.xadd(keys.labels(EXP), {"old": str(i)})
        with run_proxy(settings) as small, httpx.Client(base_url=small.url, timeout=10) as c:
            assert _login(c).status_code == 303
            page = c.get(f"/console/experiments/{EXP}/label").text
            pair = re.search(r'name="pair" value="([^"]+)"', page)
            assert pair is not None
            form = {"pair": pair.group(1), "left_arm": "control", "choice": "tie", "done": "0"}
            form["csrf"] = _form_token(page)
            assert c.post(f"/console/experiments/{EXP}/labels", data=form).status_code == 303
        # approximate MAXLEN trims whole stream nodes (100 entries each): about 100 stay
        assert 100 <= raw.xlen(keys.labels(EXP)) < 300
        ((_, newest),) = raw.xrevrange(keys.labels(EXP), count=1)  # type: ignore[misc]  # a list here
        assert decode_human_label(newest).winner is Winner.TIE  # type: ignore[arg-type]  # bytes
    finally:
        raw.close()


def test_every_console_post_needs_the_sessions_csrf_token(
    client: httpx.Client, proxy: Proxy, redis_url: str
) -> None:
    seed(redis_url, EXP, 3)
    page = client.get(f"/console/experiments/{EXP}/label").text
    pair = re.search(r'name="pair" value="([^"]+)"', page)
    assert pair is not None
    form = {"pair": pair.group(1), "left_arm": "control", "choice": "tie"}
    url = f"/console/experiments/{EXP}/labels"
    with httpx.Client(base_url=proxy.url, timeout=10) as other:  # another browser's session
        assert _login(other).status_code == 303
        foreign = _csrf(other)
    for sent in ({}, {"csrf": ""}, {"csrf": "x" * 43}, {"csrf": foreign}):
        refused = client.post(url, data={**form, **sent})
        assert refused.status_code == 403 and "CSRF" in refused.json()["error"]["message"]
    assert client.post("/console/logout").status_code == 403
    with httpx.Client(base_url=proxy.url, timeout=10) as fresh:
        got = fresh.post("/console/login", data={"token": ADMIN_TOKEN})  # no token: login CSRF
        assert got.status_code == 403 and COOKIE not in got.cookies
    raw = redis.Redis.from_url(redis_url)
    try:
        assert raw.xlen(keys.labels(EXP)) == 0
        assert client.post(url, data={**form, "csrf": _form_token(page)}).status_code == 303
        assert raw.xlen(keys.labels(EXP)) == 1
        # a script with the bearer header and no console cookie is no browser session
        bearer = {"authorization": f"Bearer {ADMIN_TOKEN}"}
        assert httpx.post(f"{proxy.url}{url}", data=form, headers=bearer).status_code == 303
        assert raw.xlen(keys.labels(EXP)) == 2
    finally:
        raw.close()


def _live_figure(client: httpx.Client) -> str:
    html = client.get(f"/console/experiments/{EXP}").text
    found = re.search(r'id="corrected-live">([^<]*)<', html)
    assert found is not None, "the page shows no live corrected estimate"
    return found.group(1)


def test_the_corrected_estimate_moves_as_soon_as_a_label_is_posted(
    client: httpx.Client, redis_url: str
) -> None:
    seed(redis_url, EXP, 40)  # the judge prefers the candidate (ties on every 4th pair)
    assert _live_figure(client) == "—"  # no label yet, and no decision ever ran
    figures = []
    for i in range(6):  # the people prefer the control, or call it a tie
        page = client.get(f"/console/experiments/{EXP}/label").text
        pair = re.search(r'name="pair" value="([^"]+)"', page)
        left = re.search(r'name="left_arm" value="([^"]+)"', page)
        assert pair is not None and left is not None
        form = {
            "pair": pair.group(1),
            "left_arm": left.group(1),
            "choice": "tie" if i % 2 else "left" if left.group(1) == "control" else "right",
            "csrf": _form_token(page),
        }
        assert client.post(f"/console/experiments/{EXP}/labels", data=form).status_code == 303
        figures.append(_live_figure(client))
    assert figures[0] == "—"  # one labelled pair is too few
    numbers = [float(f) for f in figures[1:]]
    assert len(set(numbers)) > 1, numbers  # each label moves it, no decision in between
    assert max(numbers) < 0.6  # the labels pull the judge's figure (about 0.9) down
    html = client.get(f"/console/experiments/{EXP}").text
    assert re.search(r'id="corrected">—<', html)  # the last decision's: none has run
    assert "5 labelled of 40" in html or "6 labelled of 40" in html
