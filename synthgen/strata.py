"""Task strata: what kind of function a test task asks for (STUDY.md section 8).

In the default universe a few giant semantic classes hold most programs: constant
functions, ``x``, ``y`` and their simple variants.  A pass@1 that mixes them with the rest
mostly counts easy functions, and a "shift" that changes the mix looks like a
generalization gap.  So every test task records three things about its target, and every
pass@1 is reported per stratum as well as overall:

- ``kind``: the variables the function depends on, ``const`` for none, else their names
  joined by ``+`` (``x``, ``y``, ``x+y``; with three variables also ``x+z`` ...).  A
  function depends on a variable when two grid points that differ only in that variable
  give different outputs.
- ``class_size`` and ``commonness``: how many programs of the universe compute the
  function, binned at ``measurement.class_size_edges`` (e.g. ``10-99``).
- ``size``: the target program's size (and ``min_size``: the smallest program computing
  the function, a measure of the function's own complexity).

A comparison between splits is made on *matched* strata: the strata named by
``measurement.match_on`` (:func:`stratum_labels`), post-stratified to one reference mix
(:func:`reference_weights`), with the raw figure beside it (:mod:`synthgen.results`).
"""

from __future__ import annotations

from itertools import combinations
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from synthgen.universe import Universe

STRATA = ("kind", "commonness", "size")
"""The strata a comparison may be matched on (``measurement.match_on``)."""
REFERENCE_MIXES = ("iid", "uniform")
"""``iid``: the stratum shares of the iid test set; ``uniform``: every stratum alike."""
CONSTANT = "const"


def class_dependence(universe: Universe) -> np.ndarray:
    """(n_classes, n_variables) bool: does each class's function depend on each variable?

    The grid is row-major over the variables (the last varies fastest), so the outputs of
    a class reshape to one axis per variable; a function depends on a variable when its
    outputs change along that axis anywhere."""
    g = universe.grammar
    side = g.grid_high - g.grid_low + 1
    n_vars = len(g.variables)
    cube = universe.class_outputs.reshape((universe.n_classes,) + (side,) * n_vars)
    return np.stack(
        [(np.diff(cube, axis=1 + v) != 0).reshape(universe.n_classes, -1).any(axis=1) for v in range(n_vars)],
        axis=1,
    ) if side > 1 else np.zeros((universe.n_classes, n_vars), dtype=bool)


def kind_names(variables: Sequence[str]) -> list[str]:
    """Every kind of a grammar's functions, from constant to depending on all variables."""
    names = [CONSTANT]
    for k in range(1, len(variables) + 1):
        names += ["+".join(c) for c in combinations(variables, k)]
    return names


def class_kinds(universe: Universe) -> np.ndarray:
    """The kind of each class (object array of strings, see the module docstring)."""
    variables = np.array(universe.grammar.variables, dtype=object)
    names = np.array(["+".join(variables[np.array(row, dtype=bool)]) or CONSTANT
                      for row in np.ndindex(*(2,) * len(variables))], dtype=object)
    dep = class_dependence(universe).astype(np.int64)
    # row-major code of the dependence pattern, as np.ndindex enumerates them
    code = dep @ (2 ** np.arange(len(variables) - 1, -1, -1))
    return names[code]


def commonness_labels(edges: Sequence[int]) -> list[str]:
    """Names of the class-size bins cut at ``edges``: ``1-9``, ``10-99``, ..., ``1000+``."""
    bounds = [1, *edges]
    labels = [f"{lo}-{hi - 1}" if hi - 1 > lo else f"{lo}" for lo, hi in zip(bounds, bounds[1:])]
    return labels + [f"{bounds[-1]}+"]


def commonness(class_size: np.ndarray, edges: Sequence[int]) -> np.ndarray:
    """The bin label of each class size (object array), bins ``[1, e0), [e0, e1), ...``."""
    labels = np.array(commonness_labels(edges), dtype=object)
    return labels[np.searchsorted(np.asarray(edges), np.asarray(class_size), side="right")]


def task_strata(universe: Universe, program_ids, edges: Sequence[int]) -> pd.DataFrame:
    """One row per program: ``semantic_class``, ``kind``, ``class_size``, ``commonness``,
    ``size`` and ``min_size`` (see the module docstring).  Programs must be in bound."""
    ids = np.asarray(program_ids, dtype=np.int64)
    cls = universe.semantic_class[ids].astype(np.int64)
    if (cls < 0).any():
        raise ValueError("out-of-bound programs have no function and no stratum")
    sizes = universe.class_sizes()
    min_size = universe.size[universe.representatives()]
    return pd.DataFrame({
        "semantic_class": cls,
        "kind": class_kinds(universe)[cls],
        "class_size": sizes[cls].astype(np.int64),
        "commonness": commonness(sizes[cls], edges),
        "size": universe.size[ids].astype(np.int64),
        "min_size": min_size[cls].astype(np.int64),
    })


def stratum_labels(table: pd.DataFrame, match_on: Sequence[str]) -> np.ndarray:
    """One label per row joining the columns ``match_on`` (e.g. ``x|10-99``)."""
    if not match_on:
        return np.full(len(table), "all", dtype=object)
    unknown = set(match_on) - set(STRATA)
    if unknown:
        raise ValueError(f"unknown strata {sorted(unknown)}; the strata are {', '.join(STRATA)}")
    parts = [table[c].astype(str).to_numpy() for c in match_on]
    out = parts[0].astype(object)
    for p in parts[1:]:
        out = out + "|" + p
    return out


def reference_weights(reference_mix: str, reference_labels: np.ndarray | None = None,
                      labels: Sequence[str] | None = None) -> dict[str, float]:
    """The weight of each stratum in the reference mix: the share of the reference test
    set's functions (``iid``: pass the iid labels) or equal weights over ``labels``
    (``uniform``)."""
    if reference_mix == "iid":
        if reference_labels is None or not len(reference_labels):
            raise ValueError("the iid reference mix needs the iid test set's stratum labels")
        counts = pd.Series(reference_labels).value_counts()
        return (counts / counts.sum()).to_dict()
    if reference_mix == "uniform":
        if not labels:
            raise ValueError("the uniform reference mix needs the strata to weigh")
        return {h: 1.0 / len(set(labels)) for h in sorted(set(labels))}
    raise ValueError(f"unknown reference mix {reference_mix!r}; allowed: {', '.join(REFERENCE_MIXES)}")


def matched_weights(weights: Mapping[str, float], *label_sets: np.ndarray) -> dict[str, float]:
    """The reference weights restricted to the strata present in every one of
    ``label_sets`` (the matched strata of a comparison), renormalised to sum to 1."""
    common = set(weights)
    for labels in label_sets:
        common &= set(np.asarray(labels).tolist())
    total = sum(weights[h] for h in common)
    return {h: weights[h] / total for h in sorted(common)} if total > 0 else {}


def mix_table(frames: Mapping[str, pd.DataFrame], column: str) -> pd.DataFrame:
    """Share of each value of ``column`` per named frame (rows: names; columns: values)."""
    return pd.DataFrame({name: f[column].value_counts(normalize=True) for name, f in frames.items()}).T.fillna(0.0)
