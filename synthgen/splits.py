"""Splits that isolate density shift and support shift (STUDY.md section 4).

Every split draws its training and test programs from one *pool* of candidates: every
in-bound program (``splits.pool: programs``, the default), or one program per semantic
class, its smallest (``representatives``: the ExeDec habit of deduplicating by outputs;
at our compute it put every split at the pass@1 floor, see the README).  Each split is a small object in the shape
of scikit-learn's splitters: parameters in ``__init__``, then ``split(inputs)`` returns
a :class:`Split` with sorted program ids.

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
- support family: ``support_syntax`` holds out every program that contains one of a
  seeded set of pq-grams, so each test program has a tree pattern never seen in training;
  ``support_semantics`` holds out a ball of the semantic space and keeps only test
  programs all of whose pq-grams occur in training (new behaviour, familiar syntax).

Leakage guard: no semantic class of a held-out test program occurs in its training set
(otherwise a twin leaks the answer).  It always guards the support splits, and the iid and
density splits too with ``splits.guard: all``; each split reports how many training
candidates it removed, and :func:`test_twins` counts the twins an unguarded split keeps.  Every random stream derives from (split name, seed) through
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

from synthgen.atomic import atomic_path
from synthgen.ood import semantic_ood_distance, syntactic_ood_distance
from synthgen.pqgram import pq_nearest_distance
from synthgen.seeding import rng_for
from synthgen.universe import Universe

DENSITY_SAMPLERS = ("random", "diverse_syntax", "diverse_semantics", "diverse_both")
QUERY_BLOCK = 4_194_304  # rows per block of nearest-neighbour queries (memory: a few hundred MB)


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
        d_syntax, d_semantics = self.syntax.shape[1], self.semantics.shape[1]
        # one float32 result filled block by block: at the paper profile's 20M programs a
        # list of blocks, their hstack and a cast would each hold another copy (5 GB each)
        out = np.empty((len(ids), d_syntax + d_semantics), dtype=np.float32)
        for cols, take in ((slice(0, d_syntax), lambda: self.syntax[ids]),
                           (slice(d_syntax, None), lambda: self.semantic_coords(ids))):
            block = take()
            block = block - block.mean(axis=0)
            out[:, cols] = block / max(np.sqrt((block**2).sum(axis=1).mean()), 1e-12)
            del block
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
    name: str = "iid"

    def split(self, inputs: SplitInputs, pool: np.ndarray) -> Split:
        rng = rng_for(self.seed, "splits", self.name)
        test = draw(rng, pool, self.test_size, self.name, "the test set")
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
    samplers: tuple[str, ...] = DENSITY_SAMPLERS

    def shifted_test(self, inputs: SplitInputs, pool: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Test programs drawn with probability proportional to (local sparseness)^tilt:
        the distance to the k-th nearest of a random reference subset of the pool, in
        the joint space.  Above ``fit_sample`` pool programs, sparseness is measured on a
        seeded uniform sample of that many and the test set is drawn from it (a tilted draw
        from a uniform sample is, up to sampling noise, a tilted draw from the pool); then
        ``weight`` holds one value per sampled program, not per pool program."""
        rng = rng_for(self.seed, "splits", "density", "test")
        if self.test_size > len(pool):
            raise SplitError(f"split density: the test set needs {self.test_size} programs but the pool has {len(pool)}")
        rows = seeded_rows(len(pool), self.fit_sample, rng)
        candidates = pool if rows is None else pool[rows]
        scale = kth_neighbour_distance(inputs.joint_coords(candidates), self.neighbours, self.reference, rng)
        weight = np.power(np.maximum(scale, 1e-9), self.tilt)
        pick = rng.choice(len(candidates), size=self.test_size, replace=False, p=weight / weight.sum())
        return np.sort(candidates[pick]), weight

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


