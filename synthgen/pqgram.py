"""pq-gram profiles of program trees (Augsten, Böhlen, Gamper 2005).

The *extended tree* of a tree adds ``p-1`` null ancestors above the root, ``q-1`` null
children before the first and after the last child of every inner node, and ``q`` null
children under every leaf.  A *pq-gram* is a stem of ``p`` labels (an anchor node of the
original tree and its ``p-1`` ancestors, root-most first) followed by a base of ``q``
consecutive children of the anchor.  The *profile* of a tree is the bag of its pq-grams:
a leaf anchors one gram, a node with ``f`` children ``f + q - 1``.  The pq-gram distance
of two trees is ``1 - 2 |P1 ∩ P2| / |P1 ⊎ P2|`` with bag intersection and union; it lies
in ``[0, 1]`` and approximates tree edit distance.

Two builders:

- :func:`pq_profile` walks one tree: plain, slow, the definition written out;
- :func:`universe_profiles` builds the count matrix of every program of a universe at
  once, bottom-up by size, without walking a tree (see :func:`universe_profiles` for how).
  The tests check that the two agree on every program of the smoke universe.

Columns of a count matrix are named by a *vocabulary*: the grams, as tuples of labels,
sorted, with :data:`NULL` for the null label.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import scipy.sparse as sp

from synthgen.grammar import Program
from synthgen.universe import Universe

NULL = "*"  # the null label; no symbol of the DSL can be written "*"

Gram = tuple[str, ...]


def check_pq(p: int, q: int) -> None:
    for name, value in (("p", p), ("q", q)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"pq-grams need integer {name} >= 1, got {value!r}")


# --- one tree at a time ---------------------------------------------------------------


def pq_profile(tree: Program, p: int = 2, q: int = 3) -> Counter[Gram]:
    """The pq-gram profile of ``tree``: a bag (Counter) of ``p + q``-tuples of labels.

    Works for any ordered labelled tree written as a :class:`Program`, whatever the
    number of children of a node."""
    check_pq(p, q)
    profile: Counter[Gram] = Counter()
    stack = [(tree, (NULL,) * (p - 1))]
    while stack:
        node, ancestors = stack.pop()
        stem = ancestors + (node.op,)
        if node.children:
            padded = (NULL,) * (q - 1) + tuple(c.op for c in node.children) + (NULL,) * (q - 1)
            for j in range(len(node.children) + q - 1):
                profile[stem + padded[j : j + q]] += 1
        else:
            profile[stem + (NULL,) * q] += 1
        # a child's ancestors are the last p-1 labels of this node's stem
        stack.extend((child, stem[1:]) for child in node.children)
    return profile


def gram_text(gram: Gram, p: int) -> str:
    """A gram for reading: its stem as a path, then its base, e.g. ``add→mul [* x 2]``."""
    return f"{'→'.join(gram[:p])} [{' '.join(gram[p:])}]"


def pq_distance(a: Counter[Gram], b: Counter[Gram]) -> float:
    """``1 - 2 |a ∩ b| / |a ⊎ b|`` for two profiles, with bag semantics."""
    union = sum(a.values()) + sum(b.values())
    if union == 0:
        return 0.0
    return 1.0 - 2.0 * sum((a & b).values()) / union


# --- count matrices -------------------------------------------------------------------


@dataclass(frozen=True)
class PQProfiles:
    """pq-gram profiles as a sparse count matrix: row ``i`` is the profile of program
    ``i``; column ``j`` counts gram ``vocabulary[j]``."""

    counts: sp.csr_matrix  # int32, sorted indices
    vocabulary: tuple[Gram, ...]  # sorted
    p: int
    q: int

    def select(self, rows: np.ndarray) -> "PQProfiles":
        """The profiles of the given rows (program ids), in that order."""
        return PQProfiles(self.counts[np.asarray(rows)], self.vocabulary, self.p, self.q)

    def reindex(self, vocabulary: Sequence[Gram]) -> "PQProfiles":
        """The same profiles on another vocabulary; grams that it lacks are dropped."""
        vocabulary = tuple(vocabulary)
        if vocabulary == self.vocabulary:
            return self
        column = {g: j for j, g in enumerate(vocabulary)}
        target = np.array([column.get(g, -1) for g in self.vocabulary], dtype=np.int64)
        coo = self.counts.tocoo()
        keep = target[coo.col] >= 0
        counts = sp.csr_matrix(
            (coo.data[keep], (coo.row[keep], target[coo.col[keep]])),
            shape=(coo.shape[0], len(vocabulary)),
            dtype=np.int32,
        )
        counts.sort_indices()
        return PQProfiles(counts, vocabulary, self.p, self.q)


def program_profiles(
    trees: Iterable[Program], p: int = 2, q: int = 3, vocabulary: Sequence[Gram] | None = None
) -> PQProfiles:
    """Profiles of ``trees`` by :func:`pq_profile`, one tree at a time.

    On a given ``vocabulary``, grams it lacks are dropped (a tree from outside the
    universe may have some); without one, the vocabulary is the sorted grams seen."""
    profiles = [pq_profile(t, p, q) for t in trees]
    if vocabulary is None:
        vocabulary = sorted(set().union(*profiles))
    vocabulary = tuple(vocabulary)
    column = {g: j for j, g in enumerate(vocabulary)}
    indptr, indices, data = [0], [], []
    for profile in profiles:
        row = sorted((column[g], n) for g, n in profile.items() if g in column)
        indices.extend(j for j, _ in row)
        data.extend(n for _, n in row)
        indptr.append(len(indices))
    counts = sp.csr_matrix(
        (np.array(data, dtype=np.int32), np.array(indices, dtype=np.int32), np.array(indptr, dtype=np.int64)),
        shape=(len(profiles), len(vocabulary)),
    )
    return PQProfiles(counts, vocabulary, p, q)


def pq_distance_rows(counts: sp.csr_matrix, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Exact pq-gram distance between programs ``a[k]`` and ``b[k]`` of a count matrix."""
    left, right = counts[np.asarray(a)], counts[np.asarray(b)]
    common = np.asarray(left.minimum(right).sum(axis=1)).ravel()
    union = np.asarray(left.sum(axis=1)).ravel() + np.asarray(right.sum(axis=1)).ravel()
    return 1.0 - 2.0 * common / np.maximum(union, 1)


