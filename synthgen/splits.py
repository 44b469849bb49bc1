"""Splits that isolate density shift and support shift (STUDY.md sections 4 and 8).

Every split draws its training and test programs from one *pool* of candidates: every
in-bound program (``splits.pool: programs``, the default), or one program per semantic
class, its smallest (``representatives``: the ExeDec habit of deduplicating by outputs;
at our compute it put every split at the pass@1 floor, see docs/protocol.md).  Each split is a
small object in the shape of scikit-learn's splitters: parameters in ``__init__``, then
``split(inputs, pool)`` returns a :class:`Split` with sorted program ids.

**The unit is the function.**  A test set holds each semantic class at most
``splits.tasks_per_function`` times (default once): test programs are drawn in a seeded
random order (uniform, or weighted for the density shift) and a program whose function is
already in the test set that often is passed over (:func:`draw_tests`).  ``test_size``
counts test functions.  Without the cap a test set drawn by program is about a quarter
constant functions, the giant classes of the universe.

- ``iid``: random train and test, the reference.
- density family: one test set drawn with a *shifted density* (probability tilted towards
  the sparse regions of the joint syntax + semantics space, the same support as the pool)
  and four equal-size training sets drawn from the rest of the pool: ``random``,
  ``diverse_syntax``, ``diverse_semantics``, ``diverse_both``.  "Diverse" is stratified
  sampling over k-means cells of the space: every cell gets the same quota (cells smaller
  than the quota give all they have), so the training set covers the space evenly instead
  of following the pool's density.  We chose stratification over farthest-point sampling
  because it keeps the sample random within cells (farthest-point sampling picks the
  outliers first, a bias of its own) and costs one k-means.
- support family, each split built from ``splits.support.regions`` (R) **disjoint**
  held-out regions, all held out of ONE training set (so the regions do not multiply the
  models to train), with ``test_size / R`` test functions drawn from each:

  * ``support_syntax``: region r is the programs containing one of a seeded set of
    pq-grams G_r (the sets are disjoint); its test programs contain a gram of G_r and of
    no other region, so each test program has a tree pattern never seen in training and
    belongs to one region only.  ``region_share`` is a share of the pool's *programs*.
  * ``support_semantics``: region r is a ball of the semantic space: the ``region_share``
    of the pool's *functions* nearest to a seeded centre function, among the functions no
    earlier region took (a semantic region is a set of functions, so it holds every
    program of each; measured in programs, a ball around a constant would be a single
    giant class).  Its test programs use only pq-grams that occur in training (new
    behaviour, familiar syntax).

  Disjoint regions rather than independent draws: one training set can then hold out all
  of them, so R regions cost one model per seed instead of R, and no region's test
  functions can leak through another region's training set.  The price: that training
  set misses R regions, not one (R x region_share of the pool), which the splits
  notebook shows.  Results are averaged over the regions, and their spread is reported.

Leakage guard: no semantic class of a held-out test program occurs in its training set
(otherwise a twin leaks the answer).  It always guards the support splits (against the
test functions of every region), and the iid and density splits too with
``splits.guard: all``; each split reports how many training candidates it removed (per
region for the support splits), and :func:`test_twins` counts the twins an unguarded
split keeps.  Every random stream derives from (split name, seed) through
:func:`synthgen.seeding.rng_for`, so splits do not depend on the order they run in.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import scipy.sparse as sp
from sklearn.cluster import MiniBatchKMeans
from sklearn.neighbors import NearestNeighbors

from synthgen.split_files import (  # noqa: F401  (the split files and names, re-exported)
    DENSITY_SAMPLERS, DENSITY_SPLITS, SPLIT_NAMES, SUPPORT_SPLITS, read_ood, read_split, read_validation, test_set_of,
    write_ood,
    write_split,
)
from synthgen.ood import semantic_ood_distance, syntactic_ood_distance
from synthgen.pqgram import pq_nearest_distance
from synthgen.seeding import rng_for
from synthgen.universe import Universe

QUERY_BLOCK = 4_194_304  # rows per block of nearest-neighbour queries (memory: a few hundred MB)
JOINT_BLOCK = 1 << 20  # rows per block of joint_coords' gathers and squares (float32, 32 dims: 128 MB)


class SplitError(ValueError):
    """A split configuration that cannot be satisfied; the message names the split and
    the numbers."""


@dataclass
class SplitInputs:
    """What the samplers read: the universe and its two metric spaces."""

    universe: Universe
    syntax: np.ndarray  # (n_programs, d) syntactic coordinates
    semantics: np.ndarray  # (n_classes, d) semantic coordinates, one point per class
    profiles: sp.csr_matrix  # (n_programs, n_grams) pq-gram counts

    def semantic_coords(self, ids: np.ndarray) -> np.ndarray:
        return self.semantics[self.universe.semantic_class[ids]]

    def joint_coords(self, ids: np.ndarray) -> np.ndarray:
        """Both spaces side by side, each scaled to unit total variance, so that neither
        dominates a distance."""
        ids = np.asarray(ids)
        n, d_syntax = len(ids), self.syntax.shape[1]
        out = np.empty((n, d_syntax + self.semantics.shape[1]), dtype=np.float32)
        parts = ((out[:, :d_syntax], self.syntax, lambda rows: rows),
                 (out[:, d_syntax:], self.semantics, lambda rows: self.universe.semantic_class[rows]))
        for part, coords, point_of in parts:
            # The spaces are float32 on disk, so each part is centred and scaled in place in
            # its columns of the result, filled and squared a block of rows at a time: at
            # the paper profile's 20M programs each whole-part temporary (a gathered copy,
            # the centred copy, its square, the quotient) held another 2.6 GB.  The
            # arithmetic is the one-shot version's, element by element (same dtype, same
            # reductions over the same layout), so the bits are too; tests check it.
            work = part if coords.dtype == np.float32 else np.empty((n, coords.shape[1]), coords.dtype)
            for start in range(0, n, JOINT_BLOCK):
                work[start : start + JOINT_BLOCK] = coords[point_of(ids[start : start + JOINT_BLOCK])]
            work -= work.mean(axis=0)
            squares = np.empty(n, dtype=work.dtype)  # each row's squared length
            for start in range(0, n, JOINT_BLOCK):
                squares[start : start + JOINT_BLOCK] = (work[start : start + JOINT_BLOCK] ** 2).sum(axis=1)
            work /= max(np.sqrt(squares.mean()), 1e-12)
            if work is not part:  # another dtype (a test's float64 coordinates): cast once
                part[:] = work
        return out


@dataclass
class Split:
    name: str
    family: str
    train: np.ndarray  # sorted program ids
    test: np.ndarray  # sorted program ids
    guard_removed: int = 0  # training candidates dropped: their class occurs in the test set
    filter_removed: int = 0  # test candidates dropped by the split's own condition
    notes: dict = field(default_factory=dict)
    guarded: bool = True  # whether the leakage guard ran (always, for held-out splits)
    region: np.ndarray | None = None  # per test program (aligned with ``test``): its held-out region, 0..R-1
    validation: np.ndarray | None = None  # iid only: sorted ids of the validation programs (one per function)

    def __post_init__(self) -> None:
        if self.region is None:
            self.region = np.zeros(len(self.test), dtype=np.int64)

    @property
    def n_regions(self) -> int:
        return int(self.region.max()) + 1 if len(self.region) else 0


def test_twins(s: Split, universe: Universe) -> int:
    """Test programs whose semantic class occurs in the training set (0 when guarded)."""
    return int(np.isin(universe.semantic_class[s.test], universe.semantic_class[s.train]).sum())


# --- building blocks ----------------------------------------------------------------


def candidate_pool(universe: Universe, pool: str = "representatives", min_size: int = 1) -> np.ndarray:
    """Program ids that splits may use: in bound and at least ``min_size`` nodes; with
    ``pool="representatives"`` only the smallest program of each semantic class."""
    if pool == "representatives":
        ids = np.sort(universe.representatives()).astype(np.int64)
    elif pool == "programs":
        ids = np.flatnonzero(universe.semantic_class >= 0)
    else:
        raise ValueError(f"unknown pool {pool!r}")
    return ids[universe.size[ids] >= min_size]


def draw(rng: np.random.Generator, ids: np.ndarray, n: int, split: str, what: str) -> np.ndarray:
    """``n`` distinct ids chosen uniformly, sorted; a clear error if there are too few."""
    if n > len(ids):
        raise SplitError(f"split {split}: {what} needs {n} programs but only {len(ids)} are available")
    return np.sort(rng.choice(ids, size=n, replace=False))


def draw_tests(rng: np.random.Generator, universe: Universe, candidates: np.ndarray, n: int, cap: int, split: str,
               what: str, weight: np.ndarray | None = None, taken: np.ndarray | None = None,
               blocked: np.ndarray | None = None) -> np.ndarray:
    """``n`` test programs from ``candidates`` holding each semantic class at most ``cap``
    times, sorted.

    The candidates are put in a seeded random order, uniform or (with ``weight``) weighted
    without replacement (Efraimidis-Spirakis keys: the order of successive weighted draws),
    and taken in that order, passing over a program whose class the test set already holds
    ``cap`` times.  The first ``n`` programs of an uncapped draw are exactly
    ``rng.choice``'s distribution; the cap changes only which function a repeat would have
    been.  ``taken``: class counts already used by earlier draws of the same split (the
    cap holds over all of its regions); updated in place."""
    candidates = np.asarray(candidates, dtype=np.int64)
    if weight is None:
        keys = rng.random(len(candidates))
    else:
        keys = rng.exponential(size=len(candidates)) / np.maximum(np.asarray(weight, dtype=np.float64), 1e-300)
    order = candidates[np.argsort(keys, kind="stable")]
    classes = universe.semantic_class[order].astype(np.int64)
    already = np.zeros(len(order), dtype=np.int64) if taken is None else taken[classes]
    # the how-many-th program of its class each one is, in drawing order
    rank = pd.Series(classes).groupby(classes).cumcount().to_numpy()
    allowed = already + rank < cap
    if blocked is not None and len(blocked):
        allowed &= ~np.isin(classes, blocked)
    keep = order[allowed][:n]
    if len(keep) < n:
        distinct = len(np.unique(classes))
        raise SplitError(f"split {split}: {what} needs {n} test functions but only {len(keep)} are available "
                         f"({len(candidates)} programs of {distinct} functions, at most {cap} per function)")
    if taken is not None:
        np.add.at(taken, universe.semantic_class[keep], 1)
    return np.sort(keep)


def split_evenly(n: int, parts: int) -> list[int]:
    """``n`` as ``parts`` near-equal counts, the larger ones first."""
    return [n // parts + (r < n % parts) for r in range(parts)]


def leakage_guard(universe: Universe, candidates: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, int]:
    """Drop training candidates whose semantic class occurs among the test programs."""
    test_classes = np.unique(universe.semantic_class[test])
    keep = ~np.isin(universe.semantic_class[candidates], test_classes)
    return candidates[keep], int((~keep).sum())


def water_fill(capacity: np.ndarray, n: int) -> np.ndarray:
    """Split ``n`` draws over cells as evenly as their capacities allow: every cell gets
    the same quota, cells smaller than it give all they have, ties broken by cell order."""
    if n > capacity.sum():
        raise ValueError(f"{n} draws exceed the {capacity.sum()} available")
    quota = np.zeros_like(capacity)
    left = n
    open_ = capacity > 0
    while left > 0:
        share = left // open_.sum()
        if share == 0:
            # fewer draws left than open cells: one more each for the first cells
            idx = np.flatnonzero(open_)[:left]
            quota[idx] += 1
            break
        add = np.minimum(capacity - quota, share) * open_
        quota += add
        left -= int(add.sum())
        open_ = quota < capacity
    return quota


def seeded_rows(n: int, sample: int | None, rng: np.random.Generator) -> np.ndarray | None:
    """Sorted indices of a seeded sample of ``sample`` of ``n`` rows, or None (use every row,
    and draw nothing from ``rng``) when ``sample`` is None or not below ``n``."""
    if sample is None or n <= sample:
        return None
    return np.sort(rng.choice(n, size=sample, replace=False))


def diverse_sample(coords: np.ndarray, n: int, n_cells: int, rng: np.random.Generator,
                   fit_sample: int | None = None) -> np.ndarray:
    """Indices of ``n`` rows of ``coords`` spread evenly over ``n_cells`` k-means cells.

    Above ``fit_sample`` rows the cells are fitted on a seeded sample of that many rows and
    every row is then assigned to its nearest centre, in blocks (for the paper profile's
    20M programs, where a fit on every row would dominate the splits stage)."""
    n_cells = min(n_cells, len(coords))
    km = MiniBatchKMeans(n_clusters=n_cells, random_state=int(rng.integers(2**31)), n_init=3, batch_size=4096)
    fit_rows = seeded_rows(len(coords), fit_sample, rng)
    if fit_rows is None:
        labels = km.fit(coords).labels_
    else:
        km.fit(coords[fit_rows])
        labels = np.concatenate([km.predict(coords[start : start + QUERY_BLOCK])
                                 for start in range(0, len(coords), QUERY_BLOCK)])
    quota = water_fill(np.bincount(labels, minlength=n_cells), n)
    order = rng.permutation(len(coords))  # random within each cell
    by_cell = order[np.argsort(labels[order], kind="stable")]
    starts = np.concatenate([[0], np.cumsum(np.bincount(labels, minlength=n_cells))])
    picks = [by_cell[starts[c] : starts[c] + quota[c]] for c in range(n_cells)]
    return np.sort(np.concatenate(picks))


def kth_neighbour_distance(coords: np.ndarray, k: int, reference: int, rng: np.random.Generator) -> np.ndarray:
    """Distance from each row to its k-th nearest neighbour among a random ``reference``
    subset of the rows (itself excluded): a local-sparseness scale that costs
    len(coords) x reference distances instead of len(coords) squared."""
    n = len(coords)
    ref = np.sort(rng.choice(n, size=min(reference, n), replace=False))
    k = min(k, len(ref) - 1)
    nn = NearestNeighbors(n_neighbors=k + 1, algorithm="brute").fit(coords[ref])
    in_ref = np.zeros(n, bool)
    in_ref[ref] = True
    out = np.empty(n, dtype=np.float64)
    # queries in blocks, keeping one distance per row (the default profile is one block)
    for start in range(0, n, QUERY_BLOCK):
        rows = slice(start, min(start + QUERY_BLOCK, n))
        dist, _ = nn.kneighbors(coords[rows])
        # a reference row finds itself at distance 0 first: its k-th neighbour is one further
        out[rows] = np.where(in_ref[rows], dist[:, k], dist[:, k - 1])
    return out


def programs_by_gram(profiles: sp.csr_matrix, pool: np.ndarray, block: int = 1 << 20) -> tuple[np.ndarray, np.ndarray]:
    """For each pq-gram, the positions in ``pool`` of the programs holding it, ascending:
    ``(indptr, positions)``, the structure of ``(profiles[pool] > 0).tocsc()``.

    Built by a counting sort over blocks of ``block`` pool programs, so that only the
    positions (4 bytes per stored count) are held whole: the one-shot version held a copy
    of the pool's profiles, its boolean copy and the CSC result together (13 bytes per
    stored count: 5 GB for the paper profile's 384M).  Tests check that both agree."""
    pool = np.asarray(pool)
    n_grams = profiles.shape[1]
    rows = lambda start: profiles[pool[start : start + block]]  # noqa: E731 (a block of the pool's profiles)
    df = np.zeros(n_grams, dtype=np.int64)
    for start in range(0, len(pool), block):
        part = rows(start)
        df += np.bincount(part.indices[part.data > 0], minlength=n_grams)
    indptr = np.concatenate([[0], np.cumsum(df)])
    positions = np.empty(indptr[-1], dtype=np.int32 if len(pool) < 2**31 else np.int64)
    filled = indptr[:-1].copy()  # the next free slot of each gram
    for start in range(0, len(pool), block):
        part = rows(start)
        keep = part.data > 0
        grams = part.indices[keep]
        owner = np.repeat(np.arange(start, start + part.shape[0]), np.diff(part.indptr))[keep]
        order = np.argsort(grams, kind="stable")  # by gram; within a gram, by position
        grams, owner = grams[order], owner[order]
        per_gram = np.bincount(grams, minlength=n_grams)
        first = np.cumsum(per_gram) - per_gram  # where each gram's run starts in `grams`
        positions[filled[grams] + np.arange(len(grams)) - first[grams]] = owner
        filled += per_gram
    return indptr, positions


