"""The metric spaces: new programs land where universe programs are, out-of-bound
programs have no semantic point, artifacts reload and are deterministic, OOD distance
matches brute force, and bad params stop with one line."""

from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from synthgen.enumeration import enumerate_universe
from synthgen.grammar import Grammar, parse_prefix
from synthgen.ood import ood_distance, semantic_ood_distance, syntactic_ood_distance
from synthgen.params import ParamsError, load_params
from synthgen.pqgram import universe_profiles
from synthgen.spaces import (
    SEMANTIC_SPACE_FILE,
    SYNTAX_SPACE_FILE,
    SemanticSpace,
    SyntaxSpace,
    program_semantics,
    read_profiles,
    write_spaces,
)

ROOT = Path(__file__).resolve().parents[1]
# The smoke grammar with a value bound low enough that some programs leave it (x*y*3
# reaches 27 on the grid).
SMALL = {"grammar.max_size": 5, "grammar.grid": {"low": -3, "high": 3}, "grammar.value_bound": 20,
         "splits.train_size": 800}  # the smoke profile's: 17,830 programs hold no default-sized split


@pytest.fixture(scope="module")
def universe():
    u = enumerate_universe(Grammar.from_params(load_params(ROOT / "params.yaml", SMALL).grammar))
    assert (u.semantic_class < 0).any()
    return u


@pytest.fixture(scope="module")
def profiles(universe):
    return universe_profiles(universe, 2, 3)


@pytest.fixture(scope="module")
def syntax(profiles):
    return SyntaxSpace(dims=16, fit_sample=4000, random_state=3).fit(profiles)


@pytest.fixture(scope="module")
def semantics(universe):
    return SemanticSpace(dims=12).fit(universe)


def spread(universe, n=40):
    return np.unique(np.linspace(0, len(universe) - 1, n).astype(int))


# --- the syntactic space ----------------------------------------------------------------


def test_universe_program_transforms_to_its_row(universe, profiles, syntax):
    coords = syntax.transform(profiles)
    assert coords.dtype == np.float32 and coords.shape == (len(universe), 16)
    ids = spread(universe)
    np.testing.assert_array_equal(syntax.transform([universe.program(i) for i in ids]), coords[ids])
    np.testing.assert_array_equal(syntax.transform(universe), coords)


def test_fit_transform_equals_fit_then_transform(profiles, syntax):
    np.testing.assert_array_equal(clone(syntax).fit_transform(profiles), syntax.transform(profiles))


def test_refit_starts_afresh(universe, profiles):
    small = [universe.program(i) for i in range(0, 400)]
    space = SyntaxSpace(dims=4).fit(profiles).fit(small)
    assert space.vocabulary_ == SyntaxSpace(dims=4).fit(small).vocabulary_ != profiles.vocabulary


def test_sampled_fit_is_seeded(profiles, syntax):
    again = SyntaxSpace(dims=16, fit_sample=4000, random_state=3).fit(profiles)
    other = SyntaxSpace(dims=16, fit_sample=4000, random_state=4).fit(profiles)
    np.testing.assert_array_equal(again.components_, syntax.components_)
    assert not np.array_equal(other.components_, syntax.components_)


def test_programs_outside_the_universe_are_placed(universe, syntax):
    bigger = parse_prefix("add add add x x x x", universe.grammar)  # size 7 > max_size 5
    coords = syntax.transform([bigger])
    assert coords.shape == (1, 16) and np.isfinite(coords).all()


def test_a_universe_with_fewer_directions_than_dims_gets_zero_axes():
    """A tiny grammar has fewer distinct pq-grams and classes than the spaces have
    dimensions: the fit takes every direction there is, the other axes are zero, and
    distances are those of the full-rank space."""
    u = enumerate_universe(Grammar(("x",), (1,), (), ("max",), 3, -3, 3, 100))  # 6 programs, 3 classes
    profiles = universe_profiles(u, 2, 3)
    n_grams = len(profiles.vocabulary)
    wide = SyntaxSpace(dims=n_grams + 5, fit_sample=None).fit(profiles)
    coords = wide.transform(profiles)
    assert coords.shape == (len(u), n_grams + 5) and not coords[:, n_grams:].any()
    assert wide.explained_variance_ratio_.sum() == pytest.approx(1.0)
    full = profiles.counts.toarray().astype(float)  # an orthonormal basis of every gram keeps distances
    pairs = np.linalg.norm(full[:, None] - full[None], axis=-1)
    np.testing.assert_allclose(np.linalg.norm(coords[:, None] - coords[None], axis=-1), pairs, atol=1e-4)
    semantics = SemanticSpace(dims=u.grammar.n_points).fit(u)
    assert u.n_classes < u.grammar.n_points
    points = semantics.transform(u)
    assert points.shape == (u.n_classes, u.grammar.n_points) and not points[:, u.n_classes:].any()
    assert np.isfinite(points).all()
    one_function = SemanticSpace(dims=3).fit(np.array([[1, 2, 3]]))  # a grammar whose programs all agree
    assert not one_function.transform(np.array([[1, 2, 3]])).any()
    assert np.isfinite(one_function.explained_variance_ratio_).all()