@dataclass
class SupportSyntaxSplit:
    """Hold out every program containing one of a seeded set of pq-grams."""

    train_size: int
    test_size: int
    seed: int
    region_share: float = 0.1
    name: str = "support_syntax"

    def held_out_grams(self, inputs: SplitInputs, pool: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Grams chosen in a seeded order until the programs containing any of them make
        up ``region_share`` of the pool (a gram that would overshoot by 25% is skipped)."""
        rng = rng_for(self.seed, "splits", self.name)
        presence = (inputs.profiles[pool] > 0).tocsc()
        df = np.diff(presence.indptr)
        target = self.region_share * len(pool)
        candidates = np.flatnonzero((df > 0) & (df <= target))
        region = np.zeros(len(pool), bool)
        held: list[int] = []
        for gram in rng.permutation(candidates):
            members = presence.indices[presence.indptr[gram] : presence.indptr[gram + 1]]
            grown = region.copy()
            grown[members] = True
            if grown.sum() > 1.25 * target:
                continue
            region, held = grown, held + [int(gram)]
            if region.sum() >= target:
                break
        return np.array(sorted(held), dtype=np.int64), region

    def split(self, inputs: SplitInputs, pool: np.ndarray) -> Split:
        grams, region = self.held_out_grams(inputs, pool)
        rng = rng_for(self.seed, "splits", self.name, "draw")
        test = draw(rng, pool[region], self.test_size, self.name, "the held-out region (test set)")
        rest, removed = leakage_guard(inputs.universe, pool[~region], test)
        train = draw(rng, rest, self.train_size, self.name, "the training set")
        return Split(
            self.name, "support", train, test, guard_removed=removed,
            notes={"held_out_grams": grams.tolist(), "region_size": int(region.sum())},
        )


@dataclass
class SupportSemanticsSplit:
    """Hold out a ball of the semantic space; keep only test programs whose every pq-gram
    occurs in training."""

    train_size: int
    test_size: int
    seed: int
    region_share: float = 0.1
    name: str = "support_semantics"

    def region(self, inputs: SplitInputs, pool: np.ndarray) -> tuple[np.ndarray, int]:
        """The ``region_share`` of the pool nearest to a seeded centre (ties by id)."""
        rng = rng_for(self.seed, "splits", self.name)
        coords = inputs.semantic_coords(pool)
        centre = int(rng.integers(len(pool)))
        dist = np.linalg.norm(coords - coords[centre], axis=1)
        size = int(round(self.region_share * len(pool)))
        inside = np.zeros(len(pool), bool)
        inside[np.lexsort((pool, dist))[:size]] = True
        return inside, int(pool[centre])

    def split(self, inputs: SplitInputs, pool: np.ndarray) -> Split:
        inside, centre = self.region(inputs, pool)
        rng = rng_for(self.seed, "splits", self.name, "draw")
        region = pool[inside]
        # The guard runs against the whole region, before the test draw, so that the
        # training set (and with it the set of familiar grams) is fixed first.
        rest, removed = leakage_guard(inputs.universe, pool[~inside], region)
        train = draw(rng, rest, self.train_size, self.name, "the training set")
        seen = gram_presence(inputs.profiles, train)
        grams_of_region = inputs.profiles[region] > 0
        familiar = np.asarray(grams_of_region[:, ~seen].sum(axis=1)).ravel() == 0
        test = draw(rng, region[familiar], self.test_size, self.name,
                    "the held-out region with every pq-gram seen in training (test set)")
        return Split(
            self.name, "support", train, test, guard_removed=removed,
            filter_removed=int((~familiar).sum()),
            notes={"centre_program": centre, "region_size": int(len(region))},
        )


# --- the whole set of splits ------------------------------------------------------------


def make_splits(inputs: SplitInputs, cfg, seed: int) -> list[Split]:
    """All splits configured in ``params.splits`` (a :class:`SplitsParams`)."""
    pool = candidate_pool(inputs.universe, cfg.pool, cfg.min_size)
    common = dict(train_size=cfg.train_size, test_size=cfg.test_size, seed=seed)
    guard_all = cfg.guard == "all"  # held-out (support) splits are always guarded
    splits = [IIDSplit(**common, guard=guard_all).split(inputs, pool)]
    splits += DensityFamily(
        **common, cells=cfg.density.cells, neighbours=cfg.density.neighbours, tilt=cfg.density.tilt,
        reference=cfg.density.reference, fit_sample=cfg.density.fit_sample, guard=guard_all,
    ).split(inputs, pool)
    splits.append(SupportSyntaxSplit(**common, region_share=cfg.support.region_share).split(inputs, pool))
    splits.append(SupportSemanticsSplit(**common, region_share=cfg.support.region_share).split(inputs, pool))
    for s in splits:
        check_invariants(s, inputs)
    return splits


def check_invariants(s: Split, inputs: SplitInputs) -> None:
    """The promises every split keeps; a violation is a bug, so it raises."""
    u = inputs.universe
    assert len(np.intersect1d(s.train, s.test)) == 0, f"{s.name}: train and test overlap"
    if s.guarded or s.family == "support":
        assert not np.isin(u.semantic_class[s.train], u.semantic_class[s.test]).any(), f"{s.name}: a test class leaks"
    if s.name == "support_semantics":
        seen = gram_presence(inputs.profiles, s.train)
        assert not (inputs.profiles[s.test][:, ~seen] > 0).sum(), f"{s.name}: a test pq-gram is unseen"
    if s.name == "support_syntax":
        seen = gram_presence(inputs.profiles, s.train)
        novel = np.asarray((inputs.profiles[s.test][:, ~seen] > 0).sum(axis=1)).ravel()
        assert (novel > 0).all(), f"{s.name}: a test program has no unseen pq-gram"


# --- annotation, summary, storage ---------------------------------------------------------


def test_frame(s: Split, inputs: SplitInputs) -> pd.DataFrame:
    """The test items with their OOD distances: to the nearest training program in the
    syntactic space (``ood_syntax``) and by exact pq-gram distance (``ood_pqgram``), and
    to the nearest training class in the semantic space (``ood_semantics``).

    Both syntactic columns are kept because the 32-dimensional SVD space ranks pq-gram
    distances only loosely (notebook 03 measures it): the exact distance is the one the
    generalization map uses."""
    u = inputs.universe
    return pd.DataFrame(
        {
            "program_id": s.test,
            "ood_syntax": syntactic_ood_distance(inputs.syntax, s.train, s.test),
            "ood_pqgram": pq_nearest_distance(inputs.profiles[s.test], inputs.profiles[s.train]),
            "ood_semantics": semantic_ood_distance(inputs.semantics, u.semantic_class, s.train, s.test),
        }
    )


def write_split(s: Split, test: pd.DataFrame, folder: str | Path) -> Path:
    """``<folder>/<name>.parquet``: one row per program, ``part`` = train or test, the OOD
    distances on test rows (NaN on training rows), and the split's facts in the file's
    metadata.  Deterministic bytes."""
    frame = pd.concat(
        [pd.DataFrame({"program_id": s.train}).assign(part="train"), test.assign(part="test")], ignore_index=True
    )
    meta = {"name": s.name, "family": s.family, "guarded": s.guarded, "guard_removed": s.guard_removed,
            "filter_removed": s.filter_removed, "notes": s.notes}
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata({b"synthgen.split": json.dumps(meta, sort_keys=True).encode()})
    target = Path(folder) / f"{s.name}.parquet"
    with atomic_path(target) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return target


def read_split(path: str | Path) -> tuple[np.ndarray, pd.DataFrame, dict]:
    """(training ids, test frame, the split's facts) of a split file."""
    table = pq.read_table(path)
    frame = table.to_pandas()
    train = frame.loc[frame.part == "train", "program_id"].to_numpy()
    test = frame.loc[frame.part == "test"].drop(columns="part").reset_index(drop=True)
    return train, test, json.loads(table.schema.metadata[b"synthgen.split"])


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
