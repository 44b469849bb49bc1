"""Exhaustive enumeration of the program universe, bottom-up by size.

Every syntactically distinct tree up to ``max_size`` gets one row: its operator code (the
symbol's index in :attr:`Grammar.symbols`), child ids, size, depth and semantic class.
Programs with identical outputs on the grid share a class.

Why it is fast: a program's outputs depend only on its operator and its children's
*classes*.  So for each (operator, left size, right size) we take the distinct classes
among the children and evaluate each distinct (operator, left class, right class) once,
as one numpy broadcast, then look the resulting output rows up in a hash table of the
classes found so far.  There are far fewer distinct class pairs than programs, and no
tree is ever walked.

Ordering (the program id) is canonical: by size, then root symbol (grammar order), then
left-child size, then left id, then right id.  Classes are numbered in the order they are
first produced, level by level (so by the size of their smallest program).  Programs out of bound (any node's
value on any grid point beyond ``value_bound``) get class ``-1``.
"""

from __future__ import annotations

import numpy as np
from tqdm import tqdm

from synthgen.grammar import BINARY_SEMANTICS, UNARY_SEMANTICS, Grammar, analytic_counts
from synthgen.universe import OUT_OF_BOUND, Universe


class HashCollision(RuntimeError):
    """Two different output rows hashed alike; the enumerator retries with a new seed."""


def _row_hash(rows: np.ndarray, seed: int) -> np.ndarray:
    """64-bit hash of each row: a random linear form mod 2**64, then a splitmix finaliser.
    Equal rows hash equal; unequal rows are told apart by exact comparison afterwards."""
    rng = np.random.default_rng(seed)
    mult = rng.integers(1, 2**63, size=rows.shape[1], dtype=np.uint64) | np.uint64(1)
    h = (rows.view(np.uint64) * mult).sum(axis=1, dtype=np.uint64)
    h ^= h >> np.uint64(31)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(27)
    return h


class _ClassTable:
    """Output rows seen so far, with a sorted hash index for vectorised lookup."""

    def __init__(self, n_points: int, value_bound: int, seed: int) -> None:
        self.value_bound = value_bound
        self.seed = seed
        self.outputs = np.empty((1024, n_points), dtype=np.int64)
        self.n = 0
        self.keys = np.empty(0, dtype=np.uint64)  # sorted hashes
        self.ids = np.empty(0, dtype=np.int64)  # class id for each sorted hash

    def assign(self, rows: np.ndarray) -> np.ndarray:
        """Class id for each row (new classes are added); ``-1`` for out-of-bound rows."""
        out = np.full(len(rows), OUT_OF_BOUND, dtype=np.int64)
        ok = np.flatnonzero((np.abs(rows) <= self.value_bound).all(axis=1))
        if not len(ok):
            return out
        rows = rows[ok]
        h = _row_hash(rows, self.seed)
        pos = np.searchsorted(self.keys, h)
        pos_c = np.minimum(pos, max(len(self.keys) - 1, 0))
        found = (pos < len(self.keys)) & (self.keys[pos_c] == h) if len(self.keys) else np.zeros(len(h), bool)
        ids = np.empty(len(rows), dtype=np.int64)
        ids[found] = self.ids[pos_c[found]]
        if not np.array_equal(self.outputs[ids[found]], rows[found]):
            raise HashCollision("a new output row hashed like a known class")
        new = np.flatnonzero(~found)
        if len(new):
            uniq, first, inverse = np.unique(h[new], return_index=True, return_inverse=True)
            if not np.array_equal(rows[new[first[inverse]]], rows[new]):
                raise HashCollision("two new output rows hashed alike")
            # number new classes in order of first appearance, so ids do not depend on hashes
            order = np.argsort(first, kind="stable")
            rank = np.empty_like(order)
            rank[order] = np.arange(len(order))
            new_ids = self.n + rank
            ids[new] = new_ids[inverse]
            self._append(rows[new[first[order]]])
            # uniq is sorted: merge it into the sorted index in O(n), no re-sort
            at = np.searchsorted(self.keys, uniq)
            self.keys = np.insert(self.keys, at, uniq)
            self.ids = np.insert(self.ids, at, new_ids)
        out[ok] = ids
        return out

    def _append(self, rows: np.ndarray) -> None:
        need = self.n + len(rows)
        if need > len(self.outputs):
            grown = np.empty((max(need, 2 * len(self.outputs)), self.outputs.shape[1]), dtype=np.int64)
            grown[: self.n] = self.outputs[: self.n]
            self.outputs = grown
        self.outputs[self.n : need] = rows
        self.n = need


