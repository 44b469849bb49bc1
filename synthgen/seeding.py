"""Random streams derived from names, not from the order jobs run in.

Every random stream of the study comes from :func:`rng_for` with the study's ``seed`` and
a few words saying what it is for (stage, split, shard...).  The same words and seed give
the same stream whatever ran before; different words give independent streams.

Where each item needs its own random numbers whatever batch it comes in (a task's
examples, a program's place in an epoch, a sample's noise), :func:`random_keys` hashes
the item's indices themselves, vectorised, instead of drawing from a stream.
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


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser: a bijection of uint64 that mixes every bit."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def random_keys(seed: int, purpose: str, *indices: np.ndarray | int) -> np.ndarray:
    """Uniform pseudo-random uint64 keys, one per element of the broadcast ``indices``:
    a hash of (seed, purpose, indices...), so an item's key does not depend on which
    other items are hashed with it.  E.g. ``random_keys(seed, "train-order", epoch,
    np.arange(n))``; sorting by such keys gives a random permutation."""
    h = np.uint64(derive_seed(seed, purpose))
    arrays = np.broadcast_arrays(*(np.asarray(i, dtype=np.int64) for i in indices)) if indices else []
    key = np.full(arrays[0].shape if arrays else (), h, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for a in arrays:
            key = _splitmix64(key ^ a.astype(np.uint64))
    return key
