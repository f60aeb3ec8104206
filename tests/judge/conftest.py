"""Judge test fixtures: an HTTP judge double (the async Redis client is tests/conftest.py's)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bench.servers.judge_double import JudgeDouble
from cli.server import serve_in_thread


@pytest.fixture
def judge_double() -> JudgeDouble:
    return JudgeDouble()


@pytest.fixture
def judge_url(judge_double: JudgeDouble) -> Iterator[str]:
    with serve_in_thread(judge_double.app) as url:
        yield url
