"""One bootstrap for the study: hierarchical over training seeds and test functions,
cluster-aware, post-stratified on request, paired by construction, percentile intervals.

What is resampled, and why
--------------------------
A split's outcomes form a matrix ``values[seed, function]``: one trained model per
training seed, evaluated on test functions that every seed of the split shares.  A finding
should hold for *another* training run and *other* test functions drawn the same way, so
an interval must include both sources of variation (STUDY.md section 8):

- **Seeds.** Two training seeds can differ by more than any effect the study reports.
  A bootstrap over test items alone treats the trained models as fixed and is too narrow.
- **Functions, not tasks.** Tasks that share a function (the same semantic class with
  other example draws) succeed or fail together, so they are not independent draws.  A
  task-level bootstrap treats them as such and under-covers; the unit resampled is the
  function (:func:`cluster_bootstrap` resamples functions with their tasks, where a table
  still holds several tasks per function).  :func:`task_bootstrap` is kept only as the
  naive comparison in the coverage tests.
- **Held-out regions.** Where functions are nested in regions (``clusters``), the regions
  are resampled first, then functions within each chosen region copy.

Replicate ``b`` of :func:`hierarchical_bootstrap`: (1) draw ``n_seeds`` seeds with
replacement and average their rows (one value per function); (2) draw the clusters with
replacement; (3) within each chosen cluster copy, replace each function by a random member
of its own cell: its cluster, or its (cluster, stratum) when the estimate is
post-stratified, so every cell keeps its count; (4) apply the point estimator to that set.
Steps 3 and 4 are done on a (replicates x functions) matrix of draw counts, so the whole
bootstrap is a few vectorised passes over the replicates (in blocks, to bound memory).

Keys, determinism and pairing
-----------------------------
Every draw comes from :func:`synthgen.seeding.random_keys`, a hash of
``(seed, purpose, replicate index, item index)``, never from a generator's call order:

- seeds: ``random_keys(seed, seed_purpose, b, s) % n_seeds``;
- clusters: ``random_keys(seed, function_purpose + ":clusters", b, k) % n_clusters``
  (clusters numbered in order of first appearance);
- functions: item ``f`` of chosen cluster copy ``j`` is replaced by member
  ``random_keys(seed, function_purpose, b, j * n_functions + f) % size`` of its cell
  (cell members in their order in the data).  Without clusters (``j = 0``) this is
  exactly :func:`resample_indices` ``(n_functions, n_boot, seed, function_purpose,
  groups=cells)``.

So a resample depends only on (seed, purpose, replicate, item) and on how the labels
partition the items, never on the values.  Two calls with the same ``function_purpose``,
the same number of functions and the same cluster (and stratum) labels resample the same
functions; the same ``seed_purpose`` and number of seeds resample the same seeds.  That
is how a comparison is **paired**: compute both estimates with the same purposes and take
:func:`difference` (or :func:`ratio_drop`) replicate by replicate; the variation the two
conditions share cancels.  Estimates of conditions that do not share their test functions
(or seeds) take *different* purposes and are independent.

Caveat
------
Percentile intervals are approximate when the top level has few units: with 3 seeds or 5
regions a bootstrap sees at most a handful of distinct values at that level, under-states
its variance by about a factor (n - 1)/n and has no t-like widening.  Such intervals
under-cover; report the number of seeds and regions beside them, and show the spread.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

from synthgen.seeding import random_keys

# Draws handled at once (per block of replicates): bounds memory to some tens of MB.
_BLOCK_DRAWS = 1 << 19


# --- intervals and estimates -------------------------------------------------------------


def percentile_interval(replicates, confidence: float) -> tuple[float, float]:
    """Percentile interval of bootstrap ``replicates`` by order statistics, so that infinite
    replicates give an infinite bound instead of a NaN.  NaN replicates (an estimate
    undefined in that resample) are dropped; all NaN (or none) gives ``(nan, nan)``."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1; got {confidence}")
    v = np.asarray(replicates, dtype=np.float64).ravel()
    v = np.sort(v[~np.isnan(v)])
    if not v.size:
        return float("nan"), float("nan")
    alpha = (1.0 - confidence) / 2.0
    # the tolerance keeps exact positions exact: (1 - 0.9) / 2 * 100 is 4.999..., not 5
    lo = int(np.floor(alpha * (v.size - 1) + 1e-9))
    hi = int(np.ceil((1.0 - alpha) * (v.size - 1) - 1e-9))
    return float(v[lo]), float(v[hi])


