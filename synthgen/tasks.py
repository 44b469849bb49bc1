"""Synthesis tasks: K input-output examples of one program (STUDY.md section 5).

A task shows the model the program's outputs at K *distinct* grid points, drawn without
replacement: a repeated point would show the same example twice and carry no
information, and K distinct points are what a user would give.

Every random choice here comes from a hash of (purpose, seed, draw, program id, ...),
never from a generator's call order, so a task is the same whichever job asks for it,
in whatever order and batch (ExeDec's habit).  ``purpose`` names the use (``"train"``,
``"test"``...); ``draw`` lets one purpose draw several independent example sets for a
program, e.g. one per training epoch.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from synthgen.universe import Universe


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser: a bijection of uint64 that mixes every bit."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def random_keys(purpose: str, seed: int, *indices: np.ndarray | int) -> np.ndarray:
    """Uniform pseudo-random uint64 keys, one per element of the broadcast ``indices``.

    Each key is a hash of (purpose, seed, indices...): e.g. ``random_keys("train-order",
    seed, epoch, np.arange(n))`` or ``random_keys("test", seed, 0, ids[:, None],
    np.arange(n_points))``.  Sorting by such keys gives a random permutation."""
    root = hashlib.blake2b(f"{purpose}:{seed}".encode(), digest_size=8).digest()
    h = np.uint64(int.from_bytes(root, "little"))
    arrays = np.broadcast_arrays(*(np.asarray(i, dtype=np.int64) for i in indices)) if indices else []
    shape = arrays[0].shape if arrays else ()
    key = np.full(shape, h, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for a in arrays:
            key = _splitmix64(key ^ a.astype(np.uint64))
    return key


@dataclass(frozen=True)
class Tasks:
    """A batch of tasks, row ``i`` for program ``program_ids[i]``.

    ``points``: indices into the grid, shape (n, K); ``inputs``: the variables' values
    there, (n, K, n_variables); ``outputs``: the program's values there, (n, K)."""

    program_ids: np.ndarray
    points: np.ndarray
    inputs: np.ndarray
    outputs: np.ndarray

    def __len__(self) -> int:
        return len(self.program_ids)

    @property
    def n_examples(self) -> int:
        return self.points.shape[1]


def example_points(
    n_points: int, n_examples: int, program_ids: np.ndarray, purpose: str, seed: int, draw: int | np.ndarray = 0
) -> np.ndarray:
    """K distinct grid points per program, in random order: shape (n, K).

    The first K of a random permutation of the grid (the points sorted by hashed keys)
    are a uniform K-subset drawn without replacement.  ``draw`` is one number or one
    per program."""
    if not 1 <= n_examples <= n_points:
        raise ValueError(f"n_examples must be in 1..{n_points} (the grid's points); got {n_examples}")
    ids = np.asarray(program_ids, dtype=np.int64)
    draws = np.broadcast_to(np.asarray(draw, dtype=np.int64), ids.shape)
    keys = random_keys(purpose, seed, draws[:, None], ids[:, None], np.arange(n_points)[None, :])
    return np.argsort(keys, axis=1, kind="stable")[:, :n_examples]


def make_tasks(
    universe: Universe, program_ids, n_examples: int, purpose: str, seed: int, draw: int | np.ndarray = 0
) -> Tasks:
    """The tasks of ``program_ids``: deterministic per (purpose, seed, draw, program id).

    Programs out of bound have no outputs and so no task: asking for one is an error."""
    ids = check_program_ids(universe, program_ids)
    classes = universe.semantic_class[ids]
    grid = universe.grammar.grid
    points = example_points(len(grid), n_examples, ids, purpose, seed, draw)
    return Tasks(
        program_ids=ids,
        points=points,
        inputs=grid[points],
        outputs=universe.class_outputs[classes[:, None], points],
    )


def check_program_ids(universe: Universe, program_ids) -> np.ndarray:
    """``program_ids`` as int64, after checking that each is a program of the universe
    with a task: out-of-bound programs have no outputs."""
    ids = np.asarray(program_ids, dtype=np.int64).reshape(-1)
    if len(ids) and (ids.min() < 0 or ids.max() >= len(universe)):
        raise ValueError(f"program ids must be in 0..{len(universe) - 1}")
    bad = universe.semantic_class[ids] < 0
    if bad.any():
        raise ValueError(f"{int(bad.sum())} program(s) are out of bound and have no task, e.g. ids {ids[bad][:5].tolist()}")
    return ids
