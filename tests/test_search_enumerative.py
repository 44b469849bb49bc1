"""Enumerative search against a literal bottom-up enumerator over every program of the
smoke universe, and against per-tree evaluation on a tiny one."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synthgen.enumeration import enumerate_universe
from synthgen.grammar import analytic_counts
from synthgen.evaluation import same_function as passes
from synthgen.search import EnumerativeSearch
from synthgen.tasks import grid_points
from synthgen.tasks import make_tasks
from synthgen.seeding import rng_for
from tests.conftest import make_grammar

SMOKE = make_grammar()  # the grammar of the `universe` fixture


def reference(u, points, outputs, budget=None, unit="programs"):
    """What a bottom-up enumerator does, literally: check programs in id order, count the
    programs and the distinct classes met, stop at the first consistent program or when
    the budget is spent.  Returns (program or None, programs, classes, consistent classes)."""
    points, outputs = np.asarray(points), np.asarray(outputs)
    at_examples = u.class_outputs[np.maximum(u.semantic_class, 0)][:, points]
    consistent = (u.semantic_class >= 0) & (at_examples == outputs).all(axis=1)
    ambiguity = len(np.unique(u.semantic_class[consistent]))
    cls, consistent = u.semantic_class.tolist(), consistent.tolist()
    programs, seen = 0, set()
    for i in range(len(u)):
        if budget is not None and (programs if unit == "programs" else len(seen)) == budget:
            break
        programs += 1
        if cls[i] < 0:
            continue
        seen.add(cls[i])
        if consistent[i]:
            return i, programs, len(seen), ambiguity
    return None, programs, len(seen), ambiguity


@pytest.fixture(scope="module")
def search(universe):
    return EnumerativeSearch(universe)


def random_tasks(universe, n, k, *words):
    rng = rng_for(0, "test_search", *words)
    targets = rng.choice(np.flatnonzero(universe.semantic_class >= 0), size=n)
    return make_tasks(universe, targets, k, "test_search:" + ":".join(map(str, words)), seed=0)


def check(search, universe, points, outputs, budget=None, unit="programs"):
    got = search.search(points, outputs, budget, unit)
    program, programs, classes, ambiguity = reference(universe, points, outputs, budget, unit)
    assert got.program == program
    assert (got.programs_examined, got.classes_examined, got.consistent_classes) == (programs, classes, ambiguity)
    if program is not None:
        assert got.semantic_class == universe.semantic_class[program]
    return got


@pytest.mark.parametrize("k", [1, 2, 3, 5, 10])
def test_finds_the_smallest_consistent_program(search, universe, k):
    tasks = random_tasks(universe, 40, k, k)
    results = search.search_batch(tasks.points, tasks.outputs)
    assert results.found.all()  # the target itself is consistent
    for t in range(len(tasks)):
        program, programs, classes, ambiguity = reference(universe, tasks.points[t], tasks.outputs[t])
        assert results.program[t] == program
        assert results.programs_examined[t] == programs and results.classes_examined[t] == classes
        assert results.consistent_classes[t] == ambiguity
        assert universe.size[program] <= universe.size[tasks.targets[t]]


@st.composite
def examples(draw, n_points=SMOKE.n_points, n_programs=sum(analytic_counts(SMOKE))):
    """Example inputs (duplicates allowed) and outputs: a program's, nudged, or arbitrary."""
    k = draw(st.integers(1, 6))
    points = draw(st.lists(st.integers(0, n_points - 1), min_size=k, max_size=k))
    target = draw(st.integers(0, n_programs - 1))
    kind = draw(st.sampled_from(["program", "nudged", "arbitrary"]))
    return points, target, kind, draw(st.lists(st.integers(-3, 3), min_size=k, max_size=k))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    task=examples(),
    budget=st.none() | st.integers(0, 20_000) | st.integers(0, 60),
    unit=st.sampled_from(["programs", "classes"]),
)
def test_matches_a_bottom_up_enumerator(search, universe, task, budget, unit):
    points, target, kind, noise = task
    outputs = universe.class_outputs[universe.semantic_class[target], points]
    if kind == "nudged":
        outputs = outputs + noise
    elif kind == "arbitrary":
        outputs = np.array(noise)
    got = check(search, universe, points, outputs, budget, unit)
    if budget is not None:
        assert (got.programs_examined if unit == "programs" else got.classes_examined) <= budget