@dataclass(frozen=True, eq=False)
class Estimate:
    """A point estimate with its bootstrap replicates (a read-only float64 copy)."""

    estimate: float
    replicates: np.ndarray  # (n_boot,)

    def __post_init__(self):
        r = np.array(self.replicates, dtype=np.float64)
        if r.ndim != 1:
            raise ValueError(f"replicates must be 1-D; got shape {r.shape}")
        r.setflags(write=False)
        object.__setattr__(self, "estimate", float(self.estimate))
        object.__setattr__(self, "replicates", r)

    def interval(self, confidence: float) -> tuple[float, float]:
        return percentile_interval(self.replicates, confidence)

    def summary(self, confidence: float) -> dict[str, float]:
        """``{"estimate", "ci_low", "ci_high"}``, e.g. for a metrics JSON."""
        lo, hi = self.interval(confidence)
        return {"estimate": self.estimate, "ci_low": lo, "ci_high": hi}


def _check_same_replicates(a: Estimate, b: Estimate) -> None:
    if a.replicates.shape != b.replicates.shape:
        raise ValueError(f"estimates with {a.replicates.size} and {b.replicates.size} replicates cannot be combined")


def difference(a: Estimate, b: Estimate) -> Estimate:
    """``a - b``, replicate by replicate: paired if both came from the same purposes,
    independent if from different ones."""
    _check_same_replicates(a, b)
    return Estimate(a.estimate - b.estimate, a.replicates - b.replicates)


def ratio_drop(shifted: Estimate, reference: Estimate) -> Estimate:
    """``1 - shifted / reference``, replicate by replicate (positive: the shifted condition
    is worse).  Replicates whose reference is 0 are NaN (dropped by the interval); the
    point estimate is NaN if the reference estimate is 0."""
    _check_same_replicates(shifted, reference)
    r, s = reference.replicates, shifted.replicates
    with np.errstate(divide="ignore", invalid="ignore"):
        drops = np.where(r == 0.0, np.nan, 1.0 - s / r)
    point = float("nan") if reference.estimate == 0 else 1.0 - shifted.estimate / reference.estimate
    return Estimate(point, drops)


# --- labels and resample indices ---------------------------------------------------------


def _codes(labels, n: int, name: str) -> tuple[np.ndarray, list]:
    """Integer codes of hashable ``labels`` (first appearance order) and the labels."""
    series = pd.Series(list(labels), dtype=object)
    if len(series) != n:
        raise ValueError(f"{name} has {len(series)} labels for {n} items")
    codes, uniques = pd.factorize(series, use_na_sentinel=False)
    return codes.astype(np.int64), list(uniques)


class _Cells(NamedTuple):
    """Items grouped into cells: ``order`` lists the items cell by cell, each cell's
    members in data order; cell ``c`` is ``order[start[c] : start[c] + count[c]]``."""

    code: np.ndarray  # (n,) cell of each item
    order: np.ndarray
    start: np.ndarray
    count: np.ndarray

    @classmethod
    def of(cls, code: np.ndarray) -> _Cells:
        count = np.bincount(code)
        return cls(code, np.argsort(code, kind="stable"), np.cumsum(count) - count, count)

    def draw(self, items: np.ndarray, keys: np.ndarray) -> np.ndarray:
        """For each item, the member of its own cell that ``keys`` picks."""
        c = self.code[items]
        return self.order[self.start[c] + (keys % self.count[c].astype(np.uint64)).astype(np.int64)]


