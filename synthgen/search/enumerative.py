"""Enumerative search: the smallest program of the universe consistent with a task's
examples (STUDY.md section 7).

The answer is what a bottom-up enumerator gives: walk the programs in id order (by size,
then root symbol, then children) and return the first whose outputs agree with the ``K``
examples.  So it is a smallest consistent program, ties broken by program id, and the
search is complete up to ``max_size``: if any program of the universe is consistent, one
is found.  Out-of-bound programs have no outputs on the grid and are never answers.

The cost is reported in that enumerator's units, whatever the index below did to find the
answer: ``programs_examined`` (the answer's id + 1: every program checked in id order) and
``classes_examined`` (the distinct semantic classes among them: the cost of an enumerator
that prunes observationally equivalent programs).  A ``budget`` in either unit stops the
enumerator after that many candidates, exactly: an answer further on is a failure.

Why it is fast: the first consistent program is the representative (smallest program) of
the first consistent class, with classes ranked by their representatives' ids.  So only
classes are searched, through an inverted index: for each (grid point, output value), the
classes with that output there, in rank order (a posting list).  Every class consistent
with a task lies in the posting list of its most selective example; those candidates are
filtered by the other examples, most selective first, for many tasks at once.  Filtering
keeps the rank order, so a task's first survivor is its answer and the number of
survivors its ambiguity.  Exact throughout: no hashing, no sampling.  Tasks may share their
example inputs or not; the cost is the same.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import numpy as np

from synthgen.universe import Universe

BudgetUnit = Literal["programs", "classes"]
ENUMERATION_UNITS: tuple[BudgetUnit, ...] = ("programs", "classes")


@dataclass(frozen=True)
class SearchResults:
    """Answers and costs for ``T`` tasks, one row each."""

    program: np.ndarray  # int64 (T,): the answer's program id; -1: none within the budget
    semantic_class: np.ndarray  # int64 (T,): its class; -1: none
    programs_examined: np.ndarray  # int64 (T,): programs checked in id order, to the answer or the stop
    classes_examined: np.ndarray  # int64 (T,): distinct classes among those programs
    consistent_classes: np.ndarray  # int64 (T,): classes consistent with the examples (the ambiguity; budget aside)
    candidates_compared: np.ndarray  # int64 (T,): classes the index compared with the examples (its own work)
    seconds: float  # wall time of the whole batch

    def __len__(self) -> int:
        return len(self.program)

    @property
    def found(self) -> np.ndarray:
        return self.program >= 0


@dataclass(frozen=True)
class SearchResult:
    """Answer and cost for one task; the fields as in :class:`SearchResults`."""

    program: int | None
    semantic_class: int | None
    programs_examined: int
    classes_examined: int
    consistent_classes: int
    candidates_compared: int
    seconds: float

    @property
    def found(self) -> bool:
        return self.program is not None


class EnumerativeSearch:
    """Smallest consistent program of ``universe``, for one task or a batch.

    Building the index reads every class's outputs once (about half a second for the
    default universe); searches then touch only the candidates of each task.
    ``chunk_candidates`` caps the candidates filtered at once, and so the memory."""

    def __init__(self, universe: Universe, chunk_candidates: int = 1 << 18) -> None:
        self.universe = universe
        self.chunk_candidates = chunk_candidates
        n_classes = universe.n_classes
        if n_classes >= 2**31:
            raise ValueError(f"{n_classes} classes do not fit the index's int32 postings")
        representatives = universe.representatives().astype(np.int64)
        # Rank classes by their smallest program: enumeration meets them in this order.
        self._class_of_rank = np.argsort(representatives, kind="stable")
        self._ranked_representatives = representatives[self._class_of_rank]
        # Outputs by (point, rank): a posting list is read in rank order, so its lookups at
        # one point move forward through one row; int32 halves the memory traffic.
        dtype = np.int32 if universe.grammar.value_bound < 2**31 else np.int64
        self._ranked_outputs = np.ascontiguousarray(universe.class_outputs[self._class_of_rank].T, dtype=dtype)
        self._keys, self._starts, self._postings = self._build_index()

    # --- the inverted index ---------------------------------------------------------

    def _key(self, points: np.ndarray, outputs: np.ndarray) -> np.ndarray:
        """One integer per (grid point, output value) with ``|value| <= value_bound``."""
        bound = self.universe.grammar.value_bound
        return points * (2 * bound + 1) + (outputs + bound)

    def _build_index(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sorted keys; for key ``i`` its posting list is ``postings[starts[i]:starts[i+1]]``,
        the ranks of the classes with that output at that point, ascending."""
        u = self.universe
        n_points, n_classes = u.grammar.n_points, u.n_classes
        if n_points * (2 * u.grammar.value_bound + 1) >= 2**62:
            raise ValueError("the grid and value bound are too large for 64-bit index keys")
        keys, starts, postings = [], [], []
        for p in range(n_points):
            values = self._ranked_outputs[p].astype(np.int64)
            by_value = np.argsort(values, kind="stable")  # stable: ties stay in rank order
            sorted_values = values[by_value]
            first = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
            keys.append(self._key(np.int64(p), sorted_values[first]))
            starts.append(p * n_classes + first)
            postings.append(by_value.astype(np.int32))
        starts.append(np.array([n_points * n_classes]))
        return np.concatenate(keys), np.concatenate(starts), np.concatenate(postings)

    def _posting_lists(self, points: np.ndarray, outputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Start and length of each example's posting list (length 0: no class has that
        output there)."""
        bound = self.universe.grammar.value_bound
        in_bound = (outputs >= -bound) & (outputs <= bound)  # not abs: abs(int64 min) < 0
        keys = self._key(points, np.where(in_bound, outputs, 0))  # no key for outputs beyond the bound
        at = np.minimum(np.searchsorted(self._keys, keys), len(self._keys) - 1)
        hit = in_bound & (self._keys[at] == keys)
        return self._starts[at], np.where(hit, self._starts[at + 1] - self._starts[at], 0)

    # --- search ---------------------------------------------------------------------

    def search(
        self, points: np.ndarray, outputs: np.ndarray, budget: int | None = None, unit: BudgetUnit = "programs"
    ) -> SearchResult:
        """One task: ``points`` (K,) grid-point indices of the example inputs (see
        :func:`synthgen.tasks.grid_points` for inputs given as values), ``outputs`` (K,)."""
        r = self.search_batch(np.asarray(points)[None], np.asarray(outputs)[None], budget, unit)
        found = bool(r.found[0])
        return SearchResult(
            program=int(r.program[0]) if found else None,
            semantic_class=int(r.semantic_class[0]) if found else None,
            programs_examined=int(r.programs_examined[0]),
            classes_examined=int(r.classes_examined[0]),
            consistent_classes=int(r.consistent_classes[0]),
            candidates_compared=int(r.candidates_compared[0]),
            seconds=r.seconds,
        )

    def search_batch(
        self, points: np.ndarray, outputs: np.ndarray, budget: int | None = None, unit: BudgetUnit = "programs"
    ) -> SearchResults:
        """Many tasks: ``outputs`` (T, K); ``points`` (T, K), or (K,) when all tasks share
        their example inputs.  ``budget``: stop after that many candidates in ``unit``."""
        start = time.perf_counter()
        outputs = np.asarray(outputs, dtype=np.int64)
        if outputs.ndim != 2 or outputs.shape[1] == 0:
            raise ValueError(f"outputs must have shape (tasks, K) with K >= 1, got {outputs.shape}")
        try:
            points = np.broadcast_to(np.asarray(points, dtype=np.int64), outputs.shape)
        except ValueError:
            raise ValueError(f"points must have shape (K,) or {outputs.shape}, like the outputs") from None
        n_points = self.universe.grammar.n_points
        if ((points < 0) | (points >= n_points)).any():
            raise ValueError(f"points must be grid-point indices in 0..{n_points - 1}")
        if unit not in ENUMERATION_UNITS:
            raise ValueError(f"unit must be one of {ENUMERATION_UNITS}, got {unit!r}")
        if budget is not None and budget < 0:
            raise ValueError(f"budget must be >= 0, got {budget}")

        lo, length = self._posting_lists(points, outputs)
        # Most selective example first: its posting list holds every consistent class, and
        # filtering by the next most selective discards the most candidates.
        order = np.argsort(length, axis=1, kind="stable")
        points, outputs, lo, length = (np.take_along_axis(a, order, axis=1) for a in (points, outputs, lo, length))
        rank, n_consistent = self._filter(points, outputs, lo[:, 0], length[:, 0])

        found = rank >= 0
        program = np.where(found, self._ranked_representatives[np.maximum(rank, 0)], -1)
        programs_examined, classes_examined = program + 1, rank + 1
        if budget is not None:
            found &= (programs_examined if unit == "programs" else classes_examined) <= budget
        stop_programs, stop_classes = self._cost_of_failure(budget, unit)
        return SearchResults(
            program=np.where(found, program, -1),
            semantic_class=np.where(found, self._class_of_rank[np.maximum(rank, 0)], -1),
            programs_examined=np.where(found, programs_examined, stop_programs),
            classes_examined=np.where(found, classes_examined, stop_classes),
            consistent_classes=n_consistent,
            candidates_compared=length[:, 0].astype(np.int64),
            seconds=time.perf_counter() - start,
        )

    def _filter(
        self, points: np.ndarray, outputs: np.ndarray, lo: np.ndarray, length: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rank of the first consistent class (-1: none) and the number of consistent
        classes of each task, from its candidates ``postings[lo:lo+length]``."""
        n_tasks, k = outputs.shape
        n_classes = self.universe.n_classes
        ranked_outputs = self._ranked_outputs.reshape(-1)  # a view: row-major (point, rank)
        first = np.full(n_tasks, -1, dtype=np.int64)
        n_consistent = np.zeros(n_tasks, dtype=np.int64)
        total = np.cumsum(length)
        begin = 0
        while begin < n_tasks:
            # Tasks [begin, end) hold at most chunk_candidates candidates (at least one
            # task), so that a chunk's arrays stay in cache.
            before = total[begin - 1] if begin else 0
            end = max(begin + 1, int(np.searchsorted(total, before + self.chunk_candidates, side="right")))
            n = length[begin:end]
            task = np.repeat(np.arange(begin, end, dtype=np.int32), n)
            rank = self._postings[np.arange(len(task)) + np.repeat(lo[begin:end] - (np.cumsum(n) - n), n)]
            for j in range(1, k):
                keep = ranked_outputs[points[task, j] * n_classes + rank] == outputs[task, j]
                task, rank = task[keep], rank[keep]
            # Survivors are grouped by task, in rank order within a task.
            counts = np.bincount(task - begin, minlength=end - begin)
            n_consistent[begin:end] = counts
            has = np.flatnonzero(counts)
            first[begin + has] = rank[np.searchsorted(task, begin + has)]
            begin = end
        return first, n_consistent

    def _cost_of_failure(self, budget: int | None, unit: BudgetUnit) -> tuple[int, int]:
        """(programs, classes) examined by an enumerator that stops without an answer:
        at the end of the universe, or when the budget is spent."""
        n_programs, n_classes = len(self.universe), self.universe.n_classes
        if budget is None:
            return n_programs, n_classes
        if unit == "programs":
            programs = min(budget, n_programs)
            # the classes met so far: those whose smallest program came before the stop
            return programs, int(np.searchsorted(self._ranked_representatives, programs))
        if budget > n_classes:  # never spent: the enumerator runs to the end
            return n_programs, n_classes
        # spent on meeting the budget-th class, at its smallest program
        return (int(self._ranked_representatives[budget - 1]) + 1 if budget else 0), budget
