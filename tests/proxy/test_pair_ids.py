"""Signed pair ids: feedback reads the served arm from the id, and a client cannot forge one."""

from __future__ import annotations

import hashlib

import httpx
import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st

from proxy.config import ProxySettings
from proxy.pair_ids import LENGTH, PairIds
from tests.proxy.conftest import Proxy, sdk, wait_for_pairs
from tunegate.records import Arm

IDS = PairIds(b"s" * 32, window_seconds=3600)


def test_an_id_names_its_arm_for_its_experiment_only():
    for arm in Arm:
        pair_id = IDS.new("exp", arm, now=1000.0)
        assert len(pair_id) == LENGTH
        assert IDS.served_arm("exp", pair_id, now=1000.0) is arm
        assert IDS.served_arm("other", pair_id, now=1000.0) is None  # moved to another experiment
        assert (
            PairIds(b"t" * 32, window_seconds=3600).served_arm("exp", pair_id, now=1000.0) is None
        )


@pytest.mark.parametrize("secret", [b"s" * 32, b"k" * 100])
def test_the_tag_is_keyed_blake2b_of_the_experiment_and_the_id(secret: bytes):
    pair_id = PairIds(secret, window_seconds=60).new("exp", Arm.CANDIDATE, now=1000.0)
    key = secret if len(secret) <= 64 else hashlib.blake2b(secret).digest()
    tag = hashlib.blake2b(f"exp|{pair_id[:-16]}".encode(), key=key, digest_size=8).hexdigest()
    assert pair_id[-16:] == tag
    longer = PairIds(secret + b"!", window_seconds=60)  # every byte of a long secret counts
    assert longer.served_arm("exp", pair_id, now=1000.0) is None


def test_a_flipped_arm_or_a_changed_digit_is_refused():
    pair_id = IDS.new("exp", Arm.CONTROL, now=1000.0)
    flipped = pair_id[:24] + "1" + pair_id[25:]
    assert IDS.served_arm("exp", flipped, now=1000.0) is None
    for i in range(LENGTH):
        digit = "0" if pair_id[i] != "0" else "1"
        assert IDS.served_arm("exp", pair_id[:i] + digit + pair_id[i + 1 :], now=1000.0) is None


def test_an_id_expires_after_the_feedback_window():
    pair_id = IDS.new("exp", Arm.CANDIDATE, now=1000.0)
    assert IDS.served_arm("exp", pair_id, now=1000.0 + 3599) is Arm.CANDIDATE
    assert IDS.served_arm("exp", pair_id, now=1000.0 + 3601) is None
    assert IDS.served_arm("exp", pair_id, now=1000.0 - 3600) is None  # from the future


@given(st.text(max_size=80))
def test_arbitrary_text_is_never_an_id(text: str):
    assert IDS.served_arm("exp", text) is None


def test_a_short_secret_is_a_config_error(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TUNEGATE_PAIR_ID_SECRET", "short")
    with pytest.raises(ValueError, match="16 characters"):
        ProxySettings()
    monkeypatch.setenv("TUNEGATE_PAIR_ID_SECRET", "x" * 32)
    assert ProxySettings().pair_id_secret is not None
    assert "x" * 32 not in repr(ProxySettings())


def test_feedback_on_a_forged_id_is_404_and_redis_holds_no_served_key(proxy: Proxy, redis_url: str):
    raw = sdk(proxy.base_url).chat.completions.with_raw_response.create(
        model="exp-promoted", messages=[{"role": "user", "content": "q"}]
    )
    pair_id = raw.headers["x-tunegate-pair-id"]
    wait_for_pairs(redis_url, "exp-promoted", 1)
    client = redis.Redis.from_url(redis_url)
    try:
        names = {k.decode() for k in client.scan_iter("*")}
        remaining = {n: client.ttl(n) for n in names}
    finally:
        client.close()
    assert not any(":served:" in n for n in names), names
    assert all(ttl > 0 for n, ttl in remaining.items() if ":w:" in n)  # the dedup marker expires
    flipped = pair_id[:24] + ("0" if pair_id[24] == "1" else "1") + pair_id[25:]
    for forged in (flipped, "0" * LENGTH, pair_id[:-1] + "x"):
        posted = httpx.post(
            f"{proxy.base_url}/feedback",
            json={"pair_id": forged, "model": "exp-promoted", "value": 1},
        )
        assert posted.status_code == 404, posted.text
    good = httpx.post(
        f"{proxy.base_url}/feedback", json={"pair_id": pair_id, "model": "exp-promoted", "value": 1}
    )
    assert good.status_code == 200 and good.json()["arm"] == "candidate"
    other = httpx.post(
        f"{proxy.base_url}/feedback", json={"pair_id": pair_id, "model": "exp-shadow", "value": 1}
    )
    assert other.status_code == 404
