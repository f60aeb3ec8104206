"""Token counts copied onto the pair from each arm's usage block, and hostile bodies refused."""

from __future__ import annotations

import pytest

from proxy.extract import RequestFacts
from proxy.pairs import PairDraft
from tunegate.records import Arm, ArmResult, Endpoint, Pair
from tunegate.responses import parse_response, usage_counts

_SSE = (
    'data: {"choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n'
    'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}\n\n'
    "data: [DONE]\n\n"
)


def _result(body: str, *, stream: bool = False, status: int = 200) -> ArmResult:
    return ArmResult(upstream="u", model="m", stream=stream, status=status, body=body)


@pytest.mark.parametrize(
    ("body", "stream", "expected"),
    [
        ('{"usage":{"prompt_tokens":4,"completion_tokens":9,"total_tokens":13}}', False,
         {"prompt_tokens": 4, "completion_tokens": 9, "total_tokens": 13}),
        (_SSE, True, {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}),
        ('{"usage":{"prompt_tokens":"4","completion_tokens":1.5}}', False, {}),  # not ints
        ('{"usage":[1,2]}', False, {}),
        ("[1, 2]", False, {}),
        ("{not json", False, {}),
        ("", False, {}),
        ('data: {"usage": {bad\n\n', True, {}),
        ('data: ["usage"]\n\n', True, {}),
        ("event: x\n\n", True, {}),
    ],
)  # fmt: skip
def test_usage_counts_agrees_with_the_full_parser_or_gives_nothing(body, stream, expected):
    result = _result(body, stream=stream)
    assert usage_counts(result) == expected
    if expected:
        assert parse_response(result).usage == expected


def test_an_sse_answer_with_a_raw_line_separator_in_its_text_is_parsed():
    """JSON leaves U+2028, U+2029 and U+0085 unescaped; only CR and LF end an SSE line."""
    text = "one\u2028two\u0085three\u2029"
    body = (
        'data: {"choices":[{"index":0,"delta":{"content":"' + text + '"}}],'
        '"usage":{"prompt_tokens":1,"completion_tokens":2}}\r\n\r\n'
        'data: {"choices":[{"index":0,"delta":{"content":"!"}}]}\r\rdata: [DONE]\n\n'
    )
    result = _result(body, stream=True)
    assert parse_response(result).texts == [text + "!"]
    assert usage_counts(result) == {"prompt_tokens": 1, "completion_tokens": 2}


def _draft(pairs: list[Pair]) -> PairDraft:
    return PairDraft(
        pairs.append, pair_id="p", experiment="exp", endpoint=Endpoint.CHAT, request=b"{}",
        served_arm=Arm.CONTROL, facts=RequestFacts(),
    )  # fmt: skip


def test_the_built_pair_carries_each_good_arms_counts():
    pairs: list[Pair] = []
    draft = _draft(pairs)
    draft.expect_shadow()
    draft.served_done(_result('{"usage":{"prompt_tokens":1,"completion_tokens":2}}'))
    draft.shadow_done(_result(_SSE, stream=True))
    [pair] = pairs
    assert pair.schema_version == 2
    assert pair.control is not None and pair.candidate is not None
    assert (pair.control.prompt_tokens, pair.control.completion_tokens) == (1, 2)
    assert pair.control.total_tokens is None
    assert pair.candidate.completion_tokens == 2 and pair.candidate.total_tokens == 5


def test_a_failed_arm_gets_no_counts():
    pairs: list[Pair] = []
    draft = _draft(pairs)
    draft.served_done(_result('{"usage":{"completion_tokens":2}}', status=500))
    [pair] = pairs
    assert pair.control is not None and pair.control.completion_tokens is None
