"""The calibration sweep: recipes trained on iid, read on its validation functions only."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from synthgen.calibration import (
    axis,
    read_runs,
    recipe_table,
    run_paths,
    run_sweep,
    select_recipe,
    training_candidates,
    training_programs,
)
from synthgen.params import ParamsError, recipe_params
from synthgen.split_files import read_split, read_validation, write_split
from tests.conftest import smoke_params


@pytest.fixture(scope="module")
def smoke_root(tmp_path_factory, universe, spaces_for):
    """A repository root holding the smoke profile's iid split file (with validation)."""
    from synthgen.splits import make_splits

    root = tmp_path_factory.mktemp("calibration")
    P = smoke_params()
    for s in make_splits(spaces_for(universe), P.splits, P.seed):
        write_split(s, root / "artifacts" / "splits")
    return root


def test_training_programs_are_nested_and_avoid_test_and_validation(universe, smoke_root):
    P = smoke_params()
    candidates = training_candidates(universe, P, smoke_root)
    _, test, _ = read_split(smoke_root / "artifacts/splits/iid.parquet")
    validation = read_validation(smoke_root / "artifacts/splits/iid.parquet")
    assert len(validation) == P.splits.validation_size
    assert not np.isin(candidates, np.concatenate([test.program_id, validation])).any()
    small, large = training_programs(candidates, 500, 0), training_programs(candidates, 2000, 0)
    assert np.isin(small, large).all() and len(np.unique(large)) == 2000  # more data holds the smaller set
    assert not np.array_equal(training_programs(candidates, 500, 1), small)  # the order is the seed's
    with pytest.raises(ValueError, match="training candidates"):
        training_programs(candidates, len(candidates) + 1, 0)


@pytest.mark.slow(seconds=3)
def test_the_sweep_runs_reads_back_and_selects(universe, smoke_root, capsys):
    P = smoke_params()
    rows = run_sweep(universe, P, root=smoke_root, progress=False)
    assert [r["recipe"] for r in rows] == list(P.calibration.recipes)
    for r in rows:
        summary, table = run_paths(r["recipe"], r["seed"], smoke_root)
        outcomes = pd.read_parquet(table)
        assert len(outcomes) == P.splits.validation_size == r["functions"]
        assert r["no_twin_functions"] == int((~outcomes.twin).sum())
        assert np.isclose(r["pass@1 all"], outcomes["pass@1"].mean(), atol=1e-4)
        assert r["cpu_seconds"] > 0 and json.loads(summary.read_text())["fingerprint"] == r["fingerprint"]
    assert rows[2]["splits.train_size"] == 2000 and rows[1]["training.tasks"] == 2048
    # a second sweep reads every run back: no training
    capsys.readouterr()
    again = run_sweep(universe, P, root=smoke_root, progress=False)
    assert again == rows and capsys.readouterr().out.count("read back") == len(rows)
    outcomes = read_runs(rows, smoke_root)
    assert len(outcomes) == len(rows) * P.splits.validation_size
    table = recipe_table(rows, outcomes, P)
    assert table.loc[table.recipe == "base", "cost"].item() == pytest.approx(1.0)
    for s in ("all", "twin", "no_twin"):
        ok = table[f"pass@1 {s}"].notna()
        assert (table.loc[ok, f"pass@1 {s} lo"] <= table.loc[ok, f"pass@1 {s}"] + 1e-12).all()
    choice = select_recipe(table, P.calibration)
    assert choice["chosen"] in choice["tied"] and choice["chosen"] in P.calibration.recipes
    data = axis(table, "splits.train_size", P)
    assert set(data.recipe) == {"base", "tasks_2k", "data_2k"}  # they differ only in data and compute


def test_a_changed_recipe_runs_again(universe, smoke_root):
    P = smoke_params()
    run_sweep(universe, P, recipes=["base"], root=smoke_root, progress=False)
    changed = smoke_params(calibration={"recipes": {"base": {"training.tasks": 512}}})
    (row,) = run_sweep(universe, changed, recipes=["base"], root=smoke_root, progress=False)
    assert row["training.tasks"] == 512  # another fingerprint: trained, not read back