def pq_nearest_distance(query: sp.csr_matrix, train: sp.csr_matrix, block: int = 64) -> np.ndarray:
    """Exact pq-gram distance from each query profile (row) to its nearest training
    profile: the exact counterpart of an OOD distance in the syntactic space."""
    return pq_nearest_distances(query, train, 1, block)[:, 0]


def pq_nearest_distances(query: sp.csr_matrix, train: sp.csr_matrix, k: int, block: int = 64) -> np.ndarray:
    """Exact pq-gram distances from each query profile to its ``k`` nearest training
    profiles, nearest first (shape ``len(query) x k``).

    A bag intersection ``sum_j min(a_j, b_j)`` is a dot product once each count ``c`` is
    written as ``c`` ones (a unary code), so a block of queries against every training
    profile is one sparse-times-dense product; ``block`` bounds its memory
    (``len(train) * block`` floats)."""
    if not 1 <= k <= train.shape[0]:
        raise ValueError(f"k must be from 1 to the {train.shape[0]} training profiles, got {k}")
    width = max(_max_count(query), _max_count(train), 1)
    train_code, query_code = _unary_code(train, width), _unary_code(query, width)
    # Sizes and intersections are small integers, exact in float32; the block is divided
    # in place, so the only rounding is that of one division per pair.
    train_size = np.asarray(train.sum(axis=1), dtype=np.float32).ravel()
    query_size = np.asarray(query.sum(axis=1), dtype=np.float32).ravel()
    out = np.empty((query.shape[0], k))
    for start in range(0, query.shape[0], block):
        stop = min(start + block, query.shape[0])
        share = train_code @ query_code[start:stop].T.toarray()  # |P1 ∩ P2|
        share /= np.maximum(np.add.outer(train_size, query_size[start:stop]), 1)  # / |P1 ⊎ P2|
        top = share.max(axis=0)[None] if k == 1 else -np.sort(-np.partition(share, -k, axis=0)[-k:], axis=0)
        out[start:stop] = (1.0 - 2.0 * top.astype(np.float64)).T
    return out


def pq_intersections(query: sp.csr_matrix, reference: sp.csr_matrix) -> sp.csr_matrix:
    """Bag intersections ``|P_i ∩ R_j|`` of every query profile with every reference
    profile, stored only for the pairs that share a gram (float32, exact integers).  The
    unary code makes them one sparse product, which visits only sharing pairs: three
    random programs in four share no gram.  A row's entries, and their order, depend on
    that row and the reference alone."""
    width = max(_max_count(query), _max_count(reference), 1)
    return sp.csr_matrix(_unary_code(query, width) @ _unary_code(reference, width).T)