def test_fails_when_no_program_is_consistent(search, universe):
    everything = (len(universe), universe.n_classes)
    unheard_of = universe.class_outputs[:, 0].max() + 1  # no class has this output at point 0
    contradictory = ([5, 5], [0, 1])  # one input, two outputs
    beyond_bound = ([0], [universe.grammar.value_bound + 1])
    int64_min = ([0], [np.iinfo(np.int64).min])
    for points, outputs in [([0, 1], [unheard_of, 0]), contradictory, beyond_bound, int64_min]:
        got = check(search, universe, points, outputs)
        assert not got.found and got.program is None and got.semantic_class is None
        assert (got.programs_examined, got.classes_examined, got.consistent_classes) == (*everything, 0)


def test_budget_is_respected_exactly(search, universe):
    tasks = random_tasks(universe, 30, 4, "budget")
    free = search.search_batch(tasks.points, tasks.outputs)
    for t in range(len(tasks)):
        points, outputs = tasks.points[t], tasks.outputs[t]
        program, rank = int(free.program[t]), int(free.classes_examined[t]) - 1
        # Enough budget to reach the answer finds it; one candidate less does not, and the
        # enumerator has then examined exactly the budget.
        assert search.search(points, outputs, program + 1, "programs").program == program
        short = check(search, universe, points, outputs, program, "programs")
        assert not short.found and short.programs_examined == program and short.classes_examined == rank
        assert search.search(points, outputs, rank + 1, "classes").program == program
        short = check(search, universe, points, outputs, rank, "classes")
        assert not short.found and short.classes_examined == rank
    for unit in ("programs", "classes"):
        nothing = search.search(tasks.points[0], tasks.outputs[0], 0, unit)
        assert not nothing.found and nothing.programs_examined == nothing.classes_examined == 0
    # Budgets around the whole universe, for a task no program solves: spent on the last
    # new class, or never spent.
    for unit, total in (("programs", len(universe)), ("classes", universe.n_classes)):
        for budget in (total - 1, total, total + 1):
            check(search, universe, [0], [universe.grammar.value_bound + 1], budget, unit)


def test_ties_are_broken_by_program_id(search, universe, grammar):
    origin = int(grid_points(grammar, [0, 0]))
    # x, y, abs(x), x + y, ... are all 0 at the origin: the first program, x, is the answer.
    got = search.search([origin], [0])
    assert got.program == 0 and universe.prefix(0) == "x" and got.consistent_classes > 1
    tasks = random_tasks(universe, 60, 3, "ties")
    results = search.search_batch(tasks.points, tasks.outputs)
    # Neither the order of the examples, nor the batch around a task, nor chunking matters.
    reversed_examples = search.search_batch(tasks.points[:, ::-1], tasks.outputs[:, ::-1])
    shuffled = np.random.default_rng(0).permutation(len(tasks))
    reordered = search.search_batch(tasks.points[shuffled], tasks.outputs[shuffled])
    tiny_chunks = EnumerativeSearch(universe, chunk_candidates=1).search_batch(tasks.points, tasks.outputs)
    for field in ("program", "semantic_class", "programs_examined", "classes_examined", "consistent_classes"):
        want = getattr(results, field)
        assert np.array_equal(getattr(reversed_examples, field), want)
        assert np.array_equal(getattr(reordered, field), want[shuffled])
        assert np.array_equal(getattr(tiny_chunks, field), want)
    assert [search.search(tasks.points[t], tasks.outputs[t]).program for t in range(5)] == results.program[:5].tolist()


def test_does_not_rely_on_how_classes_are_numbered(search, universe):
    """Relabel the classes at random: the same programs are found, under the new labels."""
    relabel = np.random.default_rng(1).permutation(universe.n_classes)
    shuffled = dataclasses.replace(
        universe,
        semantic_class=np.where(universe.semantic_class >= 0, relabel[universe.semantic_class], -1).astype(np.int32),
        class_outputs=universe.class_outputs[np.argsort(relabel)],
    )
    tasks = random_tasks(universe, 100, 2, "relabel")
    want = search.search_batch(tasks.points, tasks.outputs)
    got = EnumerativeSearch(shuffled).search_batch(tasks.points, tasks.outputs)
    assert np.array_equal(got.program, want.program)
    assert np.array_equal(got.classes_examined, want.classes_examined)
    assert np.array_equal(got.semantic_class, relabel[want.semantic_class])


