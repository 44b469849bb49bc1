import itertools
from math import comb

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from synthgen.decoding import Candidates
from synthgen.enumeration import enumerate_universe
from synthgen.evaluation import (
    ambiguity_ceiling,
    breakdown,
    consistent_classes,
    evaluate,
    function_interval,
    pass_at_k,
    score_candidates,
    summarize,
    task_table,
)
from synthgen.grammar import Grammar, parse_prefix
from synthgen.model import ModelConfig, Synthesizer
from synthgen.tasks import Tasks, make_tasks


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 10).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n), st.integers(1, n))))
def test_pass_at_k_is_the_share_of_k_subsets_holding_a_pass(nck):
    n, c, k = nck
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(samples, k))
    brute = sum(any(s) for s in subsets) / len(subsets)
    assert pass_at_k(n, c, k) == pytest.approx(brute, abs=1e-12)


def test_pass_at_k_edges_and_stability():
    assert pass_at_k(10, 0, 5) == 0.0
    assert pass_at_k(10, 6, 5) == 1.0  # n - c < k: every 5 samples include a pass
    assert pass_at_k(5, 1, 1) == pytest.approx(0.2)
    big = pass_at_k(2000, 3, 100)  # binomials of this size overflow floats
    assert big == pytest.approx(1 - comb(1997, 100) / comb(2000, 100), rel=1e-9)
    np.testing.assert_allclose(pass_at_k([10, 10, 10], [0, 1, 10], 1), [0.0, 0.1, 1.0])
    values = [pass_at_k(20, c, k) for k in (1, 5, 10) for c in range(21)]
    assert all(0.0 <= v <= 1.0 for v in values)
    with pytest.raises(ValueError, match="at least k"):
        pass_at_k(4, 1, 5)
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)


def _tasks_for(universe, program_text, k=5):
    g = universe.grammar
    target = parse_prefix(program_text, g)
    pid = next(i for i in range(len(universe)) if universe.program(i) == target)
    return make_tasks(universe, [pid], k, "test", 0)


def test_functional_equivalence_consistency_and_validity(universe):
    g = universe.grammar
    tasks = _tasks_for(universe, "add x x")
    # same function, other syntax; a function that fits only the given examples; garbage
    fits_examples = None
    for i in range(len(universe)):
        out = universe.outputs(i)
        if out is not None and np.array_equal(out[tasks.points[0]], tasks.outputs[0]) and not np.array_equal(out, 2 * g.grid[:, 0]):
            fits_examples = universe.program(i)
            break
    assert fits_examples is not None
    row = [parse_prefix("mul 2 x", g), fits_examples, parse_prefix("add x", g), parse_prefix("y", g)]
    s = score_candidates(universe, tasks, Candidates([row], np.zeros((1, 4, 1)), np.zeros((1, 4))))
    np.testing.assert_array_equal(s["valid"][0], [True, True, False, True])
    np.testing.assert_array_equal(s["consistent"][0], [True, True, False, False])
    np.testing.assert_array_equal(s["passes"][0], [True, False, False, False])
    table = task_table(universe, tasks, s, ks=[1, 2, 4])
    assert table["pass@1"][0] == pytest.approx(0.25) and table["pass@4"][0] == 1.0
    ranked = task_table(universe, tasks, s, ks=[1, 2], ranked=True)
    assert ranked["pass@1"][0] == 1.0


def test_ambiguity_on_a_hand_made_universe():
    # x on 0..1, constant 1, add only, up to 3 nodes: classes x, 1, 2x, x+1, 2
    g = Grammar(variables=("x",), constants=(1,), unary=(), binary=("add",), max_size=3, grid_low=0, grid_high=1, value_bound=100)
    u = enumerate_universe(g)
    assert u.n_classes == 5
    x = next(i for i in range(len(u)) if u.prefix(i) == "x")
    at_zero = Tasks(np.array([x]), np.array([[0]]), np.array([[0]]))  # x(0) = 0 = 2x(0)
    at_one = Tasks(np.array([x]), np.array([[1]]), np.array([[1]]))  # x(1) = 1 = 1: also the constant
    both = Tasks(np.array([x]), np.array([[0, 1]]), np.array([[0, 1]]))
    assert consistent_classes(u, at_zero)[0] == 2
    assert consistent_classes(u, at_one)[0] == 2
    assert consistent_classes(u, both)[0] == 1
    two = next(i for i in range(len(u)) if u.prefix(i) == "add 1 1")
    mixed = Tasks(np.array([x, two]), np.array([[0], [0]]), np.array([[0], [2]]))  # only the constant 2 gives 2 at 0
    ceiling = ambiguity_ceiling(u, mixed)
    assert ceiling == {"ambiguous": 0.5, "uniform_guess": 0.75, "mean_consistent_classes": 1.5}


def test_consistent_classes_matches_brute_force(universe, valid_ids):
    tasks = make_tasks(universe, valid_ids[::2000], 3, "test", 1)
    fast = consistent_classes(universe, tasks, chunk=3)
    for i in range(len(tasks)):
        brute = (universe.class_outputs[:, tasks.points[i]] == tasks.outputs[i]).all(axis=1).sum()
        assert fast[i] == brute >= 1


def test_function_intervals_are_seeded_and_resample_functions_not_tasks():
    rng = np.random.default_rng(0)
    functions = np.repeat(np.arange(60), 5)  # 5 tasks per function, which pass or fail together
    values = np.repeat(rng.random(60) < 0.3, 5).astype(float)
    lo, hi = function_interval(values, functions, 500, 0.95, seed=1)
    assert lo < values.mean() < hi and (lo, hi) == function_interval(values, functions, 500, 0.95, seed=1)
    # the same values read as 300 independent tasks give a much narrower (wrong) interval
    lo_t, hi_t = function_interval(values, np.arange(300), 500, 0.95, seed=1)
    assert (hi_t - lo_t) < 0.6 * (hi - lo)


def test_summary_and_breakdowns():
    table = pd.DataFrame({"size": [1, 1, 2, 2, 2], "pass@1": [1.0, 0.0, 1.0, 1.0, 0.0], "semantic_class": [0, 1, 2, 2, 3]})
    overall = summarize(table, ["pass@1"], 100, 0.9, 0)
    assert overall["mean"][0] == pytest.approx(0.6) and overall["n"][0] == 5 and overall["functions"][0] == 4
    by_size = breakdown(table, "size", ["pass@1"], 100, 0.9, 0)
    assert by_size["mean"].tolist() == [0.5, pytest.approx(2 / 3)] and by_size["n"].tolist() == [2, 3]
    distance = np.array([0.1, 0.2, 0.3, 0.4, 0.5])
    by_bins = breakdown(table, distance, ["pass@1"], 100, 0.9, 0, bins=[0.0, 0.25, 1.0])
    assert by_bins["n"].tolist() == [2, 3]
    with pytest.raises(ValueError, match="covariate"):
        breakdown(table, distance[:3], ["pass@1"], 100, 0.9, 0)


def test_evaluate_gives_one_row_per_test_program(universe, valid_ids, params):
    torch.manual_seed(0)
    model = Synthesizer(ModelConfig.from_params(params.model, universe.grammar))
    ids = valid_ids[::3000]
    table = evaluate(universe, model, ids, params)
    assert table["program_id"].tolist() == ids.tolist()
    expected = {"valid", "consistent", "pass@1", "sample_valid", "sample_consistent", "beam@1", "consistent_classes"}
    assert expected | {f"pass@{k}" for k in params.evaluation.k} <= set(table.columns)
    assert table["valid"].eq(1.0).all() and (table["consistent_classes"] >= 1).all()