def test_syntax_space_validates_in_fit(profiles):
    with pytest.raises(ValueError, match="dims"):
        SyntaxSpace(dims=0).fit(profiles)
    with pytest.raises(ValueError, match="fit_sample"):
        SyntaxSpace(dims=16, fit_sample=8).fit(profiles)
    with pytest.raises(ValueError, match="p=2, q=3"):
        SyntaxSpace(p=3).fit(profiles)
    with pytest.raises(NotFittedError):
        SyntaxSpace().transform(profiles)


# --- the semantic space -----------------------------------------------------------------


def test_semantic_points_are_per_class(universe, semantics):
    coords = semantics.transform(universe)
    assert coords.dtype == np.float32 and coords.shape == (universe.n_classes, 12)
    ids = spread(universe)
    ids = ids[universe.semantic_class[ids] >= 0]
    got = semantics.transform([universe.program(i) for i in ids])
    np.testing.assert_array_equal(got, coords[universe.semantic_class[ids]])


def test_out_of_bound_programs_have_no_semantic_point(universe, semantics):
    coords = semantics.transform(universe)
    out = np.flatnonzero(universe.semantic_class < 0)[:5]
    assert np.isnan(semantics.transform([universe.program(i) for i in out])).all()
    per_program = program_semantics(universe, coords)
    assert np.isnan(per_program[universe.semantic_class < 0]).all()
    assert np.isfinite(per_program[universe.semantic_class >= 0]).all()


def test_semantic_z_scores_and_transform_choice(universe):
    for name in ("asinh", "none"):
        space = SemanticSpace(dims=universe.grammar.n_points, output_transform=name).fit(universe)
        assert space.explained_variance_ratio_.sum() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="output_transform"):
        SemanticSpace(output_transform="log").fit(universe)
    with pytest.raises(ValueError, match="grid points"):
        SemanticSpace(dims=universe.grammar.n_points + 1).fit(universe)


def test_space_fitted_on_bare_outputs_cannot_evaluate_programs(universe):
    space = SemanticSpace(dims=4).fit(universe.class_outputs)
    np.testing.assert_array_equal(space.transform(universe.class_outputs), SemanticSpace(dims=4).fit(universe).transform(universe))
    with pytest.raises(ValueError, match="no grid"):
        space.transform([parse_prefix("x", universe.grammar)])


# --- artifacts --------------------------------------------------------------------------


def build_artifacts(universe, folder: Path) -> None:
    profiles = universe_profiles(universe, 2, 3)
    syntax = SyntaxSpace(dims=16, fit_sample=4000, random_state=11)
    semantics = SemanticSpace(dims=12).fit(universe)
    write_spaces(folder, profiles, syntax, syntax.fit_transform(profiles), semantics, semantics.transform(universe))


def test_artifacts_reload_and_have_the_same_bytes_for_the_same_params(universe, tmp_path):
    build_artifacts(universe, tmp_path / "a")
    build_artifacts(universe, tmp_path / "b")
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert files == sorted(p.name for p in (tmp_path / "b").iterdir())
    assert not [p for p in files if p.startswith(".")]  # no temporary file left behind
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name

    folder = tmp_path / "a"
    syntax, semantics = SyntaxSpace.load(folder / SYNTAX_SPACE_FILE), SemanticSpace.load(folder / SEMANTIC_SPACE_FILE)
    assert syntax.get_params() == {"p": 2, "q": 3, "dims": 16, "fit_sample": 4000, "random_state": 11}
    np.testing.assert_array_equal(syntax.transform(universe), np.load(folder / "syntax.npy"))
    ids = spread(universe)
    ids = ids[universe.semantic_class[ids] >= 0]
    np.testing.assert_array_equal(
        semantics.transform([universe.program(i) for i in ids]), np.load(folder / "semantics.npy")[universe.semantic_class[ids]]
    )
    profiles = read_profiles(folder)
    assert (profiles.counts != universe_profiles(universe, 2, 3).counts).nnz == 0


