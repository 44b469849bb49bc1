"""Random streams derived from names, not from the order jobs run in.

Every random stream of the study comes from :func:`rng_for` with the study's ``seed`` and
a few words saying what it is for (stage, split, shard...).  The same words and seed give
the same stream whatever ran before; different words give independent streams.
"""

from __future__ import annotations

import hashlib

import numpy as np


def derive_seed(seed: int, *parts: object) -> int:
    """A 64-bit seed from ``seed`` and ``parts`` (hashed with BLAKE2b, so stable across
    Python processes and versions, unlike ``hash()``)."""
    text = "\x1f".join([str(seed), *map(str, parts)])
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def rng_for(seed: int, *parts: object) -> np.random.Generator:
    return np.random.default_rng(derive_seed(seed, *parts))
