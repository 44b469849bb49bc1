"""Task strata (synthgen/strata.py): kinds against the interpreter, commonness bins, weights."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synthgen.strata import (class_kinds, commonness, commonness_labels, kind_names, matched_weights,
                             reference_weights, stratum_labels, task_strata)
from tests.conftest import make_grammar


def test_kinds_match_a_brute_force_reading_of_the_outputs(universe):
    g = universe.grammar
    grid = g.grid  # (points, variables)
    kinds = class_kinds(universe)
    for c in range(0, universe.n_classes, 97):
        out = universe.class_outputs[c]
        depends = []
        for v, name in enumerate(g.variables):
            # does changing variable v alone ever change the output?
            others = [tuple(r) for r in np.delete(grid, v, axis=1)]
            seen: dict = {}
            for key, value in zip(others, out):
                seen.setdefault(key, set()).add(int(value))
            depends.append(name if any(len(vals) > 1 for vals in seen.values()) else None)
        expected = "+".join(d for d in depends if d) or "const"
        assert kinds[c] == expected, universe.program(int(universe.representatives()[c])).infix()


def test_simple_programs_have_their_obvious_kind(universe):
    from synthgen.grammar import parse_prefix

    g = universe.grammar
    kinds = class_kinds(universe)
    for text, kind in [("x", "x"), ("y", "y"), ("sub x x", "const"), ("add x y", "x+y"), ("mul y 2", "y"),
                       ("max 3 1", "const")]:
        out = g.evaluate(parse_prefix(text, g))
        c = np.flatnonzero((universe.class_outputs == out).all(axis=1))
        assert len(c) == 1 and kinds[c[0]] == kind, text


def test_three_variables_and_kind_names():
    from synthgen.enumeration import enumerate_universe

    u = enumerate_universe(make_grammar(variables=("x", "y", "z"), max_size=3, grid_low=-1, grid_high=1))
    assert set(class_kinds(u)) <= set(kind_names(("x", "y", "z")))
    assert kind_names(("x", "y", "z")) == ["const", "x", "y", "z", "x+y", "x+z", "y+z", "x+y+z"]
    assert "x+z" in set(class_kinds(u))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(2, 10**6), min_size=1, max_size=5, unique=True).map(sorted),
       st.lists(st.integers(1, 10**7), min_size=1, max_size=50))
def test_commonness_bins_hold_their_sizes(edges, sizes):
    labels = commonness(np.array(sizes), edges)
    names = commonness_labels(edges)
    bounds = [1, *edges, np.inf]
    for size, label in zip(sizes, labels):
        i = names.index(label)
        assert bounds[i] <= size < bounds[i + 1]


def test_commonness_labels():
    assert commonness_labels([10, 100, 1000]) == ["1-9", "10-99", "100-999", "1000+"]
    assert commonness_labels([2]) == ["1", "2+"]


def test_task_strata_and_labels(universe, valid_ids):
    t = task_strata(universe, valid_ids[::500], [10, 100])
    assert (t.class_size == universe.class_sizes()[t.semantic_class]).all()
    assert (t.min_size <= t["size"]).all()
    labels = stratum_labels(t, ["kind", "commonness"])
    assert labels[0] == f"{t.kind[0]}|{t.commonness[0]}"
    assert (stratum_labels(t, []) == "all").all()
    with pytest.raises(ValueError, match="unknown strata"):
        stratum_labels(t, ["colour"])
    out_of_bound = np.flatnonzero(universe.semantic_class < 0)
    if len(out_of_bound):
        with pytest.raises(ValueError, match="out-of-bound"):
            task_strata(universe, out_of_bound[:1], [10])


def test_reference_and_matched_weights():
    w = reference_weights("iid", np.array(["a", "a", "b", "c"]))
    assert w == {"a": 0.5, "b": 0.25, "c": 0.25}
    assert reference_weights("uniform", labels=["a", "b", "b"]) == {"a": 0.5, "b": 0.5}
    m = matched_weights(w, np.array(["a", "b"]), np.array(["b", "a", "d"]))
    assert m == {"a": pytest.approx(2 / 3), "b": pytest.approx(1 / 3)}
    assert matched_weights(w, np.array(["d"])) == {}
    with pytest.raises(ValueError):
        reference_weights("iid", None)
