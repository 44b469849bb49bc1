"""Random streams derived from names, not from the order jobs run in.

Every random stream of the study comes from :func:`rng_for` with the study's ``seed`` and
a few words saying what it is for (stage, split, shard...).  The same words and seed give
the same stream whatever ran before; different words give independent streams.
"""

from __future__ import annotations

import hashlib

import numpy as np


def derive_seed(seed: int, *parts: object, bits: int = 64) -> int:
    """A ``bits``-bit seed (32 or 64) from ``seed`` and ``parts``, hashed with BLAKE2b, so
    stable across Python processes and versions, unlike ``hash()``.  32 bits suit
    scikit-learn's ``random_state``."""
    text = "\x1f".join([str(seed), *map(str, parts)])
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=bits // 8).digest(), "little")


def rng_for(seed: int, *parts: object) -> np.random.Generator:
    return np.random.default_rng(derive_seed(seed, *parts))
