"""The whole pipeline, with the smoke profile, in a temporary copy of the repository."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from synthgen.params import load_params
from synthgen.split_files import SPLIT_NAMES
from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def _run(args: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", DVC_NO_ANALYTICS="1")
    env.pop("SYNTHGEN_ROOT", None)
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


@pytest.fixture(scope="module")
def smoke_repo(tmp_path_factory) -> Path:
    """A fresh copy of the repository's files (tracked and new, not ignored), smoke profile."""
    repo = tmp_path_factory.mktemp("repo")
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split("\n")
    for rel in filter(None, files):
        src = ROOT / rel
        if src.is_file():
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, repo / rel)
    for rel in ("dvc.lock", "reports", "data.dvc"):  # start from nothing, as a fresh reproduction would
        path = repo / rel
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    _run(["git", "init", "-q"], repo)
    _run([sys.executable, "-m", "synthgen.cli", "profile", "smoke"], repo)
    return repo


def test_smoke_pipeline_runs_and_is_up_to_date_after(smoke_repo):
    _run(["dvc", "repro"], smoke_repo)
    metrics = json.loads((smoke_repo / "reports/metrics/enumeration.json").read_text())
    assert metrics["programs"] == 17_830  # analytic count of the smoke grammar (max_size 5)
    P = load_params(smoke_repo / "params.yaml")
    for name in ("01_grammar", "02_enumeration", "03_metric_spaces", "04_splits", "05_training_iid_seed0", "06_results",
                 "07_scaling", "08_search"):
        assert (smoke_repo / "reports/notebooks" / f"{name}.ipynb").is_file(), name
    assert any((smoke_repo / "reports/figures/02_enumeration").glob("*.png"))
    splits = json.loads((smoke_repo / "reports/metrics/splits.json").read_text())
    evaluation = json.loads((smoke_repo / "reports/metrics/evaluation.json").read_text())
    assert set(evaluation["splits"]) == set(splits) == set(SPLIT_NAMES)  # every split trained and evaluated
    for split, m in evaluation["splits"].items():
        assert 0 <= m["pass@1"]["ci"][0] <= m["pass@1"]["estimate"] <= m["pass@1"]["ci"][1] <= 1, split
        assert set(m["per_seed"]) == {str(s) for s in P.seeds}, split  # one model per (split, seed)
        assert m["functions"] == P.splits.test_size
    for split in SPLIT_NAMES:
        for seed in P.seeds:
            assert (smoke_repo / f"artifacts/models/{split}/seed{seed}/model.pt").is_file()
    assert {len(v) for v in evaluation["regions"].values()} == {P.splits.support.regions}
    assert set(evaluation["strata"]["kind"]["iid"]) <= {"const", "x", "y", "x+y"}
    assert (smoke_repo / "reports/figures/06_results/generalization_map.png").is_file()
    headline = json.loads((smoke_repo / "reports/metrics/headline.json").read_text())
    assert set(headline["pass@1"]) == set(SPLIT_NAMES) and headline["seeds"] == len(P.seeds)
    shown = _run(["dvc", "metrics", "show", "--json"], smoke_repo).stdout
    assert "headline.json" in shown and "evaluation.json" not in shown  # one small metrics file
    # the scaling grid: every (size, split, seed) item's snapshots at every budget, and the fits
    for item in (smoke_repo / "artifacts/scaling/points").glob("*.parquet"):
        points = pd.read_parquet(item)
        assert sorted(points["budget"].unique()) == P.scaling.budgets, item.name
        assert points.groupby("budget")["compute"].nunique().eq(1).all()
        assert points.groupby("budget").size().nunique() == 1  # the same test programs at every budget
    assert len(list((smoke_repo / "artifacts/scaling/points").glob("*.parquet"))) == (
        len(P.scaling.sizes) * 3 * len(P.scaling.seeds))
    scaling = json.loads((smoke_repo / "reports/metrics/scaling.json").read_text())
    assert set(scaling["fits"]) == {"iid", "density_diverse_both", "support_syntax"}
    for split, fit in scaling["fits"].items():
        assert fit["b_ci"][0] <= fit["b"] <= fit["b_ci"][1], split
        assert fit["best_form"] in ("log_linear", "saturating", "logistic")
    assert "slopes_differ" in scaling["support_syntax_vs_iid"]
    assert (smoke_repo / "reports/figures/07_scaling/scaling.png").is_file()
    assert (smoke_repo / "reports/scaling/points.csv").is_file()
    # search: every method on every split, at its largest budget, with ordered intervals
    search = json.loads((smoke_repo / "reports/metrics/search.json").read_text())
    assert set(search["pass@1"]) == set(splits)
    for split, methods in search["pass@1"].items():
        assert set(methods) == {"greedy", "enumerative", "sample_and_filter", "best_first"}, split
        for m in methods.values():
            assert m["ci"][0] <= m["mean"] <= m["ci"][1]
    assert search["tasks_per_split"] == min(P.search.tasks, P.splits.test_size)
    assert (smoke_repo / "reports/figures/08_search/accuracy_vs_candidates.png").is_file()
    again = _run(["dvc", "repro"], smoke_repo)
    assert "Data and pipelines are up to date" in again.stdout
    status = _run(["dvc", "status"], smoke_repo)
    assert "up to date" in status.stdout