def _table(**columns) -> pd.DataFrame:
    return pd.DataFrame(columns)


def test_selection_rule_takes_the_cheapest_of_the_eligible_tie():
    P = smoke_params(calibration={"max_cost": 2.5, "tolerance": 0.01,
                                  "recipes": {"base": {}, "a": {"training.tasks": 2048},
                                              "b": {"training.tasks": 4096}, "c": {"training.tasks": 8192}}})
    table = _table(recipe=["base", "a", "b", "c"], cost=[1.0, 2.0, 2.4, 4.0],
                   **{"pass@1 no_twin": [0.05, 0.195, 0.20, 0.40], "pass@1 all": [0.1, 0.3, 0.3, 0.5],
                      "cpu_minutes": [1.0, 2.0, 2.4, 4.0]})
    choice = select_recipe(table, P.calibration)
    # c is best but too dear; a is within the tolerance of b and cheaper
    assert choice["chosen"] == "a" and choice["tied"] == ["a", "b"] and choice["not_eligible"] == ["c"]
    assert choice["best_no_twin"] == 0.2
    strict = select_recipe(table, smoke_params(calibration={**P.calibration.model_dump(), "tolerance": 0.0}).calibration)
    assert strict["chosen"] == "b"


def test_extrapolation_reads_the_compute_axis_only():
    from synthgen.calibration import AXES, extrapolate

    P = smoke_params()
    base = {k: 1 for k in AXES} | {"splits.train_size": P.splits.train_size}
    rows = [base | {"recipe": n, "training.tasks": t, "pass@1 no_twin": p, "cpu_minutes": t / 1000}
            for n, t, p in (("base", 1000, 0.10), ("more", 10_000, 0.20), ("most", 100_000, 0.30))]
    rows.append(base | {"recipe": "wide", "model.width": 2, "training.tasks": 10_000, "pass@1 no_twin": 0.9,
                        "cpu_minutes": 99})  # another shape: not on the axis
    out = extrapolate(pd.DataFrame(rows), P, target=0.5)
    assert out["points"] == 3 and out["b_per_decade"] == pytest.approx(0.1)
    assert out["tasks"] == pytest.approx(1e7) and out["cpu_minutes"] == pytest.approx(1e4)
    flat = [r | {"pass@1 no_twin": 0.1} for r in rows]
    assert extrapolate(pd.DataFrame(flat), P, target=0.5)["tasks"] is None  # a line that does not rise


def test_bad_recipes_stop_in_one_line():
    P = smoke_params()
    with pytest.raises(ParamsError, match=r"^smoke: calibration.recipes: .*grammar.max_size cannot be calibrated"):
        smoke_params(calibration={"recipes": {"base": {}, "x": {"grammar.max_size": 3}}})
    with pytest.raises(ParamsError, match="base .* must be one of the recipes"):
        smoke_params(calibration={"base": "missing"})
    bad = smoke_params(calibration={"recipes": {"base": {}, "x": {"model.width": 30, "model.heads": 4}}})
    with pytest.raises(ParamsError, match="calibration recipe x: model: width .30. must be divisible by heads .4."):
        recipe_params(bad, "x")
    assert recipe_params(P, "data_2k").splits.train_size == 2000


@pytest.mark.slow
def test_the_calibration_command_runs_on_the_smoke_profile(smoke_splits_copy):
    """`make calibrate`'s notebook, on the smoke pipeline's splits: the sweep's files and the
    choice, then a second run that reads every run back.  It needs the data stages only (a
    private copy of them, ready before the smoke run's models are), as `make calibrate`
    runs `dvc repro splits` and then the notebook."""
    repo = smoke_splits_copy
    env = dict(os.environ, PATH=f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}")
    for _ in range(2):
        proc = subprocess.run([sys.executable, "-m", "synthgen.notebook", "09_calibration"], cwd=repo, env=env,
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("read back") == 3
    choice = json.loads((repo / "reports/calibration/selection.json").read_text())
    assert choice["recipes_run"] == ["base", "tasks_2k", "data_2k"]
    assert (repo / "reports/figures/09_calibration/axes.png").is_file()
    assert (repo / "reports/notebooks/09_calibration.ipynb").is_file()
