"""The study's one bootstrap (synthgen/stats.py): keys and pairing, the estimators against
plain numpy and a slow reference, edge cases, and coverage on synthetic clustered data."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synthgen import stats
from synthgen.scaling_fit import percentile_interval as scaling_percentile_interval
from synthgen.seeding import random_keys
from synthgen.stats import (
    Estimate, cluster_bootstrap, difference, hierarchical_bootstrap, percentile_interval, ratio_drop,
    resample_indices, task_bootstrap,
)

# --- a slow reference: the documented key scheme, one replicate and one draw at a time ----


def _key(seed, purpose, *indices) -> int:
    return int(random_keys(seed, purpose, *indices))


def _first_appearance(labels) -> np.ndarray:
    index: dict = {}
    return np.array([index.setdefault(x, len(index)) for x in labels])


def _equal_clusters(m, copies, strata=None, weights=None):
    return np.mean([m[c].mean() for c in copies])


def _pooled(m, copies, strata=None, weights=None):
    return m[np.concatenate(copies)].mean()


def _post_stratified(m, copies, strata, weights):
    drawn = np.concatenate(copies)
    labels = np.asarray(strata, dtype=object)[drawn]
    present = [h for h in weights if np.any(labels == h)]
    if not present:
        return np.nan
    total = sum(weights[h] for h in present)
    return sum(weights[h] * m[drawn[labels == h]].mean() for h in present) / total


def reference(values, n_boot, seed, function_purpose, seed_purpose="seeds", clusters=None, strata=None,
              weights=None, estimator=_equal_clusters):
    """(estimate, replicates) by loops, straight from the keys documented in stats.py."""
    v = np.atleast_2d(np.asarray(values, dtype=float))
    n_seeds, n = v.shape
    cluster = np.zeros(n, int) if clusters is None else _first_appearance(clusters)
    n_clusters = int(cluster.max()) + 1
    members = [np.flatnonzero(cluster == k) for k in range(n_clusters)]
    cell = list(zip(cluster, strata)) if weights is not None else list(cluster)
    cell_of = [[g for g in range(n) if cell[g] == cell[f]] for f in range(n)]
    replicates = []
    for b in range(n_boot):
        seeds = [_key(seed, seed_purpose, b, s) % n_seeds for s in range(n_seeds)]
        m = v[seeds].mean(axis=0)
        chosen = [_key(seed, f"{function_purpose}:clusters", b, k) % n_clusters for k in range(n_clusters)]
        if n_clusters == 1:
            chosen = [0]
        copies = [
            np.array([cell_of[f][_key(seed, function_purpose, b, j * n + f) % len(cell_of[f])] for f in members[c]])
            for j, c in enumerate(chosen)
        ]
        replicates.append(estimator(m, copies, strata, weights))
    return estimator(v.mean(axis=0), members, strata, weights), np.array(replicates)


VALUES = np.random.default_rng(7).random((3, 12)).round(2)
CLUSTERS = ["r2", "r2", "r0", "r0", "r0", "r0", "r0", "r1", "r2", "r2", "r2", "r3"]  # r1, r3: one function each
STRATA = ["c", "x", "x", "c", "xy", "xy", "x", "c", "x", "rare", "x", "xy"]  # "rare": one function of r2


@pytest.mark.parametrize("kwargs", [
    {},
    {"clusters": CLUSTERS},
    {"strata": STRATA, "weights": {"c": 0.2, "x": 0.3, "xy": 0.5}},
    {"clusters": CLUSTERS, "strata": STRATA, "weights": {"c": 1.0, "x": 1.0, "rare": 2.0, "absent": 9.0}},
], ids=["plain", "clusters", "strata", "clusters+strata"])
def test_hierarchical_bootstrap_matches_the_slow_reference(kwargs):
    estimator = _post_stratified if "weights" in kwargs else _equal_clusters
    want, want_reps = reference(VALUES, 40, 11, "fn", estimator=estimator, **kwargs)
    got = hierarchical_bootstrap(VALUES, 40, 11, function_purpose="fn", **kwargs)
    assert got.estimate == pytest.approx(want)
    np.testing.assert_allclose(got.replicates, want_reps, equal_nan=True)
    if kwargs.get("weights", {}).get("rare"):
        # "rare" sits in one function of one region: replicates without it renormalise over the rest
        assert np.isfinite(got.replicates).all()


def test_cluster_bootstrap_matches_the_slow_reference():
    y = VALUES[0]
    want, want_reps = reference(y, 40, 3, "tasks", clusters=CLUSTERS, estimator=_pooled)
    got = cluster_bootstrap(y, CLUSTERS, 40, 3, "tasks")
    assert got.estimate == pytest.approx(y.mean()) == pytest.approx(want)
    np.testing.assert_allclose(got.replicates, want_reps)


def test_blocks_of_replicates_do_not_change_the_replicates(monkeypatch):
    kwargs = dict(function_purpose="fn", clusters=CLUSTERS, strata=STRATA, weights={"c": 1, "x": 2})
    whole = hierarchical_bootstrap(VALUES, 50, 5, **kwargs)
    plain = hierarchical_bootstrap(VALUES, 50, 5, function_purpose="fn")
    monkeypatch.setattr(stats, "_BLOCK_DRAWS", 7)  # a block of one replicate at a time
    np.testing.assert_array_equal(hierarchical_bootstrap(VALUES, 50, 5, **kwargs).replicates, whole.replicates)
    np.testing.assert_array_equal(hierarchical_bootstrap(VALUES, 50, 5, function_purpose="fn").replicates,
                                  plain.replicates)


# --- keys, determinism, pairing ----------------------------------------------------------


def test_resample_indices_are_the_hashed_keys_and_deterministic():
    idx = resample_indices(17, 30, 4, "p")
    assert idx.shape == (30, 17) and idx.dtype == np.int64
    keys = random_keys(4, "p", np.arange(30)[:, None], np.arange(17)[None, :])
    np.testing.assert_array_equal(idx, (keys % np.uint64(17)).astype(np.int64))
    np.testing.assert_array_equal(idx, resample_indices(17, 30, 4, "p"))
    np.testing.assert_array_equal(idx[:10], resample_indices(17, 10, 4, "p"))  # replicate b: (seed, purpose, b, i)
    assert (idx != resample_indices(17, 30, 4, "q")).mean() > 0.8
    assert (idx != resample_indices(17, 30, 5, "p")).mean() > 0.8


def test_resample_indices_draw_uniformly():
    counts = np.bincount(resample_indices(5, 20_000, 0, "uniform").ravel(), minlength=5) / 100_000
    np.testing.assert_allclose(counts, 0.2, atol=0.005)  # binomial sd 0.0013
    groups = np.array(["a", "b", "a", "a", "b"])
    idx = resample_indices(5, 20_000, 0, "uniform", groups=groups)
    share = (idx[:, 0][:, None] == np.array([0, 2, 3])).mean(axis=0)
    np.testing.assert_allclose(share, 1 / 3, atol=0.015)


@settings(max_examples=60, deadline=None)
@given(
    labels=st.lists(st.sampled_from(["a", "b", "c", 7, (1, "x")]), min_size=1, max_size=40),
    n_boot=st.integers(1, 25),
    seed=st.integers(0, 2**31),
)
def test_stratified_resample_keeps_every_group_and_its_count(labels, n_boot, seed):
    n = len(labels)
    idx = resample_indices(n, n_boot, seed, "groups", groups=labels)
    assert idx.shape == (n_boot, n) and idx.min() >= 0 and idx.max() < n
    codes = _first_appearance(labels)
    assert (codes[idx] == codes[None, :]).all()  # each item replaced by a member of its own group
    for row in codes[idx]:
        np.testing.assert_array_equal(np.bincount(row, minlength=codes.max() + 1), np.bincount(codes))
    np.testing.assert_array_equal(idx, resample_indices(n, n_boot, seed, "groups", groups=labels))
    # only the partition matters, not the label values
    relabelled = [f"group {c}" for c in codes]
    np.testing.assert_array_equal(idx, resample_indices(n, n_boot, seed, "groups", groups=relabelled))


@settings(max_examples=30, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 4), st.integers(1, 25)),
    n_clusters=st.integers(1, 4),
    weighted=st.booleans(),
    seed=st.integers(0, 2**31),
)
def test_same_purposes_pair_the_replicates(shape, n_clusters, weighted, seed):
    """Same purposes and labels: the same seeds and functions in every replicate, so a
    difference of estimates is the estimate of the difference, replicate by replicate."""
    rng = np.random.default_rng(seed)
    a, b = rng.random(shape), rng.random(shape)
    kwargs = dict(clusters=rng.integers(0, n_clusters, shape[1]))
    if weighted:
        kwargs.update(strata=rng.choice(["e", "h", "n"], shape[1]), weights={"e": 1.0, "h": 3.0, "n": 0.5})
    ea, eb, ed = (hierarchical_bootstrap(x, 30, 1, function_purpose="f", **kwargs) for x in (a, b, a - b))
    np.testing.assert_allclose(difference(ea, eb).replicates, ed.replicates, atol=1e-12, equal_nan=True)
    assert difference(ea, eb).estimate == pytest.approx(ed.estimate)


def test_different_purposes_give_independent_replicates():
    v = np.random.default_rng(1).random((4, 50))
    base = hierarchical_bootstrap(v, 200, 0, function_purpose="f").replicates
    np.testing.assert_array_equal(base, hierarchical_bootstrap(v, 200, 0, function_purpose="f").replicates)
    assert (hierarchical_bootstrap(v, 200, 0, function_purpose="g").replicates != base).all()
    other_seeds = hierarchical_bootstrap(v, 200, 0, function_purpose="f", seed_purpose="other").replicates
    assert (other_seeds != base).mean() > 0.9  # 4 seeds: a few replicates draw the same multiset by chance
    # one seed, so only the functions vary: other function draws are uncorrelated
    f, g = (hierarchical_bootstrap(v[0], 200, 0, function_purpose=p).replicates for p in ("f", "g"))
    assert abs(np.corrcoef(f, g)[0, 1]) < 0.25  # sd of a null correlation: 0.07


def test_without_clusters_the_function_draws_are_resample_indices():
    v = np.random.default_rng(2).random((3, 40))
    strata = np.random.default_rng(3).choice(["a", "b"], 40)
    fidx = resample_indices(40, 60, 9, "fn")
    sidx = resample_indices(3, 60, 9, "seeds")
    want = np.array([v[sidx[b]].mean(axis=0)[fidx[b]].mean() for b in range(60)])
    np.testing.assert_allclose(hierarchical_bootstrap(v, 60, 9, function_purpose="fn").replicates, want)
    np.testing.assert_allclose(hierarchical_bootstrap(v[0], 60, 9, function_purpose="fn").replicates,
                               v[0][fidx].mean(axis=1))
    # post-stratified: the functions are drawn within their strata
    gidx = resample_indices(40, 60, 9, "fn", groups=strata)
    w = {"a": 0.25, "b": 0.75}
    want = [sum(w[h] * v[sidx[b]].mean(axis=0)[gidx[b]][strata == h].mean() for h in w) for b in range(60)]
    got = hierarchical_bootstrap(v, 60, 9, function_purpose="fn", strata=strata, weights=w)
    np.testing.assert_allclose(got.replicates, want)
    # one cluster is no clusters; the task bootstrap is the cluster bootstrap with one cluster
    np.testing.assert_array_equal(hierarchical_bootstrap(v, 60, 9, function_purpose="fn", clusters=["r"] * 40)
                                  .replicates, hierarchical_bootstrap(v, 60, 9, function_purpose="fn").replicates)
    np.testing.assert_allclose(cluster_bootstrap(v[0], np.zeros(40), 60, 9, "fn").replicates,
                               task_bootstrap(v[0], 60, 9, "fn").replicates)


# --- point estimates by hand -------------------------------------------------------------


def test_point_estimates_by_hand():
    v = np.array([[1.0, 0.0, 1.0, 1.0, 0.0, 0.9],
                  [0.0, 0.0, 1.0, 0.0, 1.0, 0.7]])
    assert hierarchical_bootstrap(v, 5, 0, function_purpose="f").estimate == pytest.approx(v.mean())
    # clusters weighted equally: r0 = {0, 1, 2}, r1 = {3, 4}, r2 = {5}
    clusters = ["r0", "r0", "r0", "r1", "r1", "r2"]
    m = v.mean(axis=0)
    want = np.mean([m[:3].mean(), m[3:5].mean(), m[5]])
    assert hierarchical_bootstrap(v, 5, 0, function_purpose="f", clusters=clusters).estimate == pytest.approx(want)
    assert want != pytest.approx(v.mean())
    # post-stratified on the strata of `weights` that occur ("z" does not: renormalise over
    # "c" and "x"); "y" has no weight and is left out; pooled over clusters
    strata = ["c", "x", "c", "y", "x", "x"]
    weights = {"c": 1.0, "x": 3.0, "z": 6.0}
    want = 0.25 * m[[0, 2]].mean() + 0.75 * m[[1, 4, 5]].mean()
    for c in (None, clusters):
        got = hierarchical_bootstrap(v, 5, 0, function_purpose="f", clusters=c, strata=strata, weights=weights)
        assert got.estimate == pytest.approx(want)
    # a 1-D array is one seed
    one = hierarchical_bootstrap(v[0], 20, 0, function_purpose="f", clusters=clusters)
    assert one.estimate == pytest.approx(np.mean([v[0, :3].mean(), v[0, 3:5].mean(), v[0, 5]]))
    np.testing.assert_array_equal(
        one.replicates, hierarchical_bootstrap(v[:1], 20, 0, function_purpose="f", clusters=clusters).replicates)


def test_replicates_centre_on_the_estimate():
    rng = np.random.default_rng(4)
    v = rng.random((5, 300))
    clusters = rng.integers(0, 6, 300)
    e = hierarchical_bootstrap(v, 400, 0, function_purpose="f", clusters=clusters)
    sd = e.replicates.std()
    assert abs(e.replicates.mean() - e.estimate) < 0.2 * sd
    lo, hi = e.interval(0.95)
    assert lo < e.estimate < hi


# --- edge cases --------------------------------------------------------------------------


def test_a_single_seed_a_single_function_and_tiny_clusters():
    one = hierarchical_bootstrap(np.array([[0.4]]), 50, 0, function_purpose="f")
    assert one.estimate == 0.4 and (one.replicates == 0.4).all() and one.interval(0.95) == (0.4, 0.4)
    column = np.array([[0.0], [1.0], [0.5]])  # one function, three seeds: only the seeds vary
    e = hierarchical_bootstrap(column, 300, 0, function_purpose="f", clusters=["r"])
    assert e.estimate == pytest.approx(0.5)
    assert set(np.round(e.replicates * 6).astype(int)) <= set(range(7)) and e.replicates.std() > 0
    # every cluster a singleton: the cluster resample is the whole resample
    v = np.arange(6.0)
    s = hierarchical_bootstrap(v, 100, 0, function_purpose="f", clusters=list("abcdef"))
    assert s.estimate == pytest.approx(2.5)
    np.testing.assert_allclose(s.replicates, v[resample_indices(6, 100, 0, "f:clusters")].mean(axis=1))


def test_a_stratum_absent_from_some_replicates_drops_out():
    v = np.array([0.0, 0.0, 1.0, 1.0])
    clusters, strata = ["a", "a", "b", "b"], ["easy", "hard", "easy", "easy"]
    # "hard" only in cluster a: replicates without a have only "easy"
    e = hierarchical_bootstrap(v, 200, 0, function_purpose="f", clusters=clusters, strata=strata,
                               weights={"easy": 1.0, "hard": 1.0})
    assert e.estimate == pytest.approx(0.5 * np.mean([0.0, 1.0, 1.0]) + 0.5 * 0.0)
    chosen = resample_indices(2, 200, 0, "f:clusters")
    only_b = (chosen == 1).all(axis=1)
    assert only_b.any() and np.isfinite(e.replicates).all()
    np.testing.assert_allclose(e.replicates[only_b], 1.0)  # "easy" of cluster b alone, weight renormalised
    # weights only on "hard": NaN where it is absent, and the interval skips those
    h = hierarchical_bootstrap(v, 200, 0, function_purpose="f", clusters=clusters, strata=strata,
                               weights={"hard": 1.0})
    assert np.isnan(h.replicates[only_b]).all() and not np.isnan(h.replicates[~only_b]).any()
    assert h.interval(0.95) == (0.0, 0.0)


def test_invalid_inputs_are_refused_clearly():
    with pytest.raises(ValueError, match="NaN"):
        hierarchical_bootstrap(np.array([[0.1, np.nan]]), 10, 0, function_purpose="f")
    with pytest.raises(ValueError, match="NaN"):
        cluster_bootstrap([0.1, np.nan], [0, 1], 10, 0, "f")
    with pytest.raises(ValueError, match="n_functions"):
        hierarchical_bootstrap(np.zeros((2, 0)), 10, 0, function_purpose="f")
    with pytest.raises(ValueError, match="strata"):
        hierarchical_bootstrap(np.zeros(3), 10, 0, function_purpose="f", weights={"a": 1.0})
    with pytest.raises(ValueError, match="occurs"):
        hierarchical_bootstrap(np.zeros(3), 10, 0, function_purpose="f", strata="abc", weights={"z": 1.0})
    with pytest.raises(ValueError, match="non-negative"):
        hierarchical_bootstrap(np.zeros(3), 10, 0, function_purpose="f", strata="abc", weights={"a": -1.0})
    with pytest.raises(ValueError, match="2 labels for 3"):
        hierarchical_bootstrap(np.zeros(3), 10, 0, function_purpose="f", clusters=[0, 1])
    with pytest.raises(ValueError, match="replicates"):
        difference(Estimate(0.0, np.zeros(3)), Estimate(0.0, np.zeros(4)))


# --- intervals and derived estimates -----------------------------------------------------


def test_percentile_interval():
    r = np.random.default_rng(5).normal(size=999)
    assert percentile_interval(r, 0.9) == scaling_percentile_interval(r, 0.9)
    assert percentile_interval(np.r_[r, np.nan, np.nan], 0.9) == scaling_percentile_interval(r, 0.9)
    assert percentile_interval(np.r_[np.arange(95.0), [np.inf] * 5], 0.95) == (2.0, np.inf)
    assert percentile_interval(np.r_[[-np.inf] * 5, np.arange(95.0), np.nan], 0.95) == (-np.inf, 92.0)
    lo, hi = percentile_interval([np.nan, np.nan], 0.95)
    assert np.isnan(lo) and np.isnan(hi)
    assert percentile_interval(np.arange(101.0), 0.9) == (5.0, 95.0)
    with pytest.raises(ValueError):
        percentile_interval(r, 95)


def test_difference_and_ratio_drop():
    ref = Estimate(0.5, np.array([0.4, 0.0, 0.5, 0.6]))
    shifted = Estimate(0.25, np.array([0.2, 0.1, 0.5, 0.3]))
    d = difference(shifted, ref)
    assert d.estimate == pytest.approx(-0.25)
    np.testing.assert_allclose(d.replicates, [-0.2, 0.1, 0.0, -0.3])
    drop = ratio_drop(shifted, ref)
    assert drop.estimate == pytest.approx(0.5)
    np.testing.assert_allclose(drop.replicates, [0.5, np.nan, 0.0, 0.5], equal_nan=True)
    assert drop.interval(0.5) == (0.0, 0.5)  # the NaN replicate is dropped
    assert np.isnan(ratio_drop(shifted, Estimate(0.0, np.ones(4))).estimate)
    assert drop.summary(0.5) == {"estimate": 0.5, "ci_low": 0.0, "ci_high": 0.5}
    with pytest.raises(ValueError):
        drop.replicates[0] = 1.0  # estimates are immutable


# --- coverage on synthetic data ----------------------------------------------------------
#
# Each test simulates a few hundred data sets with a known population mean and counts how
# often the 95% interval covers it.  Tolerances: with N data sets the coverage estimate has
# a Monte Carlo sd of sqrt(0.95 * 0.05 / N) = 0.011 to 0.014 for N = 400 to 250.  Beyond
# that, percentile intervals under-cover a little by themselves: the bootstrap variance is
# (n - 1)/n of the truth at each level and has no t-like widening, which costs about 2
# points with 10 seeds or 15 regions (measured with 1,200 data sets per design: see each
# test).  So a "valid" interval must lie in [0.895, 0.985]: nominal minus the expected
# small-sample shortfall minus about 2.5 Monte Carlo sd, or plus about 2.5 sd.  The naive
# bootstraps miss by 10 to 25 points, far outside those bounds.

CONFIDENCE, N_BOOT = 0.95, 400
VALID = (0.895, 0.985)


def _covers(estimate: Estimate, truth: float) -> bool:
    lo, hi = estimate.interval(CONFIDENCE)
    return lo <= truth <= hi


def test_coverage_tasks_nested_in_functions():
    """50 functions x 5 tasks, pass/fail with a per-function solve rate p ~ Beta(0.3, 0.9)
    (intra-function correlation 0.45; population mean 0.25).  With 1,200 data sets:
    task bootstrap 0.73, cluster bootstrap 0.96."""
    rng = np.random.default_rng(20240601)
    n_functions, n_tasks, n_sets = 50, 5, 250
    functions = np.repeat(np.arange(n_functions), n_tasks)
    task_hits = cluster_hits = 0
    for i in range(n_sets):
        p = rng.beta(0.3, 0.9, n_functions)
        y = (rng.random((n_functions, n_tasks)) < p[:, None]).astype(float).ravel()
        task_hits += _covers(task_bootstrap(y, N_BOOT, i, "tasks"), 0.25)
        cluster_hits += _covers(cluster_bootstrap(y, functions, N_BOOT, i, "tasks"), 0.25)
    task, cluster = task_hits / n_sets, cluster_hits / n_sets
    assert task < 0.85, task
    assert VALID[0] <= cluster <= VALID[1], cluster


def _seeds_by_functions(rng, n_seeds=10, n_functions=100):
    """Seed effect sd 0.16 and function effect sd 0.5 (each about half the variance of the
    mean), plus noise sd 0.1."""
    seed_effect = rng.normal(0, 0.16, (n_seeds, 1))
    function_effect = rng.normal(0, 0.5, (1, n_functions))
    return seed_effect, function_effect, lambda: rng.normal(0, 0.1, (n_seeds, n_functions))


def test_coverage_seeds_by_functions():
    """values = 0.3 + seed effect + function effect + noise, 10 seeds x 100 functions.  With
    1,200 data sets: hierarchical 0.93 (10 seeds: the percentile shortfall), functions only
    (seeds averaged, not resampled) 0.83."""
    rng = np.random.default_rng(20240602)
    n_sets = 400
    hier_hits = functions_only_hits = 0
    for i in range(n_sets):
        seed_effect, function_effect, noise = _seeds_by_functions(rng)
        v = 0.3 + seed_effect + function_effect + noise()
        hier_hits += _covers(hierarchical_bootstrap(v, N_BOOT, i, function_purpose="f"), 0.3)
        functions_only_hits += _covers(hierarchical_bootstrap(v.mean(axis=0), N_BOOT, i, function_purpose="f"), 0.3)
    hier, functions_only = hier_hits / n_sets, functions_only_hits / n_sets
    assert VALID[0] <= hier <= VALID[1], hier
    assert functions_only < 0.88, functions_only


def test_coverage_of_a_paired_difference():
    """Two conditions on the same seeds and functions, with shared effects: condition B adds
    its own seed effect (sd 0.05) and function effect (sd 0.2); true difference 0.1.  With
    1,200 data sets: paired 0.935; unpaired (independent purposes) 1.0, with intervals
    about 4 times as wide."""
    rng = np.random.default_rng(20240603)
    n_sets = 400
    paired_hits = unpaired_hits = 0
    widths = {"paired": 0.0, "unpaired": 0.0}
    for i in range(n_sets):
        seed_effect, function_effect, noise = _seeds_by_functions(rng)
        a = 0.3 + seed_effect + function_effect + noise()
        b = (0.2 + seed_effect + rng.normal(0, 0.05, seed_effect.shape) + function_effect
             + rng.normal(0, 0.2, function_effect.shape) + noise())
        ea = hierarchical_bootstrap(a, N_BOOT, i, function_purpose="f")
        paired = difference(ea, hierarchical_bootstrap(b, N_BOOT, i, function_purpose="f"))
        unpaired = difference(ea, hierarchical_bootstrap(b, N_BOOT, i, function_purpose="g", seed_purpose="seeds:b"))
        paired_hits += _covers(paired, 0.1)
        unpaired_hits += _covers(unpaired, 0.1)
        for e, width in ((paired, "paired"), (unpaired, "unpaired")):
            lo, hi = e.interval(CONFIDENCE)
            widths[width] += hi - lo
    assert VALID[0] <= paired_hits / n_sets <= VALID[1], paired_hits / n_sets
    assert unpaired_hits / n_sets >= 0.99, unpaired_hits / n_sets
    assert widths["paired"] < 0.5 * widths["unpaired"], widths


def test_coverage_post_stratified_over_regions():
    """15 regions x 8 functions, one seed; 30% easy functions (mean 0.7), 70% hard (0.1),
    a region effect (sd 0.15) and function noise (sd 0.2); post-stratified to 50/50, so
    the target is 0.4.  With 1,200 data sets: regions resampled 0.93; regions ignored 0.71."""
    rng = np.random.default_rng(20240604)
    n_regions, per_region, n_sets = 15, 8, 250
    regions = np.repeat(np.arange(n_regions), per_region)
    weights = {"easy": 0.5, "hard": 0.5}
    with_hits = without_hits = 0
    for i in range(n_sets):
        strata = np.where(rng.random(regions.size) < 0.3, "easy", "hard")
        v = (np.where(strata == "easy", 0.7, 0.1) + rng.normal(0, 0.15, n_regions)[regions]
             + rng.normal(0, 0.2, regions.size))
        kwargs = dict(function_purpose="r", strata=strata, weights=weights)
        with_hits += _covers(hierarchical_bootstrap(v, N_BOOT, i, clusters=regions, **kwargs), 0.4)
        without_hits += _covers(hierarchical_bootstrap(v, N_BOOT, i, **kwargs), 0.4)
    assert VALID[0] <= with_hits / n_sets <= VALID[1], with_hits / n_sets
    assert without_hits / n_sets < 0.85, without_hits / n_sets
