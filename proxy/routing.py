"""Pure routing functions: stage, weight and sticky user key -> served arm; the mirror decision.

Assignment in the ``ab`` stage is a consistent hash of the user key: the key's hash maps to a
point in [0, 1) and the candidate serves when that point falls below the weight. Raising the
weight therefore only moves users from control to candidate, never back.
"""

from __future__ import annotations

import hashlib
import random

from tunegate.records import Arm, Stage

__all__ = ["choose_arm", "hash_key", "key_point", "should_mirror"]

_SCALE = float(1 << 64)


def hash_key(user_key: str) -> str:
    """The stored form of a user key: a hex digest that cannot be reversed to the key."""
    return hashlib.blake2b(user_key.encode(), digest_size=16, person=b"tunegate-user").hexdigest()


def key_point(key_hash: str) -> float:
    """Where a hashed user key falls in [0, 1), uniformly."""
    return int(key_hash[:16], 16) / _SCALE


def choose_arm(
    stage: Stage, weight: float, key_hash: str | None, rng: random.Random | None = None
) -> Arm:
    """The arm that serves this request.

    shadow, rolled_back, paused: control; promoted: candidate; ab: the candidate with
    probability ``weight``, sticky per user key (``key_hash`` from :func:`hash_key`), uniform
    per request when there is no key.
    """
    if stage is Stage.AB:
        point = key_point(key_hash) if key_hash is not None else (rng or random).random()
        return Arm.CANDIDATE if point < weight else Arm.CONTROL
    if stage is Stage.PROMOTED:
        return Arm.CANDIDATE
    return Arm.CONTROL


def should_mirror(mirror_rate: float, rng: random.Random | None = None) -> bool:
    """Whether the other arm gets a shadow copy of this request."""
    if mirror_rate >= 1.0:
        return True
    if mirror_rate <= 0.0:
        return False
    return (rng or random).random() < mirror_rate