def pq_distance_of_jaccard(jaccard: np.ndarray) -> np.ndarray:
    """The pq-gram distance from the weighted Jaccard similarity ``J = |a ∩ b| / |a ∪ b|``
    of two bags: ``1 - 2|a ∩ b| / (|a| + |b|) = 1 - 2J / (1 + J)``, a decreasing function of J."""
    jaccard = np.asarray(jaccard, dtype=np.float64)
    return 1.0 - 2.0 * jaccard / (1.0 + jaccard)


def _max_count(counts: sp.csr_matrix) -> int:
    return int(counts.data.max()) if counts.nnz else 0


def _unary_code(counts: sp.csr_matrix, width: int) -> sp.csr_matrix:
    """Column ``j`` with count ``c`` becomes ones in columns ``j*width .. j*width + c-1``."""
    coo = counts.tocoo()
    level = np.arange(width)
    keep = coo.data[:, None] > level[None, :]
    rows = np.broadcast_to(coo.row[:, None], keep.shape)[keep]
    cols = (coo.col[:, None].astype(np.int64) * width + level[None, :])[keep]
    return sp.csr_matrix(
        (np.ones(len(rows), np.float32), (rows, cols)), shape=(counts.shape[0], counts.shape[1] * width)
    )


# --- the whole universe, bottom-up ----------------------------------------------------