def gram_presence(profiles: sp.csr_matrix, ids: np.ndarray) -> np.ndarray:
    """Boolean per pq-gram: does it occur in any of the programs ``ids``?"""
    return np.asarray(profiles[ids].sum(axis=0)).ravel() > 0


# --- the splits -----------------------------------------------------------------------


@dataclass
class IIDSplit:
    train_size: int
    test_size: int
    seed: int
    guard: bool = True
    tasks_per_function: int = 1
    name: str = "iid"
    blocked: np.ndarray | None = None  # classes no test program may compute (the validation functions)

    def split(self, inputs: SplitInputs, pool: np.ndarray) -> Split:
        rng = rng_for(self.seed, "splits", self.name)
        test = draw_tests(rng, inputs.universe, pool, self.test_size, self.tasks_per_function, self.name, "the test set",
                          blocked=self.blocked)
        rest = np.setdiff1d(pool, test)
        removed = 0
        if self.guard:
            rest, removed = leakage_guard(inputs.universe, rest, test)
        train = draw(rng, rest, self.train_size, self.name, "the training set")
        return Split(self.name, "iid", train, test, guard_removed=removed, guarded=self.guard)


@dataclass
class DensityFamily:
    """One shifted test set, four equal-size training sets drawn from the rest."""

    train_size: int
    test_size: int
    seed: int
    cells: int = 256
    neighbours: int = 10
    tilt: float = 1.0
    reference: int = 20_000
    fit_sample: int | None = None
    guard: bool = True
    tasks_per_function: int = 1
    samplers: tuple[str, ...] = DENSITY_SAMPLERS
    blocked: np.ndarray | None = None

    def shifted_test(self, inputs: SplitInputs, pool: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Test programs drawn with probability proportional to (local sparseness)^tilt:
        the distance to the k-th nearest of a random reference subset of the pool, in
        the joint space (a weighted draw without replacement, at most
        ``tasks_per_function`` programs per function).  Above ``fit_sample`` pool programs,
        sparseness is measured on a seeded uniform sample of that many and the test set is
        drawn from it (a tilted draw from a uniform sample is, up to sampling noise, a
        tilted draw from the pool); then ``weight`` holds one value per sampled program,
        not per pool program."""
        rng = rng_for(self.seed, "splits", "density", "test")
        if self.test_size > len(pool):
            raise SplitError(f"split density: the test set needs {self.test_size} programs but the pool has {len(pool)}")
        rows = seeded_rows(len(pool), self.fit_sample, rng)
        candidates = pool if rows is None else pool[rows]
        scale = kth_neighbour_distance(inputs.joint_coords(candidates), self.neighbours, self.reference, rng)
        weight = np.power(np.maximum(scale, 1e-9), self.tilt)
        test = draw_tests(rng, inputs.universe, candidates, self.test_size, self.tasks_per_function, "density",
                          "the shifted test set", weight=weight, blocked=self.blocked)
        return test, weight

    def split(self, inputs: SplitInputs, pool: np.ndarray) -> list[Split]:
        test, _ = self.shifted_test(inputs, pool)
        rest, removed = np.setdiff1d(pool, test), 0
        if self.guard:
            rest, removed = leakage_guard(inputs.universe, rest, test)
        if self.train_size > len(rest):
            raise SplitError(
                f"split density: the training sets need {self.train_size} programs but only {len(rest)} remain "
                f"after the test set ({self.test_size}) and the leakage guard ({removed})"
            )
        out = []
        for sampler in self.samplers:
            name = f"density_{sampler}"
            rng = rng_for(self.seed, "splits", name)
            if sampler == "random":
                train = draw(rng, rest, self.train_size, name, "the training set")
            else:
                coords = {
                    "diverse_syntax": lambda: inputs.syntax[rest],
                    "diverse_semantics": lambda: inputs.semantic_coords(rest),
                    "diverse_both": lambda: inputs.joint_coords(rest),
                }[sampler]()
                train = np.sort(rest[diverse_sample(coords, self.train_size, self.cells, rng, self.fit_sample)])
            out.append(Split(name, "density", train, test, guard_removed=removed, notes={"sampler": sampler},
                             guarded=self.guard))
        return out


def _guard_regions(universe: Universe, rest: np.ndarray, tests: list[np.ndarray]) -> tuple[np.ndarray, list[int]]:
    """The leakage guard against the test functions of every region at once, and how many
    training candidates each region's test functions removed (a candidate whose class is a
    test function of two regions counts for both)."""
    classes = universe.semantic_class[rest]
    per_region = [int(np.isin(classes, np.unique(universe.semantic_class[t])).sum()) for t in tests]
    kept, _ = leakage_guard(universe, rest, np.concatenate(tests))
    return kept, per_region


def _assemble(name: str, train: np.ndarray, tests: list[np.ndarray], **facts) -> Split:
    """A support split from its regions' test sets: test ids sorted, each with its region."""
    test = np.concatenate(tests)
    region = np.concatenate([np.full(len(t), r, dtype=np.int64) for r, t in enumerate(tests)])
    order = np.argsort(test, kind="stable")
    return Split(name, "support", train, test[order], region=region[order], **facts)