def _indices(n: int, rows: np.ndarray, seed: int, purpose: str, cells: _Cells | None = None) -> np.ndarray:
    keys = random_keys(seed, purpose, rows[:, None], np.arange(n)[None, :])
    if cells is None:
        return (keys % np.uint64(n)).astype(np.int64)
    return cells.draw(np.broadcast_to(np.arange(n), keys.shape), keys)


def resample_indices(n: int, n_boot: int, seed: int, purpose: str, groups=None) -> np.ndarray:
    """``(n_boot, n)`` int64 indices into ``range(n)``, one bootstrap resample per row.

    Without ``groups``: ``n`` draws with replacement.  With ``groups`` (``n`` hashable
    labels): item ``i`` is replaced by a random member of its own group, so every group
    keeps its count (a stratified bootstrap).  Entry ``[b, i]`` depends only on (seed,
    purpose, b, i) and the partition: the same arguments give the same indices (paired
    resamples), another purpose independent ones."""
    if n < 1 or n_boot < 1:
        raise ValueError(f"need n >= 1 and n_boot >= 1; got n={n}, n_boot={n_boot}")
    cells = None if groups is None else _Cells.of(_codes(groups, n, "groups")[0])
    return _indices(n, np.arange(n_boot), seed, purpose, cells)


# --- the hierarchical bootstrap ----------------------------------------------------------


def _as_matrix(values) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    if v.ndim == 1:
        v = v[None, :]
    if v.ndim != 2 or v.shape[0] < 1 or v.shape[1] < 1:
        raise ValueError(f"values must be (n_seeds, n_functions) with both >= 1 (or 1-D); got shape {v.shape}")
    if np.isnan(v).any():
        bad = np.argwhere(np.isnan(v))[0]
        raise ValueError(
            f"values hold {int(np.isnan(v).sum())} NaN (first at seed {bad[0]}, function {bad[1]}): every seed must "
            "be evaluated on every function; drop or fill the missing outcomes explicitly"
        )
    return v