# --- OOD distance -----------------------------------------------------------------------


def brute_force(query, train):
    d = np.sqrt(((query[:, None, :].astype(np.float64) - train[None, :, :]) ** 2).sum(axis=-1))
    return d.min(axis=1)


def test_ood_distance_matches_brute_force():
    rng = np.random.default_rng(5)
    train = rng.normal(size=(3000, 8)).astype(np.float32)
    query = np.concatenate([rng.normal(size=(200, 8)), train[:20]]).astype(np.float32)
    got = ood_distance(query, train)
    np.testing.assert_allclose(got, brute_force(query, train), rtol=1e-12, atol=1e-12)
    assert (got[-20:] == 0).all()  # a training point is at distance zero from itself


def test_ood_distance_rows_without_a_point():
    train = np.eye(3)
    query = np.array([[0.0, 0.0, 0.0], [np.nan, 0.0, 0.0]])
    got = ood_distance(query, train)
    assert got[0] == pytest.approx(1.0) and np.isnan(got[1])
    with pytest.raises(ValueError, match="finite"):
        ood_distance(query[:1], query)
    with pytest.raises(ValueError, match="empty"):
        ood_distance(query[:1], train[:0])
    with pytest.raises(ValueError, match="widths"):
        ood_distance(query[:, :2], train)


def test_ood_distance_in_each_space(universe, profiles, syntax, semantics):
    rng = np.random.default_rng(6)
    train, test = rng.choice(len(universe), 2000, replace=False), rng.choice(len(universe), 300, replace=False)
    coords = syntax.transform(profiles)
    np.testing.assert_allclose(syntactic_ood_distance(coords, train, test), brute_force(coords[test], coords[train]), atol=1e-9)

    # semantic: the training points are the distinct classes of the training programs
    classes = semantics.transform(universe)
    got = semantic_ood_distance(classes, universe.semantic_class, train, test)
    train_classes = np.unique(universe.semantic_class[train])
    train_classes = train_classes[train_classes >= 0]
    out = universe.semantic_class[test] < 0
    assert out.any() and np.isnan(got[out]).all()
    expected = brute_force(classes[universe.semantic_class[test[~out]]], classes[train_classes])
    np.testing.assert_allclose(got[~out], expected, atol=1e-9)
    shares_class = np.isin(universe.semantic_class[test], train_classes)
    assert (got[shares_class] == 0).all()


# --- params -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"syntax.p": 0}, "syntax.p = 0: must be an integer from 1 to 8"),
        ({"syntax.q": 9}, "syntax.q = 9: must be an integer from 1 to 8"),
        ({"syntax.q": "3"}, "syntax.q = '3': Input should be a valid integer"),
        ({"syntax.dims": 0}, "syntax.dims = 0: must be an integer from 1 to 1024"),
        ({"syntax.fit_sample": 10}, "fit_sample (10) must be null or at least dims (32)"),
        ({"syntax.fit_sample": 2.5}, "syntax.fit_sample"),
        ({"grammar.constants": [1, 2, 3, 4], "syntax.p": 8, "syntax.q": 8}, "p + q = 16 is too large"),
        ({"semantics.dims": 0}, "semantics.dims = 0: must be an integer >= 1"),
        ({"semantics.dims": 82}, "dims (82) must not exceed the 81 grid points"),
        ({"semantics.transform": "log"}, "semantics.transform = 'log': must be one of asinh, none"),
        ({"splits.density.fit_sample": 1000}, "fit_sample (1000) must be null or at least reference (20000)"),
        ({"splits.density.fit_sample": 0.5}, "splits.density.fit_sample"),
        ({"splits.density.fit_sample": 30000, "splits.test_size": 40000},
         "density.fit_sample (30000) must be null or at least test_size (40000)"),
    ],
)
def test_bad_params_stop_with_one_line(overrides, message):
    with pytest.raises(ParamsError) as err:
        load_params(ROOT / "params.yaml", overrides)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_unknown_key_in_a_new_section(tmp_path):
    text = (ROOT / "params.yaml").read_text().replace("  transform: asinh", "  scale: 1\n  transform: asinh")
    (tmp_path / "params.yaml").write_text(text)
    with pytest.raises(ParamsError, match=r"semantics.scale: unknown key; allowed keys here: dims, transform"):
        load_params(tmp_path / "params.yaml")


