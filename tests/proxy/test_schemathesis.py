"""Schemathesis against the proxy's OpenAPI schema: no admin route answers a 5xx.

Hypothesis draws valid and invalid bodies, paths and queries for every admin operation from the
schema the proxy serves; each is sent with the admin token (the token checks themselves are in
test_admin_api.py). The example count is kept small so that the suite stays fast.

schemathesis' pytest plugin is disabled (pyproject.toml: ``-p no:schemathesis``): it does not run
under this pytest, and as a plugin its modules are assertion-rewritten when first imported, which
deep inside a hypothesis run hit CPython 3.11's "AST constructor recursion depth mismatch".
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err, Ok

from tests.proxy.conftest import ADMIN_TOKEN, Proxy


def _store_is_back(proxy: Proxy) -> None:
    """Wait until the admin API reads the store again (20 answers in a row).

    An earlier test (test_redis_drill) stops and restarts the session's Redis: the first command on
    each pooled connection then fails once and answers 503 by design. That outage answer is the
    drill's subject; this test is about a healthy store.
    """
    headers = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    ok, deadline = 0, time.monotonic() + 15
    while ok < 20:
        assert time.monotonic() < deadline, "the admin API did not read the store again"
        status = httpx.get(f"{proxy.url}/admin/experiments", headers=headers, timeout=5).status_code
        ok = ok + 1 if status == 200 else 0


def test_no_admin_route_answers_5xx(proxy: Proxy) -> None:
    _store_is_back(proxy)
    # schemathesis' own pytest plugin (from_fixture) does not run under this pytest: each
    # operation's strategy is driven with hypothesis directly instead
    schema = schemathesis.openapi.from_url(f"{proxy.url}/openapi.json")
    results = list(schema.include(path_regex="^/admin").get_all_operations())
    invalid = [r.err() for r in results if isinstance(r, Err)]
    assert not invalid, invalid  # the schema itself is valid
    operations = [r.ok() for r in results if isinstance(r, Ok)]
    assert len(operations) >= 17
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=12, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        def no_5xx(case: Any) -> None:
            response = case.call(headers={"authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10)
            case.validate_response(response, checks=[not_a_server_error])

        no_5xx()