def enumerate_universe(grammar: Grammar, progress: bool = False, max_attempts: int = 4) -> Universe:
    """Enumerate and classify every program of ``grammar`` up to its ``max_size``."""
    for seed in range(max_attempts):
        try:
            return _enumerate(grammar, seed, progress)
        except HashCollision:
            continue
    raise RuntimeError(f"hash collisions in {max_attempts} attempts; this should not happen")


def _enumerate(g: Grammar, hash_seed: int, progress: bool) -> Universe:
    counts = analytic_counts(g)
    total = sum(counts)
    if total >= 2**31:
        raise ValueError(f"{total} programs do not fit int32 ids; lower grammar.max_size")
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    op = np.empty(total, np.uint8)
    left = np.full(total, -1, np.int32)
    right = np.full(total, -1, np.int32)
    size = np.empty(total, np.uint8)
    depth = np.empty(total, np.uint8)
    cls = np.empty(total, np.int32)
    table = _ClassTable(g.n_points, g.value_bound, hash_seed)
    code = {s: i for i, s in enumerate(g.symbols)}

    # Distinct classes among the programs of each size, with each program's index into
    # them: computed once per size, reused by every operator and split.
    distinct: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def classes_of_size(s: int) -> tuple[np.ndarray, np.ndarray]:
        if s not in distinct:
            u, inv = np.unique(cls[offsets[s - 1] : offsets[s]], return_inverse=True)
            distinct[s] = (u, inv.ravel())
        return distinct[s]

    def outputs_of(classes: np.ndarray) -> np.ndarray:
        # out-of-bound classes (-1) get a dummy row; their programs are reset below
        return table.outputs[np.maximum(classes, 0)]

    bar = tqdm(total=total, unit="prog", unit_scale=True, desc="enumerate", disable=not progress)
    n = counts[0]
    op[:n] = [code[s] for s in g.leaves]
    size[:n], depth[:n] = 1, 1
    cls[:n] = table.assign(np.stack([g.leaf_values(s) for s in g.leaves]))
    bar.update(n)
    for s in range(2, g.max_size + 1):
        pos = int(offsets[s - 1])
        for u in g.unary:
            start, stop = offsets[s - 2], offsets[s - 1]
            m = int(stop - start)
            ids = np.arange(start, stop)
            uc, inv = classes_of_size(s - 1)
            pair_cls = table.assign(UNARY_SEMANTICS[u](outputs_of(uc)))
            block = slice(pos, pos + m)
            op[block], left[block], size[block] = code[u], ids, s
            depth[block] = depth[ids] + 1
            cls[block] = np.where(cls[ids] < 0, OUT_OF_BOUND, pair_cls[inv])
            pos += m
            bar.update(m)
        for b in g.binary:
            fn = BINARY_SEMANTICS[b]
            for i in range(1, s - 1):
                j = s - 1 - i
                li = np.arange(offsets[i - 1], offsets[i])
                ri = np.arange(offsets[j - 1], offsets[j])
                m = len(li) * len(ri)
                ul, linv = classes_of_size(i)
                ur, rinv = classes_of_size(j)
                rows = fn(outputs_of(ul)[:, None, :], outputs_of(ur)[None, :, :]).reshape(-1, g.n_points)
                pair_cls = table.assign(rows).reshape(len(ul), len(ur))
                block = slice(pos, pos + m)
                op[block], size[block] = code[b], s
                left[block] = np.repeat(li, len(ri))
                right[block] = np.tile(ri, len(li))
                depth[block] = np.maximum.outer(depth[li], depth[ri]).ravel() + 1
                prog_cls = pair_cls[linv[:, None], rinv[None, :]]
                bad = (cls[li] < 0)[:, None] | (cls[ri] < 0)[None, :]
                cls[block] = np.where(bad, OUT_OF_BOUND, prog_cls).ravel()
                pos += m
                bar.update(m)
        assert pos == offsets[s], "enumeration order disagrees with the analytic count"
    bar.close()

    # Class ids follow the order in which classes were first produced, level by level, so
    # they grow with the size of each class's smallest program and never depend on the
    # hash.  Rows evaluated only for out-of-bound children may have made classes that no
    # program has: drop them and close the gaps.
    used = np.zeros(table.n, bool)
    used[cls[cls >= 0]] = True
    outputs = table.outputs[: table.n]
    if not used.all():
        renumber = np.cumsum(used) - 1
        cls = np.where(cls >= 0, renumber[np.maximum(cls, 0)], OUT_OF_BOUND)
        outputs = outputs[used]
    else:
        outputs = outputs.copy()
    return Universe(
        grammar=g,
        op=op,
        left=left,
        right=right,
        size=size,
        depth=depth,
        semantic_class=cls.astype(np.int32, copy=False),
        class_outputs=outputs,
    )