def test_fit_sample_may_be_null():
    assert load_params(ROOT / "params.yaml", {"syntax.fit_sample": None}).syntax.fit_sample is None


# --- fidelity helpers -------------------------------------------------------------------


def test_fidelity_helpers(universe):
    from synthgen import fidelity

    rng = np.random.default_rng(7)
    a, b = fidelity.random_pairs(len(universe), 500, rng)
    assert (a != b).all() and a.max() < len(universe)
    a, b = fidelity.same_class_pairs(universe, 500, rng)
    assert (a != b).all()
    assert (universe.semantic_class[a] == universe.semantic_class[b]).all() and (universe.semantic_class[a] >= 0).all()
    assert fidelity.tie_ceiling(np.arange(10.0), rng) == pytest.approx(1.0)
    tied = np.array([0.1, 0.2] + [1.0] * 98)
    assert fidelity.tie_ceiling(tied, rng) < 0.5
    x = np.array([[0.0, 0.0], [3.0, 4.0]])
    assert fidelity.pair_distance(x, np.array([0]), np.array([1])).tolist() == [5.0]
    assert fidelity.pair_distance(x, np.array([0]), np.array([1]), dims=1).tolist() == [3.0]
    ted = fidelity.tree_edit_distance(universe, np.array([0, 0]), np.array([0, 1]))
    assert ted.tolist() == [0.0, 1.0]  # x vs x; x vs y (one relabel)


def test_leading_grams_names_the_heaviest_loadings(syntax):
    from synthgen.spaces import leading_grams

    table = leading_grams(syntax, axes=3, top=4)
    assert list(table.columns) == ["axis", "rank", "gram", "loading"] and len(table) == 12
    first = table[table.axis == 1]
    assert first.loading.abs().is_monotonic_decreasing
    assert first.loading.abs().iloc[0] == pytest.approx(np.abs(syntax.components_[0]).max())


def test_count_moments_give_the_dense_svd_and_variances(profiles):
    """CountMoments (XᵀX, built in blocks of rows) against the dense count matrix: the total
    variance, the variance along any axes, and the SVD of every row."""
    from sklearn.utils.sparsefuncs import mean_variance_axis

    from synthgen.fidelity import CountMoments

    # the 1,000 commonest pq-grams of the smoke universe's counts (all 17,830 rows): real
    # count data, small enough that the dense references below take seconds, not a minute
    common = np.sort(np.argsort(-profiles.counts.getnnz(axis=0), kind="stable")[:1000])
    counts = profiles.counts[:, common].tocsr()
    dense = counts.toarray().astype(np.float64)
    one_block = CountMoments.of(counts, block=counts.shape[0])
    moments = CountMoments.of(counts, block=37)  # many blocks, a ragged last one
    assert (moments.gram != one_block.gram).nnz == 0  # exact integer sums, whatever the blocks
    dense_gram = dense.T @ dense
    np.testing.assert_allclose(moments.gram.toarray(), dense_gram)
    np.testing.assert_allclose(moments.total_variance(), mean_variance_axis(counts.astype(np.float64), axis=0)[1].sum())
    basis = np.random.default_rng(0).standard_normal((counts.shape[1], 5))
    np.testing.assert_allclose(moments.projected_variance(basis), (dense @ basis).var(axis=0), rtol=1e-9)

    dims = 8
    axes, singular = moments.svd_axes(dims, seed=0)
    # the dense matrix's singular values, by LAPACK from its dense Gram matrix (the squares'
    # square roots): as exact here as an SVD of the 17,830 x 1,000 matrix
    expected = np.sqrt(np.linalg.eigvalsh(dense_gram)[::-1][:dims])
    np.testing.assert_allclose(singular, expected, rtol=1e-8)
    np.testing.assert_allclose(axes @ axes.T, np.eye(dims), atol=1e-10)
    # the axes keep all the (uncentred) energy the leading singular values promise
    np.testing.assert_allclose(((dense @ axes.T) ** 2).sum(), (expected**2).sum(), rtol=1e-8)
    assert (axes[np.arange(dims), np.abs(axes).argmax(axis=1)] > 0).all()
    first, _ = moments.svd_axes(dims, seed=0)
    assert np.array_equal(first, axes)  # seeded: the same axes again
    with pytest.raises(ValueError, match="dims"):
        moments.svd_axes(counts.shape[1], seed=0)
