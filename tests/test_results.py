"""The study's results (synthgen/results.py): estimates over seeds and functions, matched
strata, the density and support comparisons, regions, seeds and the map."""

import numpy as np
import pandas as pd
import pytest

from synthgen.results import (by_region, by_seed, density_comparison, estimate, functions_of, generalization_map,
                              per_stratum, reference_mix, support_comparison, twin_comparison)
from tests.conftest import smoke_params

KINDS = ["const", "x", "x+y"]


def _outcomes(split, rates, seeds=(0, 1, 2), n_per_kind=60, regions=1, first_class=0, seed=0, twin=False):
    """Synthetic evaluate-stage rows: one task per function; pass rate by kind."""
    rng = np.random.default_rng(seed)
    rows = []
    classes = first_class + np.arange(n_per_kind * len(KINDS))
    kind = np.repeat(KINDS, n_per_kind)
    for s in seeds:
        passed = (rng.random(len(classes)) < np.array([rates[k] for k in kind])).astype(float)
        rows.append(pd.DataFrame({
            "split": split, "seed": s, "program_id": classes, "semantic_class": classes, "pass@1": passed,
            "region": classes % regions, "kind": kind, "commonness": "10-99", "class_size": 20, "min_size": 5,
            "size": 5, "twin": twin, "ood_pqgram": rng.random(len(classes)), "ood_syntax": 0.0,
            "ood_semantics": rng.random(len(classes)),
        }))
    return pd.concat(rows, ignore_index=True)


@pytest.fixture(scope="module")
def P():
    return smoke_params(measurement={"match_on": ["kind"], "reference_mix": "iid"}, evaluation={"bootstrap": 300})


def test_estimate_is_the_mean_over_seeds_and_functions_with_an_interval(P):
    out = _outcomes("iid", {"const": 0.9, "x": 0.5, "x+y": 0.1})
    f = functions_of(out, "iid")
    assert f.values.shape == (3, 180) and list(f.seeds) == [0, 1, 2]
    e = estimate(out, "iid", P)
    assert e.estimate == pytest.approx(out["pass@1"].mean())
    lo, hi = e.interval(0.95)
    assert lo < e.estimate < hi and hi - lo < 0.2


def test_post_stratification_reweighs_to_the_reference_mix(P):
    out = _outcomes("iid", {"const": 1.0, "x": 0.5, "x+y": 0.0}, seeds=(0,))
    meta = functions_of(out, "iid").meta
    w = {"const": 0.5, "x": 0.0, "x+y": 0.5}
    assert estimate(out, "iid", P, weights=w).estimate == pytest.approx(0.5)
    per_kind = out.groupby("kind")["pass@1"].mean()
    assert estimate(out, "iid", P, weights={"x": 1.0}).estimate == pytest.approx(per_kind["x"])
    assert set(meta.kind) == set(KINDS)


def test_a_shift_that_only_changes_the_mix_vanishes_on_matched_strata(P):
    """The trap of STUDY.md section 8: a split that holds more easy functions looks better raw;
    matched on strata the two are the same."""
    rates = {"const": 0.9, "x": 0.4, "x+y": 0.05}
    iid = _outcomes("iid", rates, n_per_kind=200, seed=1)
    easy = _outcomes("support_syntax", rates, n_per_kind=200, seed=2, first_class=10_000)
    easy = easy[(easy.kind != "x+y") | (easy.semantic_class % 5 == 0)]  # few hard functions
    out = pd.concat([iid, easy], ignore_index=True)
    table = support_comparison(out, P).set_index("estimate")
    raw, matched = table.loc["raw"], table.loc["matched"]
    assert raw["drop"] < -0.3  # "better than iid" raw
    assert matched.ci_low < 0 < matched.ci_high and abs(matched["drop"]) < 0.1
    assert matched.coverage == pytest.approx(1.0)


def test_matched_comparison_keeps_only_the_strata_both_hold(P):
    iid = _outcomes("iid", {"const": 1.0, "x": 0.5, "x+y": 0.1}, seeds=(0,))
    sup = _outcomes("support_semantics", {"const": 1.0, "x": 0.25, "x+y": 0.05}, seeds=(0,), first_class=10_000)
    sup = sup[sup.kind != "const"]
    table = support_comparison(pd.concat([iid, sup]), P).set_index("estimate")
    assert table.loc["matched", "coverage"] == pytest.approx(2 / 3)
    # on x and x+y, half the pass rate of iid each
    assert table.loc["matched", "drop"] == pytest.approx(0.5, abs=0.08)