def _function_counts(
    n_functions: int, n_boot: int, seed: int, purpose: str, clusters: _Cells | None, cells: _Cells
) -> Iterator[tuple[slice, np.ndarray]]:
    """Blocks of replicates ``(rows, counts)``: ``counts[b, f]`` is how often function ``f``
    was drawn in replicate ``b`` (cluster resample, then functions within cells)."""
    n_clusters = 1 if clusters is None else len(clusters.count)
    block = max(1, min(n_boot, _BLOCK_DRAWS // n_functions))
    for b0 in range(0, n_boot, block):
        rows = np.arange(b0, min(n_boot, b0 + block))
        B = len(rows)
        if n_clusters == 1:  # one copy of every function: keys (b, f), as in resample_indices
            b_local = np.repeat(np.arange(B), n_functions)
            drawn = _indices(n_functions, rows, seed, purpose, None if len(cells.count) == 1 else cells).ravel()
        else:
            chosen = _indices(n_clusters, rows, seed, f"{purpose}:clusters").ravel()  # cluster of each (b, copy)
            # expand each (replicate, copy) pair into the functions of its chosen cluster, in data order
            lengths = clusters.count[chosen]
            first = np.cumsum(lengths) - lengths
            starts = np.repeat(clusters.start[chosen], lengths)
            f = clusters.order[np.arange(len(starts)) + starts - np.repeat(first, lengths)]
            b_local = np.repeat(np.arange(B), lengths.reshape(B, n_clusters).sum(axis=1))
            copy = np.repeat(np.tile(np.arange(n_clusters), B), lengths)
            keys = random_keys(seed, purpose, b0 + b_local, copy * n_functions + f)
            if cells is clusters:  # the cells are the clusters: draw from the chosen cluster directly
                drawn = clusters.order[starts + (keys % np.repeat(lengths.astype(np.uint64), lengths)).astype(np.int64)]
            else:
                drawn = cells.draw(f, keys)
        counts = np.bincount(b_local * n_functions + drawn, minlength=B * n_functions).reshape(B, n_functions)
        yield slice(b0, b0 + B), counts


def _seed_means(v: np.ndarray, rows: np.ndarray, seed: int, purpose: str) -> np.ndarray:
    """(len(rows), n_functions): per replicate, the mean of the resampled seeds' rows."""
    n_seeds = v.shape[0]
    if n_seeds == 1:
        return np.broadcast_to(v[0], (len(rows), v.shape[1]))
    chosen = _indices(n_seeds, rows, seed, purpose)
    share = np.bincount((np.arange(len(rows))[:, None] * n_seeds + chosen).ravel(), minlength=len(rows) * n_seeds)
    # einsum, not a BLAS matmul: with an inner dimension this small, waking BLAS threads costs more
    return np.einsum("bs,sf->bf", share.reshape(len(rows), n_seeds) / n_seeds, v)


def _stratum_weights(strata_codes: np.ndarray, labels: list, weights: Mapping) -> tuple[np.ndarray, np.ndarray]:
    """The weight of each stratum code (NaN: not in ``weights``) and the codes that have one."""
    w = np.full(len(labels), np.nan)
    for code, label in enumerate(labels):
        if label in weights:
            w[code] = float(weights[label])
    if np.any(w[~np.isnan(w)] < 0) or not np.all(np.isfinite([float(x) for x in weights.values()])):
        raise ValueError(f"weights must be finite and non-negative; got {dict(weights)}")
    used = np.flatnonzero(~np.isnan(w))
    if not used.size or w[used].sum() <= 0:
        raise ValueError(
            f"no stratum of weights {sorted(map(str, weights))} with a positive weight occurs in the data "
            f"(strata present: {sorted(map(str, labels))})"
        )
    return w, used


def hierarchical_bootstrap(
    values,
    n_boot: int,
    seed: int,
    *,
    function_purpose: str,
    seed_purpose: str = "seeds",
    clusters=None,
    strata=None,
    weights: dict | None = None,
) -> Estimate:
    """Mean outcome over seeds and functions, with replicates that resample training seeds,
    then clusters (if given), then functions within them.

    ``values``: ``(n_seeds, n_functions)`` outcomes (1-D: one seed), no NaN.  ``clusters``:
    per function, its cluster (e.g. held-out region); ``strata``: per function, any
    hashable stratum label (used only with ``weights``).

    The estimate, with ``weights=None``: the mean over seeds of the mean over clusters of
    each cluster's mean over its functions (clusters weighted equally; without clusters, the
    plain mean).  With ``weights`` (stratum -> weight; needs ``strata``): post-stratified,
    ``sum_h w_h * mean_h`` over the strata of ``weights`` that occur, weights renormalised
    over those, ``mean_h`` pooled over clusters and averaged over seeds; strata not in
    ``weights`` are ignored (so a comparison restricts itself to matched strata).

    Replicate ``b``: seeds drawn with replacement (``seed_purpose``) and their rows
    averaged; clusters drawn with replacement (``function_purpose + ":clusters"``); each
    chosen cluster copy's functions redrawn within the copy (within its (cluster, stratum)
    cells when ``weights`` is given, so each cell keeps its count), keyed by
    ``function_purpose`` and the copy's position; then the same estimator on the resampled
    set (post-stratified: chosen copies pooled; a stratum absent from a replicate drops
    out and the weights renormalise over the rest; none left gives a NaN replicate).

    Pairing: two calls with the same ``function_purpose``, the same number of functions and
    the same cluster/stratum labels (the same partition of the functions) resample the same
    functions; the same ``seed_purpose`` and number of seeds resample the same seeds.  Use
    the same purposes for conditions that share test functions and seeds, and take
    :func:`difference`; different purposes make the replicates independent.
    """
    v = _as_matrix(values)
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1; got {n_boot}")
    n_functions = v.shape[1]
    cluster_code = None if clusters is None else _codes(clusters, n_functions, "clusters")[0]
    cluster_cells = None if cluster_code is None or cluster_code.max() == 0 else _Cells.of(cluster_code)
    if weights is not None and strata is None:
        raise ValueError("post-stratification (weights) needs per-function strata")
    if weights is None:
        # the estimator is linear: each function's weight (clusters weighted equally)
        if cluster_cells is None:
            cells, per_function = _Cells.of(np.zeros(n_functions, np.int64)), np.full(n_functions, 1.0 / n_functions)
        else:
            cells = cluster_cells
            per_function = 1.0 / (len(cluster_cells.count) * cluster_cells.count[cluster_code])
        estimate = float(v.mean(axis=0) @ per_function)
    else:
        stratum_code, labels = _codes(strata, n_functions, "strata")
        w, used = _stratum_weights(stratum_code, labels, weights)
        cells = _Cells.of(stratum_code if cluster_code is None else cluster_code * len(labels) + stratum_code)
        # functions of the weighted strata, grouped stratum by stratum, for np.add.reduceat
        keep = np.isin(stratum_code, used)
        columns = np.flatnonzero(keep)[np.argsort(stratum_code[keep], kind="stable")]
        per_stratum = np.bincount(stratum_code[columns], minlength=len(labels))[used]
        bounds = np.concatenate([[0], np.cumsum(per_stratum)[:-1]])
        w_used = w[used]
        means = np.add.reduceat(v.mean(axis=0)[columns], bounds) / per_stratum
        estimate = float(w_used @ means / w_used.sum())

    replicates = np.empty(n_boot)
    for rows, counts in _function_counts(n_functions, n_boot, seed, function_purpose, cluster_cells, cells):
        m = _seed_means(v, np.arange(rows.start, rows.stop), seed, seed_purpose)
        if weights is None:
            replicates[rows] = np.einsum("bf,bf,f->b", counts, m, per_function)
        else:
            sums = np.add.reduceat((counts * m)[:, columns], bounds, axis=1)
            n = np.add.reduceat(counts[:, columns], bounds, axis=1)
            present = n > 0
            with np.errstate(divide="ignore", invalid="ignore"):
                total = np.einsum("bh,h->b", np.where(present, sums / np.where(present, n, 1), 0.0), w_used)
                replicates[rows] = total / np.einsum("bh,h->b", present, w_used)
    return Estimate(estimate, replicates)


# --- one outcome per task ----------------------------------------------------------------


def _as_vector(values) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or not v.size:
        raise ValueError(f"values must be a non-empty 1-D array of per-task outcomes; got shape {v.shape}")
    if np.isnan(v).any():
        raise ValueError(f"values hold {int(np.isnan(v).sum())} NaN; drop or fill the missing outcomes explicitly")
    return v


def cluster_bootstrap(values, clusters, n_boot: int, seed: int, purpose: str) -> Estimate:
    """The mean over tasks (each a 1-D outcome) nested in ``clusters`` (e.g. tasks of one
    function): replicates resample the clusters (``purpose + ":clusters"``), then tasks
    within each chosen cluster copy (``purpose``), and take the plain mean over the drawn
    tasks.  Same keys as :func:`hierarchical_bootstrap` with one seed."""
    v = _as_vector(values)
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1; got {n_boot}")
    code = _codes(clusters, len(v), "clusters")[0]
    cells = _Cells.of(code)
    cluster_cells = cells if len(cells.count) > 1 else None
    replicates = np.empty(n_boot)
    for rows, counts in _function_counts(len(v), n_boot, seed, purpose, cluster_cells, cells):
        replicates[rows] = np.einsum("bf,f->b", counts, v) / counts.sum(axis=1)
    return Estimate(float(v.mean()), replicates)


def task_bootstrap(values, n_boot: int, seed: int, purpose: str) -> Estimate:
    """The naive bootstrap of the mean over tasks, each task drawn independently.  Wrong
    wherever tasks share a function; kept only as the comparison in the coverage tests."""
    v = _as_vector(values)
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1; got {n_boot}")
    return Estimate(float(v.mean()), v[resample_indices(len(v), n_boot, seed, purpose)].mean(axis=1))