@dataclass
class SupportSyntaxSplit:
    """Hold out R disjoint sets of pq-grams: every program containing one of them."""

    train_size: int
    test_size: int
    seed: int
    region_share: float = 0.1
    regions: int = 1
    tasks_per_function: int = 1
    name: str = "support_syntax"
    blocked: np.ndarray | None = None

    def held_out_grams(self, inputs: SplitInputs, pool: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        """(the grams of each region, (R, len(pool)) membership of the pool's programs).

        Grams are taken in one seeded order; region r takes the next grams not yet taken
        until the programs containing any of them make up ``region_share`` of the pool (a
        gram that would overshoot by 25% is passed over, left for the next region)."""
        rng = rng_for(self.seed, "splits", self.name)
        indptr, holders = programs_by_gram(inputs.profiles, pool)
        df = np.diff(indptr)
        target = self.region_share * len(pool)
        order = rng.permutation(np.flatnonzero((df > 0) & (df <= target)))
        used = np.zeros(len(df), dtype=bool)
        grams, members = [], np.zeros((self.regions, len(pool)), dtype=bool)
        for r in range(self.regions):
            region, count, held = members[r], 0, []
            for gram in order:
                if used[gram]:
                    continue
                rows = holders[indptr[gram] : indptr[gram + 1]]
                new = int((~region[rows]).sum())
                if count + new > 1.25 * target:
                    continue
                region[rows], count, used[gram] = True, count + new, True
                held.append(int(gram))
                if count >= target:
                    break
            grams.append(np.array(sorted(held), dtype=np.int64))
        return grams, members

    def split(self, inputs: SplitInputs, pool: np.ndarray) -> Split:
        grams, members = self.held_out_grams(inputs, pool)
        u = inputs.universe
        rng = rng_for(self.seed, "splits", self.name, "draw")
        exclusive = members & (members.sum(axis=0) == 1)  # in one region only: its novelty is that region's
        taken = np.zeros(u.n_classes, dtype=np.int64)
        tests = [draw_tests(rng, u, pool[exclusive[r]], n, self.tasks_per_function, self.name,
                            f"held-out region {r} (test set)", taken=taken, blocked=self.blocked)
                 for r, n in enumerate(split_evenly(self.test_size, self.regions))]
        rest, removed = _guard_regions(u, pool[~members.any(axis=0)], tests)
        train = draw(rng, rest, self.train_size, self.name, "the training set")
        notes = {"regions": [{"held_out_grams": g.tolist(), "region_size": int(m.sum()),
                              "exclusive_size": int(e.sum()), "guard_removed": k}
                             for g, m, e, k in zip(grams, members, exclusive, removed)],
                 "held_out_size": int(members.any(axis=0).sum())}
        return _assemble(self.name, train, tests, guard_removed=int(sum(removed)), notes=notes)


@dataclass
class SupportSemanticsSplit:
    """Hold out R disjoint balls of the semantic space; keep only test programs whose every
    pq-gram occurs in training."""

    train_size: int
    test_size: int
    seed: int
    region_share: float = 0.1
    regions: int = 1
    tasks_per_function: int = 1
    name: str = "support_semantics"
    blocked: np.ndarray | None = None

    def held_out_functions(self, inputs: SplitInputs, pool: np.ndarray) -> tuple[list[np.ndarray], list[int]]:
        """(the semantic classes of each region, each region's centre class).

        Region r: a centre drawn uniformly from the pool's functions that no earlier region
        took, and the ``region_share`` of the pool's functions nearest to it among those
        (ties by class id)."""
        rng = rng_for(self.seed, "splits", self.name)
        classes = np.unique(inputs.universe.semantic_class[pool])
        size = max(1, int(round(self.region_share * len(classes))))
        if self.regions * size > len(classes):
            raise SplitError(f"split {self.name}: {self.regions} regions of {size} functions need more than the "
                             f"pool's {len(classes)} functions")
        free = np.ones(len(classes), dtype=bool)
        regions, centres = [], []
        for _ in range(self.regions):
            available = np.flatnonzero(free)
            centre = int(available[rng.integers(len(available))])
            dist = np.linalg.norm(inputs.semantics[classes[available]] - inputs.semantics[classes[centre]], axis=1)
            inside = available[np.lexsort((classes[available], dist))[:size]]
            free[inside] = False
            regions.append(np.sort(classes[inside]))
            centres.append(int(classes[centre]))
        return regions, centres

    def split(self, inputs: SplitInputs, pool: np.ndarray) -> Split:
        u = inputs.universe
        regions, centres = self.held_out_functions(inputs, pool)
        rng = rng_for(self.seed, "splits", self.name, "draw")
        pool_classes = u.semantic_class[pool]
        members = np.stack([np.isin(pool_classes, r) for r in regions])
        # A semantic region holds every program of its functions, so the guard has nothing
        # left to remove; it runs anyway, against the whole regions, before the test draw,
        # so that the training set (and with it the set of familiar grams) is fixed first.
        rest, removed = leakage_guard(u, pool[~members.any(axis=0)], pool[members.any(axis=0)])
        train = draw(rng, rest, self.train_size, self.name, "the training set")
        seen = gram_presence(inputs.profiles, train)
        taken = np.zeros(u.n_classes, dtype=np.int64)
        tests, facts, smallest = [], [], u.representatives()
        for r, n in enumerate(split_evenly(self.test_size, self.regions)):
            region = pool[members[r]]
            familiar = np.asarray((inputs.profiles[region][:, ~seen] > 0).sum(axis=1)).ravel() == 0
            tests.append(draw_tests(rng, u, region[familiar], n, self.tasks_per_function, self.name,
                                    f"held-out region {r} with every pq-gram seen in training (test set)", taken=taken,
                                    blocked=self.blocked))
            facts.append({"centre_class": centres[r], "centre_program": int(smallest[centres[r]]),
                          "functions": int(len(regions[r])), "region_size": int(len(region)),
                          "filter_removed": int((~familiar).sum()), "guard_removed": 0})
        return _assemble(self.name, train, tests, guard_removed=removed,
                         filter_removed=int(sum(f["filter_removed"] for f in facts)),
                         notes={"regions": facts, "held_out_size": int(members.any(axis=0).sum())})


# --- the whole set of splits ------------------------------------------------------------


def make_splits(inputs: SplitInputs, cfg, seed: int) -> list[Split]:
    """All splits configured in ``params.splits`` (a :class:`SplitsParams`)."""
    pool = candidate_pool(inputs.universe, cfg.pool, cfg.min_size)
    validation, validation_side = draw_validation(inputs.universe, pool, cfg.validation_size, cfg.test_size, seed)
    pool = np.setdiff1d(pool, validation)  # no split trains or tests on a validation program
    blocked = np.unique(inputs.universe.semantic_class[validation])  # nor tests a validation function
    common = dict(train_size=cfg.train_size, test_size=cfg.test_size, seed=seed, tasks_per_function=cfg.tasks_per_function,
                  blocked=blocked)
    guard_all = cfg.guard == "all"  # held-out (support) splits are always guarded
    # iid's test functions come from the other side of the coin than the validation functions
    splits = [IIDSplit(**{**common, "blocked": validation_side}, guard=guard_all).split(inputs, pool)]
    splits[0].validation = validation
    splits += DensityFamily(
        **common, cells=cfg.density.cells, neighbours=cfg.density.neighbours, tilt=cfg.density.tilt,
        reference=cfg.density.reference, fit_sample=cfg.density.fit_sample, guard=guard_all,
    ).split(inputs, pool)
    support = dict(region_share=cfg.support.region_share, regions=cfg.support.regions)
    splits.append(SupportSyntaxSplit(**common, **support).split(inputs, pool))
    splits.append(SupportSemanticsSplit(**common, **support).split(inputs, pool))
    for s in splits:
        check_invariants(s, inputs, cfg.tasks_per_function)
    check_validation(splits, inputs.universe)
    return splits


def draw_validation(universe: Universe, pool: np.ndarray, n: int, n_test: int,
                    seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` validation programs, one per function, drawn from the pool the way iid's
    ``n_test`` test programs are, and the functions on the validation side of the coin.

    A seeded coin first puts every function on the validation side (with probability
    ``n / (n + n_test)``) or on iid's test side; the validation set is then drawn from its
    side's pool programs exactly as iid's test set is drawn from the other side's
    (:func:`draw_tests`: uniform over programs, one per function), and iid's test set may
    not draw a validation-side function (the second array, sorted class ids).  So the two
    sets are samples of the same population (for ``n == n_test``, exchangeable ones):
    same strata, same share of functions with twins in training.  Drawing the validation
    set first from the whole pool instead would take most of the commonest functions
    (a program-uniform draw without replacement favours them most at its start) and leave
    iid's test set without them.

    What the calibration of the synthesizer reads (``synthgen.calibration``), never a test
    set: no split trains on a validation program, and no split's test set holds a
    validation function.  Like iid's test programs, a validation function may have twins
    (other programs computing it) in a training set; the calibration reports both kinds.
    Its own random stream, so the other splits' draws do not depend on ``n``."""
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    rng = rng_for(seed, "splits", "validation")
    n_classes = int(universe.semantic_class.max()) + 1
    side = rng.random(n_classes) < n / (n + n_test)  # True: the function is on the validation side
    candidates = pool[side[universe.semantic_class[pool]]]
    validation = draw_tests(rng, universe, candidates, n, 1, "iid", "the validation set")
    return validation, np.flatnonzero(side).astype(np.int64)


def check_validation(splits: list[Split], universe: Universe) -> None:
    """The validation set's promises (a violation is a bug, so it raises): it is iid's,
    one program per function, absent from every training set, and shares no function
    with any test set."""
    validation = next(s.validation for s in splits if s.name == "iid")
    classes = universe.semantic_class[validation]
    assert len(np.unique(classes)) == len(validation), "validation: a function occurs twice"
    for s in splits:
        assert not np.isin(validation, s.train).any(), f"{s.name}: trains on a validation program"
        assert not np.isin(universe.semantic_class[s.test], classes).any(), f"{s.name}: tests a validation function"
        assert s.name == "iid" or s.validation is None, f"{s.name}: only iid holds the validation set"


def check_invariants(s: Split, inputs: SplitInputs, tasks_per_function: int | None = None) -> None:
    """The promises every split keeps; a violation is a bug, so it raises."""
    u = inputs.universe
    assert len(np.intersect1d(s.train, s.test)) == 0, f"{s.name}: train and test overlap"
    assert len(s.region) == len(s.test), f"{s.name}: one region per test program"
    if tasks_per_function is not None:
        assert np.bincount(u.semantic_class[s.test]).max(initial=0) <= tasks_per_function, \
            f"{s.name}: a function occurs more than {tasks_per_function} times in the test set"
    if s.guarded or s.family == "support":
        assert not np.isin(u.semantic_class[s.train], u.semantic_class[s.test]).any(), f"{s.name}: a test class leaks"
    if s.name == "support_semantics":
        seen = gram_presence(inputs.profiles, s.train)
        assert not (inputs.profiles[s.test][:, ~seen] > 0).sum(), f"{s.name}: a test pq-gram is unseen"
        test_classes = u.semantic_class[s.test]
        for r in range(s.n_regions):  # functions of different regions never mix
            others = test_classes[s.region != r]
            assert not np.isin(test_classes[s.region == r], others).any(), f"{s.name}: regions share a function"
    if s.name == "support_syntax":
        seen = gram_presence(inputs.profiles, s.train)
        novel = np.asarray((inputs.profiles[s.test][:, ~seen] > 0).sum(axis=1)).ravel()
        assert (novel > 0).all(), f"{s.name}: a test program has no unseen pq-gram"
        regions = s.notes.get("regions")
        if regions:
            grams = [np.asarray(r["held_out_grams"], dtype=np.int64) for r in regions]
            assert len(np.unique(np.concatenate(grams))) == sum(map(len, grams)), f"{s.name}: regions share a gram"
            holds = [np.asarray((inputs.profiles[s.test][:, g] > 0).sum(axis=1)).ravel() > 0 for g in grams]
            for r in range(len(grams)):
                mine = s.region == r
                assert holds[r][mine].all(), f"{s.name}: a test program of region {r} lacks its region's grams"
                assert not any(h[mine].any() for q, h in enumerate(holds) if q != r), \
                    f"{s.name}: a test program of region {r} holds another region's gram"


# --- annotation, summary, storage ---------------------------------------------------------


def ood_frame(s: Split, inputs: SplitInputs) -> pd.DataFrame:
    """The OOD distances of the test items: to the nearest training program in the
    syntactic space (``ood_syntax``) and by exact pq-gram distance (``ood_pqgram``), and to
    the nearest training class in the semantic space (``ood_semantics``).

    Both syntactic columns are kept because a 32-dimensional syntactic space ranks pq-gram
    distances only loosely (notebook 03 measures it): the exact distance is the one the
    generalization map uses.  They are written apart from the split itself
    (:func:`write_ood`): an annotation of the test items, not part of what a model trains
    or is evaluated on, so another syntactic space changes them without changing the split
    files (nor rerunning the training that reads them)."""
    u = inputs.universe
    return pd.DataFrame(
        {
            "program_id": s.test,
            "ood_syntax": syntactic_ood_distance(inputs.syntax, s.train, s.test),
            "ood_pqgram": pq_nearest_distance(inputs.profiles[s.test], inputs.profiles[s.train]),
            "ood_semantics": semantic_ood_distance(inputs.semantics, u.semantic_class, s.train, s.test),
        }
    )


def load_split_inputs(universe_dir: str | Path, spaces_dir: str | Path) -> SplitInputs:
    """The universe and its spaces, as the earlier stages wrote them."""
    from synthgen.spaces import SEMANTICS_FILE, SYNTAX_FILE, read_profiles
    from synthgen.universe import read_universe

    spaces_dir = Path(spaces_dir)
    return SplitInputs(
        universe=read_universe(universe_dir),
        syntax=np.load(spaces_dir / SYNTAX_FILE),
        semantics=np.load(spaces_dir / SEMANTICS_FILE),
        profiles=read_profiles(spaces_dir).counts,
    )


def training_overlap(splits: list[Split]) -> pd.DataFrame:
    """The share of each split's training programs that another's training set also holds
    (rows: the split, columns: the other).  For the density family it says whether the
    samplers still draw different training sets from one candidate pool: a sampler whose
    set is nearly random's is no comparison."""
    shared = {a.name: {b.name: len(np.intersect1d(a.train, b.train, assume_unique=True)) / max(len(a.train), 1)
                       for b in splits} for a in splits}
    return pd.DataFrame(shared).T


def summary_table(splits: list[Split], frames: dict[str, pd.DataFrame], universe: Universe) -> pd.DataFrame:
    """One row per (split, part): sizes, guard counts, OOD distance medians and the
    salient variables (size, depth, operator use, constants)."""
    from synthgen.census import salient_summary, symbol_counts

    counts = symbol_counts(universe)
    rows = []
    for s in splits:
        for part, ids in (("train", s.train), ("test", s.test)):
            row = {"split": s.name, "family": s.family, "part": part, **salient_summary(universe, ids, counts)}
            row["guarded"] = s.guarded
            row["guard_removed"] = s.guard_removed
            row["test_twins"] = test_twins(s, universe)
            row["filter_removed"] = s.filter_removed
            if part == "test":
                for col in ("ood_syntax", "ood_pqgram", "ood_semantics"):
                    row[f"median_{col}"] = float(frames[s.name][col].median())
            rows.append(row)
    return pd.DataFrame(rows)