def test_density_comparison_is_paired_over_the_shared_test_set(P):
    base = _outcomes("density_random", {"const": 0.9, "x": 0.5, "x+y": 0.2}, seed=3)
    frames = [base, _outcomes("iid", {"const": 0.9, "x": 0.5, "x+y": 0.2}, first_class=10_000)]
    for name, shift in (("density_diverse_syntax", 0.1), ("density_diverse_semantics", 0.0),
                        ("density_diverse_both", -0.1)):
        other = base.assign(split=name)
        flip = np.random.default_rng(4).random(len(other)) < abs(shift)
        target = 1.0 if shift > 0 else 0.0
        other.loc[flip, "pass@1"] = target if shift else other.loc[flip, "pass@1"]
        frames.append(other)
    table = density_comparison(pd.concat(frames, ignore_index=True), P).set_index(["split", "estimate"])
    same = table.loc[("density_diverse_semantics", "raw")]
    assert same.difference == 0 and same.ci_low == 0 and same.ci_high == 0  # paired: identical outcomes, no spread
    assert table.loc[("density_diverse_syntax", "raw")].ci_low > 0
    assert table.loc[("density_diverse_both", "raw")].ci_high < 0


def test_regions_are_resampled_and_reported(P):
    iid = _outcomes("iid", {"const": 0.5, "x": 0.5, "x+y": 0.5}, seeds=(0, 1))
    sup = _outcomes("support_syntax", {"const": 0.5, "x": 0.5, "x+y": 0.5}, seeds=(0, 1), regions=5, first_class=10_000)
    # region 0 fails everything: a result one region carries shows up here
    sup.loc[sup.region == 0, "pass@1"] = 0.0
    table = by_region(pd.concat([iid, sup]), "support_syntax", P)
    assert table.region.tolist() == [0, 1, 2, 3, 4] and table.functions.sum() == 180
    assert table.estimate.iloc[0] == 0 and (table.estimate.iloc[1:] > 0.3).all()
    clustered = estimate(sup, "support_syntax", P).interval(0.95)
    flat = estimate(sup.assign(region=0), "support_syntax", P).interval(0.95)
    assert clustered[1] - clustered[0] > flat[1] - flat[0]  # regions add their spread


def test_per_stratum_and_by_seed(P):
    out = _outcomes("iid", {"const": 1.0, "x": 0.0, "x+y": 0.0})
    table = per_stratum(out, ["iid"], P, "kind").set_index("stratum")
    assert table.loc["const", "estimate"] == pytest.approx(1.0) and table.loc["x", "estimate"] == pytest.approx(0.0)
    assert table.functions.tolist() == [60, 60, 60]
    seeds = by_seed(out, ["iid"])
    assert list(seeds.columns) == [0, 1, 2] and seeds.loc["iid"].tolist() == [pytest.approx(1 / 3)] * 3
    assert reference_mix(out, P) == pytest.approx({"const": 1 / 3, "x": 1 / 3, "x+y": 1 / 3})


def test_twin_comparison_splits_each_test_set_by_twin_in_training(P):
    iid = _outcomes("iid", {"const": 1.0, "x": 0.5, "x+y": 0.0})
    iid["twin"] = iid.kind != "x+y"  # the hard functions are the new ones
    sup = _outcomes("support_syntax", {"const": 0.5, "x": 0.5, "x+y": 0.5}, first_class=10_000)  # guarded: no twin
    table = twin_comparison(pd.concat([iid, sup], ignore_index=True), P, ["iid", "support_syntax"])
    table = table.set_index(["split", "twin"])
    new = table.loc[("iid", "no twin")]
    assert new.functions == 60 and new.estimate == 0.0 and new.ci_low == new.ci_high == 0.0
    old = table.loc[("iid", "with twin")]
    assert old.functions == 120 and old.estimate == pytest.approx(iid[iid.twin]["pass@1"].mean())
    assert old.ci_low < old.estimate < old.ci_high
    assert table.loc[("support_syntax", "with twin")].functions == 0
    assert np.isnan(table.loc[("support_syntax", "with twin")].estimate)
    assert table.loc[("support_syntax", "no twin")].functions == 180
    # iid's no-twin figure is the reference support_comparison resamples alike (same purpose)
    e = estimate(pd.concat([iid, sup]), "iid", P, where=~pd.concat([iid, sup]).twin, purpose="iid:no-twin")
    assert np.array_equal(e.replicates, new.replicates.replicates)


def test_seeds_must_share_their_functions(P):
    out = _outcomes("iid", {"const": 1.0, "x": 0.0, "x+y": 0.0})
    with pytest.raises(ValueError, match="same test functions"):
        functions_of(out.drop(index=0), "iid")


def test_generalization_map_counts_and_means():
    rng = np.random.default_rng(3)
    table = pd.DataFrame({"sx": rng.random(600), "sy": rng.random(600), "pass@1": (rng.random(600) < 0.3).astype(float)})
    mean, count = generalization_map(table, "sx", "sy", bins=3)
    assert count.to_numpy().sum() == 600 and mean.shape == count.shape == (3, 3)
    # the far-semantic row is on top: the bottom row holds the smallest sy
    low = table[table.sy <= table.sy.quantile(1 / 3)]
    low_left = low[low.sx <= table.sx.quantile(1 / 3)]
    assert count.iloc[-1, 0] == len(low_left)
    assert mean.iloc[-1, 0] == pytest.approx(low_left["pass@1"].mean())