def test_changing_a_training_param_reruns_only_what_depends_on_it(smoke_repo):
    params = smoke_repo / "params.yaml"
    good = params.read_text()
    try:
        params.write_text(good.replace("min_lr: 0.0002", "min_lr: 0.0001"))
        assert params.read_text() != good
        dry = _run(["dvc", "repro", "--dry"], smoke_repo)
        ran = {line.split("'")[1] for line in dry.stdout.splitlines() if line.startswith("Running stage")}
        trains = {f"train@{s}-{seed}" for s in SPLIT_NAMES for seed in load_params(params).seeds}
        # min_lr shapes the section-5 runs; the scaling runs keep a constant rate and ignore
        # it. (A dry run lists the stages whose own inputs changed: evaluate and search
        # follow once the new models differ.)
        assert ran == trains, ran
    finally:
        params.write_text(good)
    assert "up to date" in _run(["dvc", "status"], smoke_repo).stdout


def _stages(repo: Path) -> set[str]:
    return {line.split()[0] for line in _run(["dvc", "stage", "list"], repo).stdout.splitlines() if line.strip()}


def test_dvc_yaml_follows_the_split_list_and_the_seeds_of_params(smoke_repo):
    P = load_params(smoke_repo / "params.yaml")
    stages = _stages(smoke_repo)
    for kind in ("train", "evaluate"):
        assert {s for s in stages if s.startswith(f"{kind}@")} == {f"{kind}@{s}-{seed}" for s in SPLIT_NAMES
                                                                   for seed in P.seeds}
    scaling = {s for s in stages if s.startswith("scaling_run@")}
    assert {s.split("-")[-1] for s in scaling} == {str(seed) for seed in P.scaling.seeds}
    assert {s.split("@")[1].split("-")[0] for s in scaling} == set(P.scaling.sizes)


def test_changing_the_seed_list_reruns_only_what_depends_on_it(smoke_repo):
    params = smoke_repo / "params.yaml"
    good = params.read_text()
    P = load_params(params)
    new = max(P.seeds) + 1
    try:
        from ruamel.yaml import YAML

        yaml = YAML()
        data = yaml.load(good)
        data["seeds"] = P.seeds[:-1] + [new]
        with params.open("w") as fh:
            yaml.dump(data, fh)
        assert load_params(params).seeds == P.seeds[:-1] + [new]
        dry = _run(["dvc", "repro", "--dry"], smoke_repo)
        ran = {line.split("'")[1] for line in dry.stdout.splitlines() if line.startswith("Running stage")}
        expected = {f"{kind}@{s}-{new}" for kind in ("train", "evaluate") for s in SPLIT_NAMES}
        # the new seed's models and their evaluations, and the stages that aggregate over seeds
        assert expected <= ran and ran - expected <= {"results", "search", "headline"}, ran - expected
        assert not any(r.startswith("scaling_run") for r in ran)
    finally:
        params.write_text(good)
    assert "up to date" in _run(["dvc", "status"], smoke_repo).stdout


def test_release_is_built_recorded_checked_pushed_and_pulled(smoke_repo):
    from synthgen.release import manifest_problems

    _run([sys.executable, "-m", "synthgen.release", "build"], smoke_repo)
    _run(["dvc", "add", "--quiet", "data"], smoke_repo)
    assert manifest_problems(smoke_repo / "data") == []
    check = _run([sys.executable, "-m", "synthgen.release", "check"], smoke_repo)
    assert "reproduces exactly" in check.stdout
    # the default remote (a folder beside the repository) works out of the box
    _run(["dvc", "push", "data.dvc"], smoke_repo)
    shutil.rmtree(smoke_repo / "data")
    shutil.rmtree(smoke_repo / ".dvc" / "cache")
    _run(["dvc", "pull", "data.dvc"], smoke_repo)
    assert manifest_problems(smoke_repo / "data") == []
    # a changed file is caught
    (smoke_repo / "data" / "DATASHEET.md").write_text("edited\n")
    failed = _run([sys.executable, "-m", "synthgen.release", "check"], smoke_repo, check=False)
    assert failed.returncode == 1 and "DATASHEET.md" in failed.stderr


def test_bad_params_stop_dvc_repro_in_one_line(smoke_repo, tmp_path):
    # Last in this module: DVC removes a stage's outputs before running its command, so the
    # stage stays out of date after this (`make repro` checks params before DVC starts).
    params = smoke_repo / "params.yaml"
    good = params.read_text()
    try:
        params.write_text(good.replace("max_size: 5", "max_size: 0"))
        proc = _run(["dvc", "repro", "-f", "grammar"], smoke_repo, check=False)
        assert proc.returncode != 0
        assert "synthgen: params.yaml: grammar.max_size = 0: must be an integer from 1 to 9" in proc.stderr + proc.stdout
    finally:
        params.write_text(good)
