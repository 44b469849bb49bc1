"""Shared fixtures: the smoke grammar and its universe (enumerated once per session)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import pytest

from synthgen.enumeration import enumerate_universe
from synthgen.grammar import Grammar

ROOT = Path(__file__).resolve().parents[1]


def make_grammar(**changes) -> Grammar:
    """The default DSL (x, y; 1, 2, 3; neg, abs; seven binary operators) on a small grid."""
    fields = dict(
        variables=("x", "y"),
        constants=(1, 2, 3),
        unary=("neg", "abs"),
        binary=("add", "sub", "mul", "div", "mod", "min", "max"),
        max_size=5,
        grid_low=-3,
        grid_high=3,
        value_bound=10**6,
    )
    fields.update(changes)
    return Grammar(**fields)


@pytest.fixture(scope="session")
def grammar() -> Grammar:
    return make_grammar()


@pytest.fixture(scope="session")
def universe(grammar):
    return enumerate_universe(grammar)


def _stand_in_spaces(universe):
    """Until the metric spaces exist: symbol counts as syntax coordinates, class outputs as
    semantic coordinates, (parent symbol, child symbol) pairs as grams."""
    import scipy.sparse as sp

    from synthgen import census
    from synthgen.splits import SplitInputs

    counts = census.symbol_counts(universe).astype(np.float32)
    n_sym = counts.shape[1]
    rows, cols = [], []
    for i in range(len(universe)):
        stack = [i]
        while stack:
            j = stack.pop()
            for child in (universe.left[j], universe.right[j]):
                if child >= 0:
                    rows.append(i)
                    cols.append(universe.op[j] * n_sym + universe.op[child])
                    stack.append(child)
    profiles = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(universe), n_sym * n_sym))
    return SplitInputs(universe, counts, universe.class_outputs.astype(np.float32), profiles)


@pytest.fixture(scope="session")
def spaces_for():
    return _stand_in_spaces
