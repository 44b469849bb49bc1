"""The universe: counts, order, classes and storage, each against independent reference code."""

from __future__ import annotations

import hashlib
from functools import lru_cache

import numpy as np
import pytest

import synthgen.enumeration as enumeration
from synthgen.enumeration import enumerate_universe
from synthgen.grammar import analytic_counts
from synthgen.universe import read_universe, write_universe
from tests.conftest import make_grammar


def count_trees(leaves: int, unary: int, binary: int, size: int) -> int:
    """Number of trees of exactly ``size`` nodes, counted by the root's shape (written
    independently of synthgen's recurrence)."""

    @lru_cache(maxsize=None)
    def n(s: int) -> int:
        if s <= 0:
            return 0
        total = leaves if s == 1 else 0
        total += unary * n(s - 1)
        total += binary * sum(n(left) * n(s - 1 - left) for left in range(1, s - 1))
        return total

    return n(size)


def test_counts_match_the_analytic_count(universe, grammar):
    sizes = np.bincount(universe.size)[1:]
    want = [count_trees(5, 2, 7, s) for s in range(1, grammar.max_size + 1)]
    assert sizes.tolist() == want == analytic_counts(grammar)


def test_default_and_paper_grammar_sizes():
    # STUDY.md's calibration points for the default DSL
    g7 = make_grammar(max_size=7)
    assert sum(analytic_counts(g7)) == sum(count_trees(5, 2, 7, s) for s in range(1, 8)) == 2_003_685
    assert sum(analytic_counts(make_grammar(max_size=8))) == 20_558_175


@pytest.mark.parametrize(
    "changes",
    [dict(), dict(unary=(), binary=("add",)), dict(constants=(), unary=("abs",)), dict(variables=("x",), binary=("sub", "mod"))],
)
def test_order_and_trees_match_direct_enumeration(changes):
    """Row i of the universe is the i-th tree of a plain recursive enumeration."""
    g = make_grammar(max_size=4, **changes)
    u = enumerate_universe(g)
    direct = [p for s in range(1, g.max_size + 1) for p in g.all_programs(s)]
    assert len(u) == len(direct)
    for i, p in enumerate(direct):
        assert u.program(i) == p
        assert u.tokens(i) == p.tokens()
        assert u.size[i] == p.size and u.depth[i] == p.depth


def test_classes_agree_with_direct_evaluation(universe, grammar):
    rng = np.random.default_rng(0)
    sample = rng.choice(len(universe), size=1500, replace=False)
    seen: dict[bytes, int] = {}
    for i in sample:
        out = grammar.evaluate(universe.program(int(i)))
        assert out is not None
        assert np.array_equal(universe.class_outputs[universe.semantic_class[i]], out)
        # same outputs <=> same class
        assert seen.setdefault(out.tobytes(), int(universe.semantic_class[i])) == universe.semantic_class[i]


def test_every_class_is_distinct_and_used(universe):
    rows = {r.tobytes() for r in universe.class_outputs}
    assert len(rows) == universe.n_classes
    assert (universe.class_sizes() > 0).all()
    reps = universe.representatives()
    assert (universe.semantic_class[reps] == np.arange(universe.n_classes)).all()
    # a representative is the first program of its class
    for k in np.random.default_rng(1).choice(universe.n_classes, 50, replace=False):
        assert np.flatnonzero(universe.semantic_class == k)[0] == reps[k]


def test_out_of_bound_programs_are_flagged():
    g = make_grammar(max_size=5, value_bound=20)
    u = enumerate_universe(g)
    flagged = u.semantic_class < 0
    assert flagged.any() and not flagged.all()
    for i in np.random.default_rng(2).choice(len(u), 800, replace=False):
        out = g.evaluate(u.program(int(i)))
        assert (out is None) == flagged[i]
        if out is not None:
            assert np.array_equal(u.class_outputs[u.semantic_class[i]], out)
    assert np.abs(u.class_outputs).max() <= 20


def test_hash_collisions_are_detected_and_retried(monkeypatch):
    g = make_grammar(max_size=4)
    clean = enumerate_universe(g)
    real = enumeration._row_hash

    def weak_first_seed(rows, seed):
        return np.zeros(len(rows), np.uint64) if seed == 0 else real(rows, seed)

    monkeypatch.setattr(enumeration, "_row_hash", weak_first_seed)
    retried = enumerate_universe(g)
    assert np.array_equal(clean.semantic_class, retried.semantic_class)
    assert np.array_equal(clean.class_outputs, retried.class_outputs)


def test_storage_round_trip_and_deterministic_bytes(universe, tmp_path):
    write_universe(universe, tmp_path / "a")
    write_universe(enumerate_universe(universe.grammar), tmp_path / "b")
    for name in ("programs.parquet", "classes.parquet"):
        a, b = (hashlib.sha256((tmp_path / d / name).read_bytes()).hexdigest() for d in "ab")
        assert a == b
    back = read_universe(tmp_path / "a")
    assert back.grammar == universe.grammar
    for field in ("op", "left", "right", "size", "depth", "semantic_class", "class_outputs"):
        assert np.array_equal(getattr(back, field), getattr(universe, field)), field
    assert not list(tmp_path.glob("*/.*.tmp")), "temporary files left behind"