def test_shared_example_inputs(search, universe):
    tasks = random_tasks(universe, 50, 4, "shared")
    shared = tasks.points[0]
    outputs = universe.class_outputs[universe.semantic_class[tasks.targets][:, None], shared]
    broadcast = search.search_batch(shared, outputs)
    repeated = search.search_batch(np.tile(shared, (len(tasks), 1)), outputs)
    assert np.array_equal(broadcast.program, repeated.program)
    assert np.array_equal(broadcast.consistent_classes, repeated.consistent_classes)


def test_agrees_with_per_tree_evaluation():
    """Independent of the enumerator's classes: evaluate each tree at the example inputs."""
    g = make_grammar(max_size=4)
    u = enumerate_universe(g)
    search = EnumerativeSearch(u)
    tasks = random_tasks(u, 12, 3, "per_tree")
    for t in range(len(tasks)):
        inputs = g.grid[tasks.points[t]]
        assert np.array_equal(grid_points(g, inputs), tasks.points[t])
        first = next(i for i in range(len(u)) if np.array_equal(g.evaluate(u.program(i), inputs), tasks.outputs[t]))
        assert search.search(grid_points(g, inputs), tasks.outputs[t]).program == first


def test_out_of_bound_programs_are_never_answers():
    g = make_grammar(max_size=5, value_bound=20)
    u = enumerate_universe(g)
    search = EnumerativeSearch(u)
    # An out-of-bound program whose values at a few points are in bound: consistent with
    # examples there, but it has no outputs on the grid, so it is not an answer.
    rejected = 0
    for i in np.flatnonzero(u.semantic_class < 0)[:200]:
        values = np.array([g.evaluate(u.program(int(i)), g.grid[[p]]) for p in range(g.n_points)], dtype=object)
        points = [p for p, v in enumerate(values) if v is not None][:3]
        if not points:
            continue
        outputs = [int(values[p][0]) for p in points]
        got = check(search, u, points, outputs)
        assert got.program != i and (not got.found or u.semantic_class[got.program] >= 0)
        rejected += 1
    assert rejected > 0


def test_passes_means_the_same_semantic_class(search, universe):
    tasks = random_tasks(universe, 200, 2, "passes")
    results = search.search_batch(tasks.points, tasks.outputs)
    ok = passes(universe, results.program, tasks.targets)
    same = universe.semantic_class[results.program] == universe.semantic_class[tasks.targets]
    assert np.array_equal(ok, same)
    assert ok[results.consistent_classes == 1].all()  # an unambiguous task's answer passes
    assert 0 < ok.mean() < 1  # two examples leave some tasks ambiguous
    assert not passes(universe, [-1], [0])[0]


def test_tasks_are_drawn_reproducibly(universe, grammar):
    a = random_tasks(universe, 20, 10, "draw")
    b = random_tasks(universe, 20, 10, "draw")
    assert np.array_equal(a.points, b.points) and np.array_equal(a.outputs, b.outputs)
    assert all(len(set(row)) == 10 for row in a.points.tolist())
    for t in range(5):
        want = grammar.evaluate(universe.program(int(a.targets[t])), grammar.grid[a.points[t]])
        assert np.array_equal(a.outputs[t], want)


def test_bad_input_is_refused(search, grammar):
    with pytest.raises(ValueError, match="grid-point"):
        search.search([grammar.n_points], [0])
    with pytest.raises(ValueError, match="K >= 1"):
        search.search_batch(np.zeros((2, 0), int), np.zeros((2, 0), int))
    with pytest.raises(ValueError, match="shape"):
        search.search_batch([0, 1, 2], np.zeros((2, 2), int))
    with pytest.raises(ValueError, match="unit"):
        search.search([0], [0], 5, "trees")
    with pytest.raises(ValueError, match="budget"):
        search.search([0], [0], -1)
    with pytest.raises(ValueError, match="grid"):
        grid_points(grammar, [grammar.grid_high + 1, 0])
