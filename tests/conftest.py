"""Shared fixtures: the smoke grammar and its universe (enumerated once per session), and
the smoke profile's params for the synthesizer's tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import pytest
import yaml

from synthgen.enumeration import enumerate_universe
from synthgen.grammar import Grammar
from synthgen.params import Params, validate_params
from synthgen.profiles import profile_text

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


@pytest.fixture(scope="session")
def spaces_for():
    """The metric spaces of a universe, as the splits read them (small dims for speed)."""

    def build(universe):
        from synthgen.pqgram import universe_profiles
        from synthgen.spaces import SemanticSpace, SyntaxSpace
        from synthgen.splits import SplitInputs

        profiles = universe_profiles(universe, 2, 3)
        syntax = SyntaxSpace(2, 3, dims=8, fit_sample=None, random_state=0).fit_transform(profiles)
        semantics = SemanticSpace(dims=8, output_transform="asinh").fit_transform(universe)
        return SplitInputs(universe, syntax, semantics.astype(np.float32), profiles.counts)

    return build


def smoke_params(**sections) -> Params:
    """The smoke profile, with some sections' keys replaced: ``model={"width": 16}``."""
    raw = yaml.safe_load(profile_text(ROOT, "smoke"))
    for section, values in sections.items():
        raw[section].update(values)
    return validate_params(raw, source="smoke")


@pytest.fixture(scope="session")
def params() -> Params:
    """The smoke profile; its grammar is the ``grammar`` fixture's."""
    P = smoke_params()
    assert Grammar.from_params(P.grammar) == make_grammar()
    return P


@pytest.fixture(scope="session")
def valid_ids(universe) -> np.ndarray:
    """Ids of the universe's in-bound programs, the ones that have tasks."""
    return np.flatnonzero(universe.semantic_class >= 0)
