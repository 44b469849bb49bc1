"""The scaling grid (compute, snapshots) and the scaling fits (forms, bootstrap, extrapolation)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from synthgen.model import ModelConfig
from synthgen.params import ParamsError
from synthgen.scaling_fit import (
    FORMS, bootstrap_log_linear, compare_forms, compute_to_reach, difference_interval, fit_form, predict,
)
from synthgen.scaling_run import grid_points, run_params, snapshot_steps, training_compute
from synthgen.seeding import rng_for
from synthgen.training import load_model, train
from tests.conftest import smoke_params


def test_compute_of_a_small_model_by_hand():
    cfg = ModelConfig(example_vocab=20, program_vocab=15, max_length=9, encoder_layers=1, decoder_layers=1,
                      width=8, heads=2, dropout=0.0)
    W, K, T = 8, 10, 8  # T: decoder positions = max_length - 1
    # encoder block: q, kv, proj (4 W^2) + MLP (8 W^2) + 2 LayerNorm gains (2 W); ln_memory (W);
    # decoder block: self and cross attention (8 W^2) + MLP (8 W^2) + 3 gains (3 W); ln_out (W).
    # Embeddings (and the output layer tied to one) are not counted.
    n = (12 * W * W + 2 * W) + W + (16 * W * W + 3 * W) + W
    assert n == 1848
    c = training_compute(cfg, n_examples=K, tasks=1000)
    assert c["non_embedding_parameters"] == n
    assert c["tokens"] == (K + T) * 1000
    assert c["compute"] == 6 * 1848 * 18 * 1000
    # the exact count, per task: encoder 10 positions x (24 W^2 + 4 K W); decoder 8 positions x
    # (28 W^2 + 4 T W + 4 K W) + cross-attention keys and values of 10 memory positions (4 W^2 each);
    # output layer 8 x 2 W V; forward + backward = 3 x forward
    forward = 10 * (24 * 64 + 4 * 10 * 8) + 8 * (28 * 64 + 4 * 8 * 8 + 4 * 10 * 8) + 10 * 4 * 64 + 8 * 2 * 8 * 15
    assert c["compute_exact"] == 3 * forward * 1000


def test_run_params_keep_the_rate_constant_and_checkpoint_at_every_snapshot():
    P = smoke_params(scaling={"tasks": 64 * 40, "budgets": [0.25, 0.5, 1.0]})
    assert snapshot_steps(P) == [10, 20, 40]
    rp = run_params(P, "l")
    assert rp.training.tasks == 64 * 40 and rp.training.min_lr == rp.training.lr
    assert rp.model.width == P.scaling.sizes["l"].width
    assert all(s % rp.training.checkpoint_every == 0 for s in snapshot_steps(P))
    assert rp.training.checkpoint_every % rp.training.log_every == 0
    with pytest.raises(ParamsError, match="scaling.sizes has no size 'xl'"):
        run_params(P, "xl")


def test_a_snapshot_is_exactly_the_shorter_run(universe, valid_ids, tmp_path):
    """Prefix reuse: with a constant rate (and no warm-up here), the snapshot at a budget has
    the weights of a run trained for that budget alone."""
    P = smoke_params(training={"warmup": 0.0}, scaling={"tasks": 64 * 8, "budgets": [0.5, 1.0]})
    ids = valid_ids[::50]
    test_ids = valid_ids[1::400]
    points = grid_points(universe, ids, test_ids, P, "xs", "iid", tmp_path / "grid", progress=False)
    assert sorted(points["tasks"].unique()) == [256, 512]
    assert len(points) == 2 * len(test_ids)
    assert set(points["pass@1"].unique()) <= {0.0, 1.0}
    rp = run_params(P, "xs")
    short = rp.model_copy(update={"training": rp.training.model_copy(update={"tasks": 256})})
    alone = train(universe, ids, short, tmp_path / "alone", progress=False).model
    snapshot = load_model(tmp_path / "grid" / "snapshot_00000004.pt")
    for (name, a), b in zip(alone.state_dict().items(), snapshot.state_dict().values()):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("form, theta", [("log_linear", (-0.8, 0.09)), ("saturating", (2.0, 0.15)), ("logistic", (-14.0, 1.2))])
def test_each_form_recovers_its_parameters(form, theta):
    x = np.linspace(9.0, 13.0, 12)
    y = predict(form, theta, x)
    assert np.all((y > 0) & (y < 1))
    assert fit_form(form, x, y) == pytest.approx(theta, rel=1e-4)


def _grid(form, theta, n_items, seed, x=np.linspace(11.0, 13.0, 12), budgets=(0.25, 0.5, 1.0)):
    """Synthetic per-program outcomes: Bernoulli(pass) with pass = form(theta, x) at each point."""
    p = predict(form, theta, x)
    y = rng_for(seed, "synthetic-grid").random((len(x), n_items)) < p[:, None]
    budget = np.resize(np.asarray(budgets), len(x))
    rows = pd.DataFrame({
        "split": "synthetic",
        "size": np.repeat(np.arange(len(x)) // len(budgets), n_items),
        "budget": np.repeat(budget, n_items),
        "compute": np.repeat(10.0**x, n_items),
        "program_id": np.tile(np.arange(n_items), len(x)),
        "pass@1": y.ravel().astype(np.float64),
    })
    return rows


def test_held_out_error_prefers_the_true_form_when_it_bends():
    items = _grid("logistic", (-22.0, 2.0), n_items=4000, seed=1, x=np.linspace(9.0, 13.0, 12))  # pass 0.02 to 0.98
    fit = bootstrap_log_linear(items, n_boot=50, confidence=0.95, seed=0)
    points = pd.DataFrame({"log10_compute": fit.x, "pass@1": fit.y, "budget": np.resize([0.25, 0.5, 1.0], 12)})
    table = compare_forms(points).set_index("form")
    assert list(table.index) == list(FORMS)
    assert table["held_out_rmse"].idxmin() == "logistic"
    assert table.loc["logistic", "aic"] < table.loc["log_linear", "aic"]


@pytest.mark.slow(seconds=18)
def test_bootstrap_interval_of_the_slope_covers_the_truth_at_its_nominal_rate():
    a, b, reps, confidence = -1.2, 0.12, 200, 0.9
    covered = 0
    for r in range(reps):
        fit = bootstrap_log_linear(_grid("log_linear", (a, b), n_items=300, seed=r), n_boot=200, confidence=confidence, seed=r)
        lo, hi = fit.interval("b")
        covered += lo <= b <= hi
    # binomial(200, 0.9): sd 0.021; three sd either side
    assert abs(covered / reps - confidence) < 3 * np.sqrt(confidence * (1 - confidence) / reps)


def test_slope_difference_and_compute_to_reach():
    steep = bootstrap_log_linear(_grid("log_linear", (-1.2, 0.12), 2000, seed=5).assign(split="steep"), 300, 0.95, 0)
    flat = bootstrap_log_linear(_grid("log_linear", (-0.3, 0.04), 2000, seed=6).assign(split="flat"), 300, 0.95, 0)
    lo, hi = difference_interval(steep.boot_b, flat.boot_b, 0.95)
    assert 0 < lo < 0.08 < hi
    assert compute_to_reach(-0.3, 0.04, 0.3) == pytest.approx(15.0)
    assert compute_to_reach(0.1, 0.0, 0.3) == np.inf and compute_to_reach(0.1, -0.01, 0.3) == np.inf
