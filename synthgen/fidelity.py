"""How faithfully distances in a space follow exact ones (notebook 03).

Rank agreement (Spearman) between Euclidean distance in a space and an exact distance on
sampled program pairs, over the number of dimensions kept; its ceiling when the exact
distance has ties; and exact tree edit distance (Zhang-Shasha, via ``zss``) as a second
reference.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import zss
from scipy.stats import spearmanr

from synthgen.universe import Universe


def random_pairs(n: int, n_pairs: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n_pairs`` pairs of distinct indices below ``n``, uniformly at random."""
    a = rng.integers(0, n, n_pairs)
    b = (a + rng.integers(1, n, n_pairs)) % n  # never a itself
    return a, b


def same_class_pairs(universe: Universe, n_pairs: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n_pairs`` pairs of distinct programs of one semantic class (semantic twins):
    a random in-bound program whose class has another member, and another member."""
    cls = universe.semantic_class
    sizes = universe.class_sizes()
    members = np.argsort(cls, kind="stable")[np.count_nonzero(cls < 0) :]  # in-bound, grouped by class
    start = np.concatenate([[0], np.cumsum(sizes)])[:-1]
    pos = rng.choice(np.flatnonzero(sizes[cls[members]] > 1), n_pairs)
    c = cls[members[pos]]
    other = start[c] + (pos - start[c] + rng.integers(1, sizes[c])) % sizes[c]
    return members[pos], members[other]


def pair_distance(coords: np.ndarray, a: np.ndarray, b: np.ndarray, dims: int | None = None) -> np.ndarray:
    """Euclidean distance between rows ``a`` and ``b`` on the first ``dims`` axes."""
    diff = coords[a, :dims].astype(np.float64) - coords[b, :dims]
    return np.sqrt((diff**2).sum(axis=1))


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    keep = np.isfinite(x) & np.isfinite(y)
    return float(spearmanr(x[keep], y[keep])[0])


def spearman_by_dims(coords: np.ndarray, a: np.ndarray, b: np.ndarray, exact: np.ndarray, dims: list[int]) -> pd.Series:
    """Spearman between ``exact`` and the distance on the leading ``k`` axes, per ``k``."""
    return pd.Series({k: spearman(pair_distance(coords, a, b, k), exact) for k in dims}, name="spearman").rename_axis("dims")


def tie_ceiling(exact: np.ndarray, rng: np.random.Generator) -> float:
    """Spearman between ``exact`` and itself with its ties broken at random.

    A continuous distance in few dimensions cannot give every tied pair the same value
    (e.g. all pairs of programs that share no pq-gram), so this bounds what it can reach
    unless it reproduces the ties."""
    order = rng.permutation(len(exact))
    broken = np.empty(len(exact))
    broken[np.lexsort((order, exact))] = np.arange(len(exact))  # by value, ties in random order
    return spearman(broken, exact)


def tree_edit_distance(universe: Universe, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Exact unit-cost tree edit distance between programs ``a[k]`` and ``b[k]``."""
    out = np.empty(len(a))
    for k, (i, j) in enumerate(zip(a, b)):
        out[k] = zss.simple_distance(
            universe.program(int(i)), universe.program(int(j)), get_children=lambda t: list(t.children), get_label=lambda t: t.op
        )
    return out