def universe_profiles(universe: Universe, p: int = 2, q: int = 3, chunk: int = 1 << 20) -> PQProfiles:
    """The pq-gram count matrix of every program of ``universe``, built from its table.

    A gram is anchored at a node; its stem needs the node's ``p-1`` ancestors.  Nodes at
    depth ``p-1`` or deeper below a program's root have all of their ancestors inside the
    program, so the grams anchored there do not depend on where the program is used:
    call their bag ``deep(i)``.  A child's deep grams stay deep in its parent, and the
    parent's nodes at depth exactly ``p-1`` join them::

        deep(i)    = deep(left) + deep(right) + anchored(nodes at depth p-1 below i)
        profile(i) = deep(i) + anchored(nodes at depth < p-1 below i, null ancestors above i)

    Children have smaller ids than their parents, so one pass over the sizes computes
    ``deep`` from rows already built, as sparse row selections and sums.  The anchored
    grams of a program come from at most ``2**p - 1`` nodes near its root, reached by
    following child pointers for all programs of a size at once.
    """
    check_pq(p, q)
    symbols = universe.grammar.symbols
    base = len(symbols) + 1  # label codes: 0 is NULL, symbol k is k + 1
    if base ** (p + q) >= 2**63:
        raise ValueError(f"p + q = {p + q} is too large to encode grams of {len(symbols)} symbols in 64 bits")
    label = universe.op.astype(np.int64) + 1
    offsets = universe.size_offsets
    # Every size's programs are taken in chunks of at most `chunk`, so that no step holds
    # more than a chunk's (program, gram) pairs and sparse temporaries: at the paper
    # profile's 20M programs, the whole largest size at once held about four copies of
    # its profiles (12 GB).  A row of the result depends on that program's own grams
    # alone, whatever the chunking, so the matrix is the same (tests check it).
    sizes = [np.arange(offsets[s - 1], offsets[s], dtype=np.int64) for s in range(1, len(offsets))]
    chunks = lambda ids: [ids[k : k + chunk] for k in range(0, len(ids), chunk)]  # noqa: E731

    def anchored(ids: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        return [_anchored_at_depth(universe, label, ids, d, base, q) for d in range(p)]

    # Gram codes: the p + q label codes as digits in base `base`, first label most
    # significant.  Pass 1 generates every (program, gram) of every size; the vocabulary is
    # the set of codes generated, so pass 2 can sum rows on compact columns.  Pass 2
    # generates them again, chunk by chunk, rather than holding them all in between.
    codes = np.unique(np.concatenate([np.zeros(0, np.int64)] + [
        np.unique(c) for ids in sizes for part in chunks(ids) for _, c in anchored(part)]))
    # Columns in the sorted order of the grams written as labels (not codes), so that the
    # vocabulary's order does not depend on the grammar's symbol order.
    grams = [_decode(int(c), base, p + q, symbols) for c in codes]
    order = sorted(range(len(grams)), key=grams.__getitem__)
    column_of_rank = np.empty(len(order), dtype=np.int32)
    column_of_rank[order] = np.arange(len(order), dtype=np.int32)
    vocabulary = tuple(grams[k] for k in order)
    n_cols = len(vocabulary)

    def triplets(rows: np.ndarray, gram_codes: np.ndarray, n_rows: int, first: int) -> sp.csr_matrix:
        cols = column_of_rank[np.searchsorted(codes, gram_codes)]
        return sp.csr_matrix(
            (np.ones(len(rows), np.int32), (rows - first, cols)), shape=(n_rows, n_cols), dtype=np.int32
        )

    empty_row = sp.csr_matrix((1, n_cols), dtype=np.int32)
    deep_blocks: list[sp.csr_matrix] = []
    profile_blocks: list[sp.csr_matrix] = []
    last = max((k for k, ids in enumerate(sizes) if len(ids)), default=-1)
    for k, level in enumerate(sizes):
        if not len(level):  # a size with no program: every even size of a grammar without unary operators
            deep_blocks.append(sp.csr_matrix((0, n_cols), dtype=np.int32))
            profile_blocks.append(deep_blocks[-1])
            continue
        # every row built so far, then one empty row that absent children (-1) select
        deep_so_far = sp.vstack(deep_blocks + [empty_row], format="csr")
        absent = deep_so_far.shape[0] - 1
        for ids in chunks(level):
            by_depth = anchored(ids)
            first, n_rows = int(ids[0]), len(ids)
            children = np.where(universe.left[ids] >= 0, universe.left[ids], absent)
            deep = deep_so_far[children]
            children = np.where(universe.right[ids] >= 0, universe.right[ids], absent)
            deep = deep + deep_so_far[children] + triplets(*by_depth[p - 1], n_rows, first)
            shallow = [triplets(*by_depth[d], n_rows, first) for d in range(p - 1)]
            profile_blocks.append(sum(shallow, deep))
            if k != last:  # only larger programs read a size's deep grams: the largest's are dropped
                deep_blocks.append(deep)
        del deep_so_far, deep
    del deep_blocks
    counts = sp.vstack(profile_blocks, format="csr")
    counts.sort_indices()
    return PQProfiles(counts, vocabulary, p, q)


def _anchored_at_depth(
    u: Universe, label: np.ndarray, ids: np.ndarray, depth: int, base: int, q: int
) -> tuple[np.ndarray, np.ndarray]:
    """(program id, gram code) for every gram anchored at a node ``depth`` levels below
    each program in ``ids``, with null ancestors above the program's root."""
    rows, codes = [], []
    for path in range(2**depth):  # bit k of path: take the right child at step k
        node, stem = ids, np.zeros(len(ids), np.int64)
        owner = ids
        for step in range(depth):
            stem = stem * base + label[node]
            node = np.where((path >> step) & 1, u.right[node], u.left[node]).astype(np.int64)
            present = node >= 0
            node, stem, owner = node[present], stem[present], owner[present]
        stem = stem * base + label[node]
        r, c = _anchored(u, label, node, stem, base, q)
        rows.append(owner[r])
        codes.append(c)
    return np.concatenate(rows), np.concatenate(codes)


def _anchored(
    u: Universe, label: np.ndarray, node: np.ndarray, stem: np.ndarray, base: int, q: int
) -> tuple[np.ndarray, np.ndarray]:
    """(index into ``node``, gram code) of the grams anchored at each ``node`` under the
    stem code ``stem``.  A node's children, padded by q-1 nulls on both sides, give f+q-1
    windows of q labels; window j holds the left child at digit j and the right child at
    digit j-1 (counting from the least significant), where those digits exist."""
    left, right = u.left[node], u.right[node]
    arity = (left >= 0).astype(np.int64) + (right >= 0)
    shift = stem * base**q
    digit = base ** np.arange(q + 1, dtype=np.int64)
    out_rows, out_codes = [np.flatnonzero(arity == 0)], [shift[arity == 0]]  # q nulls
    for f in (1, 2):
        k = np.flatnonzero(arity == f)
        j = np.arange(f + q - 1)
        code = shift[k, None] + label[left[k], None] * np.where(j < q, digit[np.minimum(j, q)], 0)
        if f == 2:
            code = code + label[right[k], None] * np.where(j >= 1, digit[np.maximum(j - 1, 0)], 0)
        out_rows.append(np.repeat(k, len(j)))
        out_codes.append(code.ravel())
    return np.concatenate(out_rows), np.concatenate(out_codes)


def _decode(code: int, base: int, width: int, symbols: Sequence[str]) -> Gram:
    digits = []
    for _ in range(width):
        code, d = divmod(code, base)
        digits.append(NULL if d == 0 else symbols[d - 1])
    return tuple(reversed(digits))
