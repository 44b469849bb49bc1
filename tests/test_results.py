"""The study's comparisons (synthgen/results.py): drops, paired differences, the map."""

import numpy as np
import pandas as pd
import pytest

from synthgen.results import generalization_map, paired_difference, relative_drop


def test_relative_drop_value_and_interval():
    reference = np.r_[np.ones(400), np.zeros(600)]  # 0.4
    shifted = np.r_[np.ones(100), np.zeros(900)]  # 0.1
    d = relative_drop(reference, shifted, n_boot=500, confidence=0.95, seed=0)
    assert d["drop"] == pytest.approx(0.75)
    assert 0.6 < d["ci_low"] < 0.75 < d["ci_high"] < 0.85
    assert np.isnan(relative_drop(np.zeros(10), shifted, 100, 0.95, 0)["drop"])  # no reference to drop from


def test_paired_difference_is_the_mean_difference_with_a_paired_interval():
    rng = np.random.default_rng(0)
    a = (rng.random(800) < 0.5).astype(float)
    b = a.copy()
    flip = rng.choice(800, 40, replace=False)
    b[flip] = 1 - b[flip]  # the two models disagree on 40 tasks only
    d = paired_difference(a, b, n_boot=1000, confidence=0.95, seed=1)
    assert d["difference"] == pytest.approx(a.mean() - b.mean())
    assert d["ci_low"] <= d["difference"] <= d["ci_high"]
    # pairing makes the interval far narrower than independent resampling of the two sets would
    assert d["ci_high"] - d["ci_low"] < 0.04
    same = paired_difference(a, a, 200, 0.95, 0)
    assert same == {"difference": 0.0, "ci_low": 0.0, "ci_high": 0.0}
    with pytest.raises(ValueError, match="equal-length"):
        paired_difference(a, a[:-1], 10, 0.95, 0)


def test_paired_interval_covers_the_truth_at_about_its_nominal_rate():
    rng = np.random.default_rng(2)
    hits, trials = 0, 200
    for t in range(trials):
        a = (rng.random(300) < 0.30).astype(float)
        # b copies a on half the tasks (paired) and is its own Bernoulli(0.20) on the rest
        b = np.where(rng.random(300) < 0.5, a, (rng.random(300) < 0.20).astype(float))
        truth = 0.30 - (0.5 * 0.30 + 0.5 * 0.20)  # E[a] - E[b] = 0.05
        d = paired_difference(a, b, 400, 0.9, seed=t)
        hits += d["ci_low"] <= truth <= d["ci_high"]
    assert 0.82 <= hits / trials <= 0.97


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
