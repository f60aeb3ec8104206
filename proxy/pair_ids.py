"""PairIds: pair ids that carry the served arm and their time, signed, so feedback needs no key.

An id is 41 hex-ish characters: 16 random hex digits, the issue time (8 hex digits, Unix
seconds), the served arm (``0`` control, ``1`` candidate) and a 64-bit tag (16 hex digits) of
``experiment | the rest``: keyed BLAKE2b (RFC 7693's MAC mode, ``hashlib.blake2b(key=...)``)
with the secret as its key (a secret over 64 bytes is hashed to 64 first). BLAKE2b is keyed
without HMAC's nesting: with the keyed state made once and copied per id, a tag costs about a
third of an HMAC-SHA256 one (libcrypto's context copies: ~10,000 instructions a request).
``POST /v1/feedback`` reads the arm from the id and checks the tag with a constant-time compare,
so Redis holds no per-request ``served`` key and a client cannot forge an id, move one to another
experiment, or flip its arm. Feedback is accepted for ``feedback_window_seconds`` after the id
was issued. (Ids issued before a change of the tag's MAC fail the check: feedback on them is 404.)

The secret comes from the environment variable ``proxy.pair_id_secret_env`` names (every proxy
replica must share it, so feedback may reach any of them); without it each process draws its
own, and feedback only works against the replica that served the request (logged at start-up).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time

from tunegate.records import Arm

__all__ = ["PairIds"]

_ARM_DIGIT = {Arm.CONTROL: "0", Arm.CANDIDATE: "1"}
_DIGIT_ARM = {v: k for k, v in _ARM_DIGIT.items()}
_TAG = 16  # hex digits of the tag: 64 bits, beyond any online guessing
LENGTH = 16 + 8 + 1 + _TAG


class PairIds:
    """Issues and checks signed pair ids with one secret."""

    def __init__(self, secret: bytes, *, window_seconds: float) -> None:
        if len(secret) < 16:
            raise ValueError("pair id secret: at least 16 bytes")
        if len(secret) > hashlib.blake2b.MAX_KEY_SIZE:
            secret = hashlib.blake2b(secret).digest()
        self._mac = hashlib.blake2b(key=secret, digest_size=_TAG // 2)
        self._window = window_seconds

    def _tag(self, experiment: str, body: str) -> str:
        # a copy of the keyed state made once: keying per id compresses the key block again
        mac = self._mac.copy()
        mac.update(f"{experiment}|{body}".encode())
        return mac.hexdigest()

    def new(self, experiment: str, served: Arm, *, now: float | None = None) -> str:
        """A fresh id for a request of ``experiment`` served by ``served``."""
        issued = int(time.time() if now is None else now)
        body = f"{os.urandom(8).hex()}{issued:08x}{_ARM_DIGIT[served]}"
        return body + self._tag(experiment, body)

    def served_arm(self, experiment: str, pair_id: str, *, now: float | None = None) -> Arm | None:
        """The arm an authentic, unexpired id of ``experiment`` names; None for any other id."""
        if len(pair_id) != LENGTH or not pair_id.isascii():
            return None
        body, tag = pair_id[:-_TAG], pair_id[-_TAG:]
        if not hmac.compare_digest(tag.encode(), self._tag(experiment, body).encode()):
            return None
        try:
            issued = int(body[16:24], 16)
        except ValueError:
            return None
        age = (time.time() if now is None else now) - issued
        if not -300 <= age <= self._window:  # five minutes of clock skew between replicas
            return None
        return _DIGIT_ARM.get(body[24])
