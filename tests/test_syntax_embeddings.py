"""Every construction of the syntactic space (syntax.embedding): a new program lands on its
universe row, fits are seeded, spaces reload, landmark MDS reproduces exact distances on a
tiny universe, and the fidelity check measures what it says."""

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone

from synthgen import fidelity
from synthgen.enumeration import enumerate_universe
from synthgen.grammar import Grammar, parse_prefix
from synthgen.params import SYNTAX_EMBEDDINGS, ParamsError, load_params
from synthgen.pqgram import (
    pq_distance, pq_distance_of_jaccard, pq_distance_rows, pq_intersections, pq_nearest_distances,
    universe_profiles,
)
from synthgen.spaces import SYNTAX_SPACES, LandmarkSyntaxSpace, load_syntax_space, syntax_space

ROOT = Path(__file__).resolve().parents[1]
FEW = {"splits.train_size": 100, "splits.test_size": 10}  # small universes hold fewer programs than the default's splits
SMALL = {"grammar.max_size": 5, "grammar.grid": {"low": -3, "high": 3}, **FEW}
TINY = {"grammar.max_size": 3, "grammar.grid": {"low": -3, "high": 3}, **FEW}  # 210 programs


def universe_of(overrides):
    return enumerate_universe(Grammar.from_params(load_params(ROOT / "params.yaml", overrides).grammar))


@pytest.fixture(scope="module")
def universe():
    return universe_of(SMALL)


@pytest.fixture(scope="module")
def profiles(universe):
    return universe_profiles(universe, 2, 3)


def make(name: str, random_state: int = 3):
    knobs = {"dims": 8, "fit_sample": 4000, "landmarks": 300, "random_state": random_state}
    cls = SYNTAX_SPACES[name]
    return cls(**{k: v for k, v in knobs.items() if k in cls._get_param_names()})


@pytest.fixture(scope="module")
def fitted(profiles):
    return {name: make(name).fit(profiles) for name in SYNTAX_SPACES}


def test_the_constructions_are_the_ones_params_allow():
    assert tuple(SYNTAX_SPACES) == SYNTAX_EMBEDDINGS


@pytest.mark.parametrize("name", SYNTAX_EMBEDDINGS)
def test_a_new_program_lands_on_its_universe_row(name, universe, profiles, fitted):
    space = fitted[name]
    coords = space.transform(profiles)
    assert coords.dtype == np.float32 and coords.shape == (len(universe), 8) and np.isfinite(coords).all()
    ids = np.unique(np.linspace(0, len(universe) - 1, 40).astype(int))
    # parsed from tokens, as a model's output would be: one tree at a time, bit for bit
    programs = [parse_prefix(universe.prefix(int(i)), universe.grammar) for i in ids]
    np.testing.assert_array_equal(space.transform(programs), coords[ids])
    np.testing.assert_array_equal(space.transform(programs[:1]), coords[ids[:1]])
    np.testing.assert_array_equal(clone(space).fit_transform(profiles), coords)


@pytest.mark.parametrize("name", SYNTAX_EMBEDDINGS)
def test_programs_outside_the_universe_are_placed(name, universe, fitted):
    bigger = parse_prefix("add add add x x x x", universe.grammar)  # size 7 > max_size 5
    coords = fitted[name].transform([bigger])
    assert coords.shape == (1, 8) and np.isfinite(coords).all()


@pytest.mark.parametrize("name", SYNTAX_EMBEDDINGS)
def test_fits_are_seeded_and_reload(name, profiles, fitted, tmp_path):
    coords = fitted[name].transform(profiles)
    np.testing.assert_array_equal(make(name).fit_transform(profiles), coords)
    assert not np.array_equal(make(name, random_state=4).fit_transform(profiles), coords)
    fitted[name].save(tmp_path / "a.npz")
    make(name).fit(profiles).save(tmp_path / "b.npz")
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    again = load_syntax_space(tmp_path / "a.npz")
    assert type(again) is type(fitted[name]) and again.get_params() == fitted[name].get_params()
    np.testing.assert_array_equal(again.transform(profiles), coords)


def test_syntax_space_follows_params():
    P = load_params(ROOT / "params.yaml", {"syntax.embedding": "landmark_mds", "syntax.landmarks": 500})
    space = syntax_space(P.syntax, random_state=9)
    assert isinstance(space, LandmarkSyntaxSpace)
    assert space.get_params() == {"p": 2, "q": 3, "dims": 32, "landmarks": 500, "random_state": 9}
    for name in SYNTAX_EMBEDDINGS:
        space = syntax_space(load_params(ROOT / "params.yaml", {"syntax.embedding": name}).syntax, random_state=1)
        assert space.embedding == name


# --- landmark MDS -----------------------------------------------------------------------


def test_landmark_mds_reproduces_exact_distances_on_a_tiny_universe():
    """Every program a landmark and every axis kept: the space's distance is sqrt(1 - J)
    for every pair, so the exact pq-gram distance comes back from it."""
    profiles = universe_profiles(universe_of(TINY), 2, 3)
    n = profiles.counts.shape[0]
    space = LandmarkSyntaxSpace(dims=n - 1, landmarks=n).fit(profiles)
    assert (space.eigenvalues_[: n - 1] > 0).all()  # sqrt(1 - J) is Euclidean
    coords = space.transform(profiles).astype(np.float64)
    a, b = np.triu_indices(n, 1)
    squared = ((coords[a] - coords[b]) ** 2).sum(axis=1)
    np.testing.assert_allclose(pq_distance_of_jaccard(1 - squared), pq_distance_rows(profiles.counts, a, b), atol=1e-5)


