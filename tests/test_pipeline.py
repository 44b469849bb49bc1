"""The whole pipeline, with the smoke profile, in a temporary copy of the repository."""

from __future__ import annotations

import json
import re
import shutil
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from ruamel.yaml import YAML

from synthgen.params import load_params
from synthgen.split_files import SPLIT_NAMES
from tests.conftest import ROOT, _once, copy_of_smoke_run, run_command

pytestmark = pytest.mark.slow


_run = run_command


@pytest.fixture
def smoke_repo(smoke_run) -> Path:
    """The session's smoke run (tests/conftest.py): ``dvc repro`` of the smoke profile, done."""
    return smoke_run


def test_smoke_pipeline_runs_and_is_up_to_date_after(smoke_repo):
    # smoke_run has run `dvc repro` (every stage) in a fresh copy of the repository
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
        len(P.scaling.sizes) * len(P.scaling.splits) * len(P.scaling.seeds))
    scaling = json.loads((smoke_repo / "reports/metrics/scaling.json").read_text())
    assert set(scaling["fits"]) == set(P.scaling.splits) == {"iid", "support_syntax"}
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


def _outdated_stages(repo: Path) -> set[str]:
    """The stages whose own inputs changed (what `dvc repro` would start from). Read from
    `dvc status`, not `dvc repro --dry`: DVC 3's dry run stops at the first stage whose
    dependency another stage would create (treeverse/dvc#9818)."""
    return set(json.loads(_run(["dvc", "status", "--json"], repo).stdout))


def test_changing_a_training_param_reruns_only_what_depends_on_it(smoke_repo):
    params = smoke_repo / "params.yaml"
    good = params.read_text()
    try:
        params.write_text(good.replace("min_lr: 0.0002", "min_lr: 0.0001"))
        assert params.read_text() != good
        ran = _outdated_stages(smoke_repo)
        trains = {f"train@{s}-{seed}" for s in SPLIT_NAMES for seed in load_params(params).seeds}
        # min_lr shapes the section-5 runs; the scaling runs keep a constant rate and ignore
        # it. (Only the stages whose own inputs changed are listed: evaluate and search
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
    assert {s.split("-")[1] for s in scaling} == set(P.scaling.splits)


def test_committed_lock_records_only_stages_of_the_pipeline():
    """dvc.lock keeps an entry of a stage that dvc.yaml no longer has (DVC does not prune
    one): the committed lock must hold the current stages only, so that it tells a reader
    what the released run ran."""
    stale = set(yaml.safe_load((ROOT / "dvc.lock").read_text())["stages"]) - _stages(ROOT)
    assert not stale, sorted(stale)


# the stage outputs' folders in reports/ that git tracks, and what else writes there: `make
# calibrate` (notebook 09, outside the pipeline) and the benchmarks' records (reports/ablations,
# reports/seed_sets, ...), which are not stage outputs
STAGE_REPORTS = ("reports/figures/", "reports/metrics/", "reports/scaling/")
NOT_A_STAGE = ("reports/figures/09_calibration/",)


def test_committed_reports_are_what_the_stages_write():
    """Every file git tracks under the stage outputs' folders of reports/ is an output of a
    stage of the committed dvc.lock (or inside one): a file an earlier pipeline wrote, whose
    stage has since gone or been renamed, would sit beside the current results and read as
    one of them."""
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    tracked = _run(["git", "ls-files", "--", *STAGE_REPORTS], ROOT).stdout.split()
    assert tracked, "git lists no file under " + ", ".join(STAGE_REPORTS)
    outs = {out["path"] for stage in yaml.safe_load((ROOT / "dvc.lock").read_text())["stages"].values()
            for out in stage.get("outs", [])}
    stray = [f for f in tracked if Path(f).name != ".gitignore" and not f.startswith(NOT_A_STAGE)
             and not any(f == out or f.startswith(out.rstrip("/") + "/") for out in outs)]
    assert not stray, stray


def test_changing_the_seed_list_reruns_only_what_depends_on_it(smoke_repo):
    """A seed added to the list: its models and evaluations and the stages that aggregate
    over seeds are out of date; the models of the seeds there before are not."""
    params = smoke_repo / "params.yaml"
    good = params.read_text()
    P = load_params(params)
    new = max(P.seeds) + 1
    try:
        _set_seeds(params, P.seeds + [new])
        assert load_params(params).seeds == P.seeds + [new]
        ran = _outdated_stages(smoke_repo)
        expected = {f"{kind}@{s}-{new}" for kind in ("train", "evaluate") for s in SPLIT_NAMES}
        # the new seed's models and their evaluations, and the stages that aggregate over seeds
        assert expected <= ran and ran - expected <= {"results", "search", "headline"}, ran - expected
        assert not any(r.startswith("scaling_run") for r in ran)
    finally:
        params.write_text(good)
    assert "up to date" in _run(["dvc", "status"], smoke_repo).stdout


