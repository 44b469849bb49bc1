"""pq-gram profiles: hand-worked profiles, the distance, and the vectorised universe
builder against the per-tree definition on every program of the smoke universe."""

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from synthgen.enumeration import enumerate_universe
from synthgen.grammar import Grammar, Program, parse_prefix
from synthgen.params import load_params
from synthgen.pqgram import (
    program_profiles,
    pq_distance,
    pq_distance_rows,
    pq_nearest_distance,
    pq_profile,
    universe_profiles,
)

ROOT = Path(__file__).resolve().parents[1]
SMOKE = {"grammar.max_size": 5, "grammar.grid": {"low": -3, "high": 3}, "splits.train_size": 800}  # as profiles/smoke.yaml


def tree(op: str, *children: Program) -> Program:
    return Program(op, tuple(children))


@pytest.fixture(scope="module")
def grammar() -> Grammar:
    return Grammar.from_params(load_params(ROOT / "params.yaml", SMOKE).grammar)


@pytest.fixture(scope="module")
def universe(grammar):
    return enumerate_universe(grammar)


# --- profiles worked out by hand ------------------------------------------------------


def test_augsten_example_tree():
    """The example of Augsten, Böhlen and Gamper (VLDB 2005): T = a(a(e, b), b, c) with
    p = 2, q = 3.  The extended tree puts one null above the root, two null children
    before and after the children of the two inner nodes, and three under each leaf.
    13 pq-grams: 9 with a non-null base, anchored at the inner nodes (5 at the root with
    its 3 children, 4 at the inner a with its 2), and one all-null base per leaf (4);
    the two leaves labelled b under an a give the same gram twice."""
    t = tree("a", tree("a", tree("e"), tree("b")), tree("b"), tree("c"))
    expected = Counter(
        {
            ("*", "a", "*", "*", "a"): 1,
            ("*", "a", "*", "a", "b"): 1,
            ("*", "a", "a", "b", "c"): 1,
            ("*", "a", "b", "c", "*"): 1,
            ("*", "a", "c", "*", "*"): 1,
            ("a", "a", "*", "*", "e"): 1,
            ("a", "a", "*", "e", "b"): 1,
            ("a", "a", "e", "b", "*"): 1,
            ("a", "a", "b", "*", "*"): 1,
            ("a", "e", "*", "*", "*"): 1,
            ("a", "b", "*", "*", "*"): 2,
            ("a", "c", "*", "*", "*"): 1,
        }
    )
    profile = pq_profile(t, p=2, q=3)
    assert profile == expected
    assert sum(profile.values()) == 13
    assert sum(n for g, n in profile.items() if g[2:] != ("*", "*", "*")) == 9


def test_leaf():
    assert pq_profile(Program("x"), 2, 3) == Counter({("*", "x", "*", "*", "*"): 1})


def test_unary_p2_q2():
    # neg: stem (*, neg), children padded to (*, x, *); x: stem (neg, x), base (*, *)
    assert pq_profile(tree("neg", tree("x")), 2, 2) == Counter(
        {("*", "neg", "*", "x"): 1, ("*", "neg", "x", "*"): 1, ("neg", "x", "*", "*"): 1}
    )


def test_p3_q2_stems_reach_two_ancestors_up():
    # add x neg y: two nulls above the root; y's stem is (add, neg, y)
    t = tree("add", tree("x"), tree("neg", tree("y")))
    assert pq_profile(t, 3, 2) == Counter(
        {
            ("*", "*", "add", "*", "x"): 1,
            ("*", "*", "add", "x", "neg"): 1,
            ("*", "*", "add", "neg", "*"): 1,
            ("*", "add", "x", "*", "*"): 1,
            ("*", "add", "neg", "*", "y"): 1,
            ("*", "add", "neg", "y", "*"): 1,
            ("add", "neg", "y", "*", "*"): 1,
        }
    )


def test_p1_q1_has_no_padding_around_children():
    t = tree("add", tree("x"), tree("y"))
    assert pq_profile(t, 1, 1) == Counter({("add", "x"): 1, ("add", "y"): 1, ("x", "*"): 1, ("y", "*"): 1})


def test_profile_size_is_one_per_leaf_and_f_plus_q_minus_1_per_inner_node(universe):
    for i in range(0, len(universe), 997):
        t = universe.program(i)
        for p, q in [(1, 1), (2, 3), (3, 4)]:
            expected = sum(1 if not n.children else len(n.children) + q - 1 for n in t.nodes())
            assert sum(pq_profile(t, p, q).values()) == expected


@pytest.mark.parametrize("p, q", [(0, 3), (2, 0), (1.5, 3), (True, 3)])
def test_rejects_bad_p_q(p, q):
    with pytest.raises(ValueError, match="pq-grams need integer"):
        pq_profile(Program("x"), p, q)


# --- the distance -----------------------------------------------------------------------


def test_distance_by_hand_with_bag_semantics(grammar):
    # p=2, q=2.  add x y: (*,add,*,x) (*,add,x,y) (*,add,y,*) (add,x,*,*) (add,y,*,*)
    #            add x x: (*,add,*,x) (*,add,x,x) (*,add,x,*) (add,x,*,*) x2
    # common: (*,add,*,x) once, (add,x,*,*) min(1, 2) = once -> 2 of 5 + 5
    a = pq_profile(parse_prefix("add x y", grammar), 2, 2)
    b = pq_profile(parse_prefix("add x x", grammar), 2, 2)
    assert pq_distance(a, b) == pytest.approx(1 - 2 * 2 / 10)


