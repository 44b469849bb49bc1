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


# splitmix64's constants, as unsigned 64-bit numbers
_GOLDEN, _MIX1, _MIX2 = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB
_SIGN_BIT = -(2**63)


def _int64(c: int) -> int:
    """The signed 64-bit number with the bits of the unsigned ``c``."""
    return c - 2**64 if c >= 2**63 else c


def _is_numpy(x) -> bool:
    return isinstance(x, (np.ndarray, np.generic))


def is_tensor(x) -> bool:
    """Whether ``x`` is a torch tensor, without importing torch (numpy >= 2 arrays have a
    ``device`` too, so that attribute does not tell)."""
    return type(x).__module__.partition(".")[0] == "torch"


def _splitmix64(x):
    """The splitmix64 finaliser: a bijection of 64-bit words that mixes every bit.

    On numpy uint64 arrays, or on torch int64 tensors holding the same bits: torch has
    no full uint64 arithmetic, but int64 ``+`` and ``*`` wrap like uint64's, and only
    ``>>`` differs (arithmetic, so it is masked to the logical shift)."""
    if _is_numpy(x):
        const, shr = np.uint64, lambda v, n: v >> np.uint64(n)
    else:
        const, shr = _int64, lambda v, n: (v >> n) & ((1 << (64 - n)) - 1)
    x = x + const(_GOLDEN)
    x = (x ^ shr(x, 30)) * const(_MIX1)
    x = (x ^ shr(x, 27)) * const(_MIX2)
    return x ^ shr(x, 31)


def random_keys(seed: int, purpose: str, *indices):
    """Uniform pseudo-random 64-bit keys, one per element of the broadcast ``indices``:
    a hash of (seed, purpose, indices...), so an item's key does not depend on which
    other items are hashed with it.  E.g. ``random_keys(seed, "train-order", epoch,
    np.arange(n))``; :func:`key_order` of such keys is a random permutation.

    ``indices`` are ints and numpy arrays (keys: uint64), or ints and torch int64
    tensors on one device (keys: int64 tensors there, holding the same bits), so that a
    training device draws its tasks itself, with the same keys as the host."""
    h = derive_seed(seed, purpose)
    tensors = [i for i in indices if is_tensor(i)]
    if tensors:
        import torch  # here, not above: the data stages hash numpy arrays and need not load torch

        # filled on the device (0-d, so ``^`` broadcasts it), not copied there: a copy to a GPU waits for it
        key = torch.full((), _int64(h), dtype=torch.int64, device=tensors[0].device)
        for a in indices:
            key = _splitmix64(key ^ a)
        return key
    arrays = np.broadcast_arrays(*(np.asarray(i, dtype=np.int64) for i in indices)) if indices else []
    key = np.full(arrays[0].shape if arrays else (), np.uint64(h), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for a in arrays:
            key = _splitmix64(key ^ a.astype(np.uint64))
    return key


def key_order(keys, axis: int = -1):
    """The indices that sort ``keys`` of :func:`random_keys` (stably, as unsigned
    numbers) along ``axis``: a random permutation, or with ``[..., :k]`` a uniform
    k-subset in random order.  On torch tensors the sign bit is flipped first, so that
    signed order is the unsigned order of the numpy keys."""
    if _is_numpy(keys):
        return np.argsort(keys, axis=axis, kind="stable")
    return (keys ^ _SIGN_BIT).argsort(dim=axis, stable=True)