def _workers_exited(repo: Path) -> bool | None:
    """Whether every queue worker has exited, read from the files in which the workers'
    process manager (dvc-task) records each one's pid and, once it has exited, its return
    code; None where there is no such file (not started yet, or a DVC that keeps them
    elsewhere): then only ``dvc queue status`` can tell."""
    infos = list((repo / ".dvc" / "tmp" / "exps" / "celery").glob("dvc-exp-worker-*.json"))
    if not infos:
        return None
    try:
        return all(json.loads(info.read_text()).get("returncode") is not None for info in infos)
    except (OSError, ValueError):  # one being rewritten
        return False


def _queue_settled(repo: Path, timeout: float) -> str:
    """``dvc queue status`` once no task is queued or running and no worker is left. While a
    worker's file says it runs, only that file is read (every second); DVC is asked once
    they have all exited, or every 10 s where they cannot be read (each call starts DVC and
    celery: about 0.6 CPU-seconds taken from the units it waits for)."""
    deadline = time.monotonic() + timeout
    asked = time.monotonic()
    while True:
        time.sleep(1)
        exited, now = _workers_exited(repo), time.monotonic()
        if (exited is False or (exited is None and now - asked < 10)) and now <= deadline:
            continue
        asked = now
        status = _run(["dvc", "queue", "status"], repo).stdout
        settled = not re.search(r"\b(Queued|Running)\b", status) and "0 active, 0 idle" in status
        if settled or time.monotonic() > deadline:
            return status


# the queue test's units: two, so that `dvc queue start -j 2` runs two at once and the
# collecting clone restores a union; the first is a seed of the smoke profile (the smoke run
# trained it too: the bytes are compared)
QUEUED_SEEDS = (0, 1)


def _set_seeds(params: Path, seeds: list[int]) -> None:
    """``params.yaml``'s top-level ``seeds``, the rest of the file as it was."""
    yaml_rt = YAML()
    data = yaml_rt.load(params.read_text())
    data["seeds"] = seeds
    with params.open("w") as fh:
        yaml_rt.dump(data, fh)


def _grid_unit_files(repo: Path, seed: int) -> dict[str, bytes]:
    """What one queued unit makes: the (iid, seed) model, its training summary and its evaluation."""
    return {rel: (repo / rel).read_bytes() for rel in (f"artifacts/models/iid/seed{seed}/model.pt",
                                                      f"artifacts/models/iid/seed{seed}/curve.tsv",
                                                      f"reports/training/iid_seed{seed}.json",
                                                      f"artifacts/evaluation/iid/seed{seed}.parquet")}


@pytest.fixture(scope="session")
def queued_units(_smoke_splits, tmp_path_factory) -> Path:
    """docs/scaling-out.md, on the smoke profile, once per session: each unit of the grid is
    a queued experiment (here one model and its evaluation, one training seed each:
    QUEUED_SEEDS, the repository's seed list), run by `dvc queue start -j 2`, then collected
    by `dvc repro` in a clone sharing the queue's cache, as a second checkout on the machine
    would be.  Each unit is queued with a run setting of its own (checkpoint_every,
    standing in for the device each worker of a GPU machine gets).  It runs in a copy of
    the smoke repository with its data stages run (no model yet), so that it needs nothing
    of the session's smoke run and runs while that is being built.  Returns the folder
    holding the queue's repository (``repo``), the collecting clone (``collect``) and
    ``record.json``: what the commands answered."""
    def build(repo: Path) -> None:
        copy_of_smoke_run(_smoke_splits, repo)
        _set_seeds(repo / "params.yaml", list(QUEUED_SEEDS))  # no data stage reads the seeds
        P = load_params(repo / "params.yaml")
        for key, value in (("user.email", "smoke@example.org"), ("user.name", "smoke")):
            _run(["git", "config", key, value], repo)
        _run(["git", "add", "-A"], repo)
        _run(["git", "commit", "-q", "--allow-empty", "-m", "the smoke data stages, run"], repo)  # experiments start from a commit
        for seed in QUEUED_SEEDS:
            _run(["dvc", "exp", "run", "--queue", "--name", f"seed{seed}", "-S", f"seeds=[{seed}]",
                  "-S", f"training.checkpoint_every={2 * P.training.checkpoint_every}", f"evaluate@iid-{seed}"], repo)
        before = _run(["dvc", "status", "--json"], repo).stdout
        _run(["dvc", "queue", "start", "-j", "2"], repo, quiet=True)
        try:
            status = _queue_settled(repo, timeout=600)
        finally:
            if _workers_exited(repo) is not True:
                # interrupted (Ctrl-C), failed or timed out: the workers run detached from
                # pytest, and would train on; stop them and their tasks
                _run(["dvc", "queue", "stop", "--kill"], repo, check=False)
        shown = json.loads(_run(["dvc", "exp", "show", "--json"], repo).stdout)
        after = _run(["dvc", "status", "--json"], repo).stdout

        collect = repo.parent / "collect"
        _run(["git", "clone", "-q", str(repo), str(collect)], repo.parent)
        _run(["dvc", "cache", "dir", "--local", str(repo / ".dvc" / "cache")], collect)
        _run(["dvc", "checkout", "--quiet", "--with-deps", "splits"], collect)  # the data stages (no model yet)
        collected = _run(["dvc", "repro", *[f"evaluate@iid-{seed}" for seed in QUEUED_SEEDS]], collect).stdout
        record = dict(before=before, status=status, shown=shown, after=after, collected=collected)
        (repo.parent / "record.json").write_text(json.dumps(record))

    return _once(tmp_path_factory, "queued_units", build).parent


