"""Synthesis tasks as every search method sees them, and the pass criterion.

A task is ``K`` input-output examples of a target program.  Its example inputs are
*grid points*: indices into the rows of :attr:`Grammar.grid`, so that a universe's class
outputs can be read at them directly.  Inputs given as values convert with
:func:`grid_points`.

A program **passes** when its outputs equal the target's on the whole grid: when both
share a semantic class (STUDY.md section 5).  Consistency with the ``K`` examples is
weaker, and :attr:`SearchResults.consistent_classes` says by how much for each task.
"""

from __future__ import annotations

import numpy as np

from synthgen.grammar import Grammar
from synthgen.tasks import Tasks  # noqa: F401  (the one task type, re-exported)
from synthgen.universe import OUT_OF_BOUND, Universe


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


def passes(universe: Universe, programs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Per task: the returned program (``-1``: none) passes, i.e. it is in bound and
    computes the target's function on the whole grid (the rule of
    :func:`synthgen.evaluation.judge`)."""
    from synthgen.evaluation import judge

    programs = np.asarray(programs, dtype=np.int64).reshape(-1)
    targets = np.asarray(targets, dtype=np.int64).reshape(-1)
    cls = np.where(programs >= 0, universe.semantic_class[np.maximum(programs, 0)], OUT_OF_BOUND)
    outputs = universe.class_outputs[np.maximum(cls, 0)][:, None, :]
    no_examples = np.zeros((len(targets), 0), dtype=np.int64)
    target_outputs = universe.class_outputs[universe.semantic_class[targets]]
    return judge(outputs, (cls != OUT_OF_BOUND)[:, None], no_examples, no_examples, target_outputs)[1][:, 0]
