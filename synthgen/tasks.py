"""Synthesis tasks: K input-output examples of one program (STUDY.md section 5).

A task shows the model the program's outputs at K *distinct* grid points, drawn without
replacement: a repeated point would show the same example twice and carry no
information, and K distinct points are what a user would give.

Every random choice here comes from a hash of (seed, purpose, draw, program id, ...)
(:func:`synthgen.seeding.random_keys`), never from a generator's call order, so a task is the same whichever job asks for it,
in whatever order and batch (ExeDec's habit).  ``purpose`` names the use (``"train"``,
``"test"``...); ``draw`` lets one purpose draw several independent example sets for a
program, e.g. one per training epoch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synthgen.seeding import is_tensor, key_order, random_keys
from synthgen.universe import Universe


@dataclass(frozen=True)
class Tasks:
    """A batch of tasks, row ``i`` for the target program ``targets[i]`` (a universe id).

    ``points``: the example inputs as indices into the rows of ``Grammar.grid``, shape
    (n, K); ``outputs``: the target's values there, (n, K).  The same three arrays as
    every method (evaluation, search, the scorer) faces the tasks in this one form; example
    inputs given as values convert with :func:`grid_points`."""

    targets: np.ndarray
    points: np.ndarray
    outputs: np.ndarray

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, rows) -> "Tasks":
        """The tasks of ``rows`` (a slice or index array), as a batch of their own."""
        return Tasks(self.targets[rows], self.points[rows], self.outputs[rows])

    @property
    def n_examples(self) -> int:
        return self.points.shape[1]


def example_points(n_points: int, n_examples: int, program_ids, purpose: str, seed: int, draw=0):
    """K distinct grid points per program, in random order: shape (n, K).

    The first K of a random permutation of the grid (the points sorted by hashed keys)
    are a uniform K-subset drawn without replacement.  ``draw`` is one number or one
    per program.  ``program_ids`` (and an array ``draw``) may be torch int64 tensors on a
    device: the training loop draws its tasks there, and gets the same points."""
    if not 1 <= n_examples <= n_points:
        raise ValueError(f"n_examples must be in 1..{n_points} (the grid's points); got {n_examples}")
    if is_tensor(program_ids):
        import torch  # only for a caller that holds tensors already: the data stages need not load it

        ids, grid = program_ids, torch.arange(n_points, device=program_ids.device)
        draws = draw[:, None] if is_tensor(draw) else draw
    else:
        ids, grid = np.asarray(program_ids, dtype=np.int64), np.arange(n_points)
        draws = np.broadcast_to(np.asarray(draw, dtype=np.int64), ids.shape)[:, None]
    keys = random_keys(seed, purpose, draws, ids[:, None], grid[None, :])
    return key_order(keys, axis=1)[:, :n_examples]


def make_tasks(
    universe: Universe, program_ids, n_examples: int, purpose: str, seed: int, draw: int | np.ndarray = 0
) -> Tasks:
    """The tasks of ``program_ids``: deterministic per (purpose, seed, draw, program id).

    Programs out of bound have no outputs and so no task: asking for one is an error."""
    ids = check_program_ids(universe, program_ids)
    classes = universe.semantic_class[ids]
    points = example_points(universe.grammar.n_points, n_examples, ids, purpose, seed, draw)
    return Tasks(targets=ids, points=points, outputs=universe.class_outputs[classes[:, None], points])


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


def grid_points(grammar: Grammar, inputs: np.ndarray) -> np.ndarray:
    """Grid-point indices of input values, shape ``(..., n_variables)`` to ``(...)``;
    a ``ValueError`` for values off the grid."""
    inputs = np.asarray(inputs, dtype=np.int64)
    n_vars = len(grammar.variables)
    if inputs.shape[-1:] != (n_vars,):
        raise ValueError(f"inputs must end in an axis of {n_vars} values (one per variable), got shape {inputs.shape}")
    offset = inputs - grammar.grid_low
    side = grammar.grid_high - grammar.grid_low + 1
    if ((offset < 0) | (offset >= side)).any():
        raise ValueError(f"inputs must lie on the grid {grammar.grid_low}..{grammar.grid_high}")
    # The grid is row-major over the variables: the last variable varies fastest.
    return offset @ (side ** np.arange(n_vars - 1, -1, -1, dtype=np.int64))