def test_queued_units_are_collected_from_the_run_cache(queued_units):
    """The queue ran every unit, left its workspace alone, and a workspace set to the union
    of the units' seeds gets every unit back from DVC's run-cache without running it."""
    record = json.loads((queued_units / "record.json").read_text())
    collect = queued_units / "collect"
    P = load_params(collect / "params.yaml")
    seeds = P.seeds
    assert seeds == list(QUEUED_SEEDS)
    status = record["status"]
    assert status.count("Success") == len(seeds) and "0 active, 0 idle" in status, status
    units = {rev["name"]: rev["data"] for e in record["shown"] for x in e.get("experiments") or [] for rev in x["revs"]}
    assert set(units) == {f"seed{seed}" for seed in seeds}, set(units)
    assert record["after"] == record["before"]  # the queue left the workspace alone

    collected = record["collected"]
    assert "Running stage" not in collected, collected
    lock = yaml.safe_load((collect / "dvc.lock").read_text())["stages"]
    for seed in seeds:
        for stage in (f"train@iid-{seed}", f"evaluate@iid-{seed}"):
            assert f"Stage '{stage}' is cached - skipping run" in collected, (stage, collected)
        model = f"artifacts/models/iid/seed{seed}"  # what `dvc exp show` reported of the unit
        assert units[f"seed{seed}"]["params"]["params.yaml"]["data"]["seeds"] == [seed]
        assert units[f"seed{seed}"]["outs"][model]["hash"] == next(
            o["md5"] for o in lock[f"train@iid-{seed}"]["outs"] if o["path"] == model)
        assert len(pd.read_parquet(collect / f"artifacts/evaluation/iid/seed{seed}.parquet")) == P.splits.test_size


def test_queued_units_equal_the_units_dvc_repro_runs(queued_units, smoke_run):
    """The units the queue ran and the collecting workspace restored have the bytes that
    `dvc repro` gives: the session's smoke run trained the same units (iid, the seeds it
    shares with the queue) in a repository of its own, with a cache of its own."""
    collect = queued_units / "collect"
    shared = sorted(set(QUEUED_SEEDS) & set(load_params(smoke_run / "params.yaml").seeds))
    assert shared
    for seed in shared:
        assert _grid_unit_files(collect, seed) == _grid_unit_files(smoke_run, seed), seed


def test_release_is_built_recorded_checked_pushed_and_pulled(smoke_copy, tmp_path):
    """In a copy of the smoke run: the test empties the DVC cache and edits data/."""
    from synthgen.release import manifest_problems

    smoke_repo = smoke_copy

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


def test_bad_params_stop_dvc_repro_in_one_line(smoke_copy, tmp_path):
    # In a copy of the smoke run: DVC removes a stage's outputs before running its command,
    # so the stage stays out of date after this (`make repro` checks params before DVC starts).
    smoke_repo = smoke_copy
    params = smoke_repo / "params.yaml"
    good = params.read_text()
    try:
        params.write_text(good.replace("max_size: 5", "max_size: 0"))
        proc = _run(["dvc", "repro", "-f", "grammar"], smoke_repo, check=False)
        assert proc.returncode != 0
        assert "synthgen: params.yaml: grammar.max_size = 0: must be an integer from 1 to 9" in proc.stderr + proc.stdout
    finally:
        params.write_text(good)


def test_rerunning_the_results_stage_gives_the_same_bytes(smoke_copy):
    """Same inputs, same bytes, figures included: a figure drawn with randomness from an
    unseeded generator (seaborn's strip-plot jitter reads numpy's global one) would differ
    between two runs of the stage. In a copy of the smoke run: the rerun rewrites its
    executed notebook, which holds timings."""
    smoke_repo = smoke_copy
    outs = [smoke_repo / "reports/metrics/evaluation.json", *sorted((smoke_repo / "reports/figures/06_results").glob("*.png"))]
    assert len(outs) > 2
    before = {path.name: path.read_bytes() for path in outs}
    ran = _run(["dvc", "repro", "--force", "--single-item", "results"], smoke_repo).stdout
    assert "Running stage 'results'" in ran, ran
    assert [path.name for path in outs if path.read_bytes() != before[path.name]] == []