def test_distance_properties(universe):
    rng = np.random.default_rng(0)
    ids = rng.integers(0, len(universe), size=(60, 2))
    for i, j in ids:
        a, b = pq_profile(universe.program(i)), pq_profile(universe.program(j))
        assert pq_distance(a, a) == 0.0
        assert pq_distance(a, b) == pq_distance(b, a)
        assert 0.0 <= pq_distance(a, b) <= 1.0
    assert pq_distance(pq_profile(Program("x")), pq_profile(Program("y"))) == 1.0


def test_distance_rows_and_nearest_match_the_definition(universe):
    profiles = universe_profiles(universe, 2, 3)
    rng = np.random.default_rng(1)
    a, b = rng.integers(0, len(universe), 200), rng.integers(0, len(universe), 200)
    trees = {i: pq_profile(universe.program(i)) for i in np.concatenate([a, b])}
    expected = [pq_distance(trees[i], trees[j]) for i, j in zip(a, b)]
    np.testing.assert_allclose(pq_distance_rows(profiles.counts, a, b), expected, atol=1e-12)

    train, query = rng.choice(len(universe), 300, replace=False), rng.choice(len(universe), 40, replace=False)
    train_trees = [pq_profile(universe.program(j)) for j in train]
    expected = [min(pq_distance(pq_profile(universe.program(i)), t) for t in train_trees) for i in query]
    got = pq_nearest_distance(profiles.counts[query], profiles.counts[train], block=16)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert (got[np.isin(query, train)] == 0).all()


# --- the vectorised builder -------------------------------------------------------------


@pytest.mark.parametrize("p, q", [(1, 1), (1, 3), (2, 3), (3, 2), (4, 1)])
def test_universe_builder_equals_per_tree_profiles(universe, p, q):
    built = universe_profiles(universe, p, q)
    per_tree = program_profiles((universe.program(i) for i in range(len(universe))), p, q)
    assert built.vocabulary == per_tree.vocabulary == tuple(sorted(built.vocabulary))
    assert built.counts.shape == per_tree.counts.shape == (len(universe), len(built.vocabulary))
    assert built.counts.has_sorted_indices
    assert (built.counts != per_tree.counts).nnz == 0


@pytest.mark.slow(seconds=2)
@pytest.mark.parametrize("p, q", [(1, 2), (2, 3), (3, 2)])
def test_universe_builder_in_chunks_gives_the_same_arrays(universe, p, q):
    """Chunks of a size (memory) change nothing: the same vocabulary, and the same bytes in
    every array of the count matrix, dtypes included, as one chunk per size. Chunks of one
    program (the slowest case, a chunk per program) once, for (p, q) = (2, 3), on the
    universe up to size 4 (1,300 chunks across every size)."""
    from synthgen.enumeration import enumerate_universe
    from tests.conftest import make_grammar

    cases = [(universe, (61, 100))]  # 61: a prime, so chunks end anywhere in a size
    if (p, q) == (2, 3):
        cases.append((enumerate_universe(make_grammar(max_size=4)), (1,)))
    for u, chunks in cases:
        whole = universe_profiles(u, p, q, chunk=len(u))
        for chunk in chunks:
            built = universe_profiles(u, p, q, chunk=chunk)
            assert built.vocabulary == whole.vocabulary
            for name in ("data", "indices", "indptr"):
                got, want = getattr(built.counts, name), getattr(whole.counts, name)
                assert got.dtype == want.dtype and np.array_equal(got, want), (chunk, name)


@pytest.mark.parametrize("unary, binary", [((), ("add", "mul")), ((), ()), (("abs",), ())])
def test_universe_builder_handles_sizes_without_programs(unary, binary):
    """Without unary operators every even size is empty; without any operator, every size
    above 1.  The builder skips such sizes and still equals the per-tree profiles."""
    from synthgen.enumeration import enumerate_universe
    from tests.conftest import make_grammar

    u = enumerate_universe(make_grammar(unary=unary, binary=binary, max_size=5))
    built = universe_profiles(u, 2, 3)
    per_tree = program_profiles((u.program(i) for i in range(len(u))), 2, 3)
    assert built.vocabulary == per_tree.vocabulary
    assert built.counts.shape == (len(u), len(built.vocabulary))
    assert (built.counts != per_tree.counts).nnz == 0


def test_reindex_drops_unknown_grams_and_keeps_counts(universe, grammar):
    built = universe_profiles(universe, 2, 3)
    outside = parse_prefix("add add add x x x x", grammar)  # size 7: beyond max_size 5
    profiles = program_profiles([outside], 2, 3)
    on_vocab = profiles.reindex(built.vocabulary)
    profile = pq_profile(outside)
    known = sum(n for g, n in profile.items() if g in set(built.vocabulary))
    assert 0 < known < sum(profile.values())  # e.g. stem (add, add) over children (add, x) needs size 7
    assert on_vocab.counts.shape == (1, len(built.vocabulary))
    assert on_vocab.counts.sum() == known


def test_gram_codes_too_wide_for_int64_are_refused(universe):
    with pytest.raises(ValueError, match="too large"):
        universe_profiles(universe, 8, 9)