def test_landmark_mds_refuses_what_it_cannot_do(profiles):
    with pytest.raises(ValueError, match="landmarks"):
        LandmarkSyntaxSpace(dims=8, landmarks=8).fit(profiles)
    with pytest.raises(ValueError, match=r"landmarks \(20000\) exceeds the 17830 programs"):
        LandmarkSyntaxSpace(dims=8, landmarks=20_000).fit(profiles)
    tiny = universe_profiles(universe_of(TINY), 2, 3)
    twice = tiny.select([0, 0, 1, 1, 2, 2])  # six programs, three distinct profiles (leaves): two axes
    with pytest.raises(ValueError, match=r"span only 2 axes; dims \(3\)"):
        LandmarkSyntaxSpace(dims=3, landmarks=6).fit(twice)


# --- exact pq-gram arithmetic -----------------------------------------------------------

bags = st.lists(st.tuples(st.integers(0, 11), st.integers(1, 4)), max_size=8)


def as_matrix(rows: list[dict[int, int]], width: int = 12) -> sp.csr_matrix:
    dense = np.zeros((len(rows), width), np.int32)
    for i, row in enumerate(rows):
        for j, c in row.items():
            dense[i, j] = c
    return sp.csr_matrix(dense)


@settings(max_examples=60, deadline=None)
@given(st.lists(bags.map(dict), min_size=1, max_size=6), st.lists(bags.map(dict), min_size=1, max_size=6))
def test_intersections_and_jaccard_match_the_bag_definition(query, reference):
    from collections import Counter

    shared = pq_intersections(as_matrix(query), as_matrix(reference)).toarray()
    for i, a in enumerate(query):
        for j, b in enumerate(reference):
            ca, cb = Counter(a), Counter(b)
            assert shared[i, j] == sum((ca & cb).values())
            union = sum((ca | cb).values())
            if union:
                jaccard = sum((ca & cb).values()) / union
                assert pq_distance_of_jaccard(jaccard) == pytest.approx(pq_distance(ca, cb), abs=1e-12)


@settings(max_examples=30, deadline=None)
@given(st.lists(bags.filter(bool).map(dict), min_size=4, max_size=12), st.integers(1, 3), st.integers(0, 2))
def test_k_nearest_distances_match_brute_force(rows, k, n_query):
    counts = as_matrix(rows)
    query, train = counts[: n_query + 1], counts[n_query + 1 :]
    k = min(k, train.shape[0])
    got = pq_nearest_distances(query, train, k)
    for i in range(query.shape[0]):
        every = pq_distance_rows(sp.vstack([query[i], train], format="csr"), np.zeros(train.shape[0], int),
                                 np.arange(1, train.shape[0] + 1))
        np.testing.assert_allclose(got[i], np.sort(every)[:k], atol=1e-6)


# --- the fidelity check -----------------------------------------------------------------


def test_fidelity_check_on_a_faithful_and_a_blind_space():
    profiles = universe_profiles(universe_of(TINY), 2, 3)
    n = profiles.counts.shape[0]
    rng = np.random.default_rng(2)
    check = fidelity.SyntaxCheck.draw(profiles.counts, rng, n_pairs=400, n_train=150, n_queries=40, k=5)
    assert check.exact_nearest.shape == (40, 5) and (np.diff(check.exact_nearest, axis=1) >= 0).all()
    faithful = LandmarkSyntaxSpace(dims=n - 1, landmarks=n).fit_transform(profiles)
    got = check.measure(faithful, profiles.counts)
    assert got["recall_at_5"] == 1.0
    ceilings = check.tie_ceilings(rng)
    for key in ("random_pairs", "pairs_sharing_a_gram", "nearest_training_program"):
        assert got[key] > ceilings[key] - 0.01  # a faithful space loses only what ties cost
    rows = check.rows()
    assert check.measure(faithful[rows], profiles.counts, ids=rows) == got  # placed rows only: the same
    blind = rng.normal(size=faithful.shape).astype(np.float32)
    worse = check.measure(blind, profiles.counts)
    assert abs(worse["random_pairs"]) < 0.2 and worse["recall_at_5"] < 0.5


def test_nearest_rows_matches_a_k_d_tree():
    from scipy.spatial import KDTree

    rng = np.random.default_rng(4)
    train, query = rng.normal(size=(500, 6)), rng.normal(size=(70, 6))
    distance, index = fidelity.nearest_rows(query, train, 4, block=16)
    want_distance, want_index = KDTree(train).query(query, k=4)
    np.testing.assert_allclose(distance, want_distance, atol=1e-9)
    np.testing.assert_array_equal(index, want_index)


# --- params -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"syntax.embedding": "umap"}, "syntax.embedding = 'umap': must be one of svd, tfidf_svd, random_projection, landmark_mds"),
        ({"syntax.embedding": None}, "syntax.embedding = None: Input should be a valid string"),
        ({"syntax.landmarks": 1}, "syntax.landmarks = 1: must be an integer from 2 to 10000"),
        ({"syntax.landmarks": 10.0}, "syntax.landmarks = 10.0: Input should be a valid integer"),
        ({"syntax.landmarks": 32}, "landmarks (32) must be greater than dims (32)"),
    ],
)
def test_bad_embedding_params_stop_with_one_line(overrides, message):
    with pytest.raises(ParamsError) as err:
        load_params(ROOT / "params.yaml", overrides)
    assert message in str(err.value) and "\n" not in str(err.value)
