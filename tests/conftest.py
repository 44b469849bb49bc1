"""Shared fixtures: the smoke grammar and its universe (enumerated once per session)."""

from __future__ import annotations

from pathlib import Path

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
