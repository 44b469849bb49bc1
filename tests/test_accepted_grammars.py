"""Every grammar that params accepts runs: enumeration, then the two metric spaces, then
the splits, on a tiny profile; or params refuses it with one line before any work.

Users tweak ``grammar`` in params.yaml for ablations (no unary operators, a constant 0,
one variable, a one-point grid); each such grammar either runs or is refused up front,
never after a stage has already written its artifacts.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from synthgen.enumeration import enumerate_universe
from synthgen.feasibility import check_feasible
from synthgen.grammar import Grammar, analytic_counts
from synthgen.params import BINARY_OPERATORS, UNARY_OPERATORS, Params, ParamsError, validate_params
from synthgen.profiles import profile_text
from synthgen.spaces import build_spaces
from synthgen.splits import SplitError, SplitInputs, make_splits
from tests.conftest import ROOT

# The smoke profile with splits and spaces shrunk to fit universes of a few dozen programs.
TINY = yaml.safe_load(profile_text(ROOT, "smoke"))
TINY["splits"].update(
    min_size=1, train_size=16, test_size=2,
    density={"cells": 2, "neighbours": 1, "tilt": 1.0, "reference": 4, "fit_sample": None},
    support={"region_share": 0.25, "regions": 2},
)
TINY["syntax"].update(dims=4, fit_sample=None)
TINY["semantics"].update(dims=2)
TINY["tasks"]["n_examples"] = 1


@st.composite
def tiny_params(draw) -> dict:
    """A raw params mapping: the tiny profile with a random grammar and space sizes, drawn
    from what the schema allows (and, now and then, from what it does not)."""
    low = draw(st.integers(-3, 2))
    grid = {"low": low, "high": low + draw(st.sampled_from([2, 3, 1, 2, 3, 0]))}
    variables = draw(st.lists(st.sampled_from(["x", "y", "z", "v1"]), min_size=1, max_size=3, unique=True))
    points = (grid["high"] - grid["low"] + 1) ** len(variables)
    constants = draw(st.lists(st.integers(-5, 5), max_size=3, unique=True))
    covered = max([abs(grid["low"]), abs(grid["high"]), *map(abs, constants)])
    raw = copy.deepcopy(TINY)
    raw["grammar"] = {
        "variables": variables,
        "constants": constants,
        "unary": draw(st.permutations(UNARY_OPERATORS))[: draw(st.sampled_from([1, 0, 2]))],
        "binary": draw(st.permutations(BINARY_OPERATORS))[: draw(st.sampled_from([2, 0, 1, 3, 4]))],
        "max_size": draw(st.sampled_from([4, 3, 4, 2, 4, 3, 1])),
        "grid": grid,
        # mostly a bound that covers the grid and the constants (else params refuses it);
        # small ones put many programs out of bound
        "value_bound": max(1, covered + draw(st.sampled_from([0, 10**6, 1, 5, 0, -1]))),
    }
    raw["syntax"]["dims"] = draw(st.integers(1, 40))
    raw["semantics"]["dims"] = draw(st.integers(1, points + 1))  # points + 1: refused
    return raw


def _accepted(raw: dict) -> Params | None:
    """The validated params, or None after checking that the refusal is one line."""
    try:
        return validate_params(raw, source="params.yaml")
    except ParamsError as err:
        message = str(err)
        assert "\n" not in message and message.startswith("params.yaml: "), message
        event(f"refused by params ({message.split(':')[1].strip()})")
        return None


def _universe_and_spaces(P: Params) -> SplitInputs:
    """Enumeration and the spaces, as stages 02 and 03 build them, with their invariants."""
    grammar = Grammar.from_params(P.grammar)
    universe = enumerate_universe(grammar)
    assert len(universe) == sum(analytic_counts(grammar))
    spaces = build_spaces(universe, P)  # the spaces stage's recipe, as check-params uses it
    profiles, syntax, syntax_coords = spaces.profiles, spaces.syntax, spaces.syntax_coords
    semantics, semantic_coords = spaces.semantics, spaces.semantic_coords
    assert profiles.counts.shape[0] == len(universe)
    assert (np.asarray(profiles.counts.sum(axis=1)).ravel() > 0).all()  # every tree anchors a gram
    assert syntax_coords.shape == (len(universe), P.syntax.dims) and np.isfinite(syntax_coords).all()
    assert np.isfinite(syntax.explained_variance_ratio_).all()
    assert semantic_coords.shape == (universe.n_classes, P.semantics.dims) and np.isfinite(semantic_coords).all()
    assert np.isfinite(semantics.explained_variance_ratio_).all()
    return SplitInputs(universe, syntax_coords, semantic_coords, profiles.counts)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tiny_params())
def test_every_accepted_grammar_enumerates_and_builds_its_spaces(raw):
    P = _accepted(raw)
    if P is None:
        return
    _universe_and_spaces(P)
    event("ran")


# Configurations the schema accepts but whose splits cannot be drawn: a fact of the
# enumerated universe, not of the grammar alone.  `synthgen check-params` builds a small
# universe in memory and refuses them in one line, before any stage runs
# (synthgen/feasibility.py).
SPLIT_FAILURES = {
    # 15 of 18 programs are in bound: 13 remain after the test set (2), for a training set of 16
    "iid_out_of_bound": ("tiny", {"variables": ["x"], "constants": [5], "unary": [], "binary": ["max", "mul", "sub", "min"],
                                  "max_size": 4, "grid": {"low": -3, "high": -1}, "value_bound": 10}),
    # the held-out grams' regions and the leakage guard leave too few programs for 800
    "support_syntax_training": ("smoke", {"unary": [], "binary": ["add", "mul"]}),
    # no program of the semantic region has all its pq-grams among 16 training programs
    "support_semantics_familiar": ("tiny", {"variables": ["z", "x", "y"], "constants": [], "unary": ["abs", "neg"],
                                            "binary": ["min"], "max_size": 3, "grid": {"low": -1, "high": 2},
                                            "value_bound": 2}),
}


@pytest.mark.parametrize("name", SPLIT_FAILURES)
def test_unsatisfiable_splits_are_refused_by_check_params_in_one_line(name):
    profile, grammar = SPLIT_FAILURES[name]
    raw = copy.deepcopy(TINY) if profile == "tiny" else yaml.safe_load(profile_text(ROOT, profile))
    raw["grammar"].update(grammar)
    P = validate_params(raw)
    with pytest.raises(ParamsError) as err:
        check_feasible(P)
    message = str(err.value)
    assert "\n" not in message and message.startswith("params.yaml: splits: split ") and "needs" in message


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          phases=[Phase.explicit, Phase.generate], report_multiple_bugs=False)
@given(tiny_params())
def test_every_accepted_grammar_splits_or_is_refused_before_any_work(raw):
    P = _accepted(raw)
    if P is None:
        return
    try:
        assert check_feasible(P)  # every tiny universe is built and split in memory
    except ParamsError as err:
        assert "\n" not in str(err) and str(err).startswith("params.yaml: splits: ")
        event("refused by check-params (splits)")
        return
    inputs = _universe_and_spaces(P)
    for split in make_splits(inputs, P.splits, P.seed):
        assert len(split.train) == P.splits.train_size and len(split.test) == P.splits.test_size
    event("split")
