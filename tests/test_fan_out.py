"""synthgen.fan_out: how the per-model units are handed out, and what a worker's workspace
is. The whole fan-out runs in every test session: it builds the smoke run (conftest's
``_smoke_build``), whose tests check the pipeline it leaves."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
import yaml

from synthgen.fan_out import _dvc, _take, adopt_runs, cache_dir, forget_uncached, make_workspace, units
from tests.conftest import copy_repository


def test_guided_chunks_hand_out_every_unit_once_and_shrink():
    todo = [f"u{i}" for i in range(26)]
    lock = threading.Lock()
    taken = []
    while chunk := _take(todo, 2, lock):
        taken.append(chunk)
    assert [u for chunk in taken for u in chunk] == [f"u{i}" for i in range(26)]  # in order, each once
    sizes = [len(c) for c in taken]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] == 7 and sizes[-1] == 1  # ceil(26 / (2 x 2)) first, single units last
    assert _take([], 2, lock) == []
    assert _take(["a"], 8, lock) == ["a"]


def test_units_are_every_evaluate_then_the_scaling_runs_largest_first(tmp_path):
    repo = copy_repository(tmp_path / "repo")  # the smoke profile
    listed = units(repo)
    P = yaml.safe_load((repo / "params.yaml").read_text())
    evaluate = [u for u in listed if u.startswith("evaluate@")]
    scaling = [u for u in listed if u.startswith("scaling_run@")]
    assert listed == evaluate + scaling
    assert len(evaluate) == 7 * len(P["seeds"])
    assert len(scaling) == len(P["scaling"]["sizes"]) * len(P["scaling"]["splits"]) * len(P["scaling"]["seeds"])
    sizes = [u.split("@")[1].split("-")[0] for u in scaling]
    order = list(P["scaling"]["sizes"])  # smallest first in params.yaml
    assert sizes == sorted(sizes, key=lambda s: -order.index(s))  # largest (longest) first


def test_a_workspace_copies_the_files_links_the_artifacts_and_keeps_partial_runs(tmp_path):
    root = copy_repository(tmp_path / "repo")
    (root / "artifacts" / "universe").mkdir(parents=True)
    (root / "artifacts" / "universe" / "programs.parquet").write_bytes(b"data")
    (root / ".dvc" / "cache").mkdir(exist_ok=True)
    dest = root / ".dvc" / "tmp" / "fan_out" / "w0"
    ws = make_workspace(root, dest, threads=1)
    assert (ws / "dvc.yaml").read_text() == (root / "dvc.yaml").read_text()
    assert not (ws / ".git").exists() and not (ws / ".dvc" / "cache").exists()  # no git; the cache is root's
    linked = ws / "artifacts" / "universe" / "programs.parquet"
    assert linked.stat().st_ino == (root / "artifacts" / "universe" / "programs.parquet").stat().st_ino
    assert (ws / "params.yaml").stat().st_ino != (root / "params.yaml").stat().st_ino  # copied: a worker edits it
    params = yaml.safe_load((ws / "params.yaml").read_text())
    assert params["training"]["threads"] == 1
    assert {k: v for k, v in params.items() if k != "training"} == {
        k: v for k, v in yaml.safe_load((root / "params.yaml").read_text()).items() if k != "training"}
    local = (ws / ".dvc" / "config.local").read_text()
    assert "no_scm = true" in local and str((root / ".dvc" / "cache").resolve()) in local
    # renewed: a partial run (a checkpoint) survives, everything else is the root's again
    checkpoint = ws / "artifacts" / "checkpoints" / "iid" / "seed0" / "checkpoint.pt"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"step 200")
    (ws / "stale.txt").write_text("left by a worker")
    ws = make_workspace(root, dest, threads=1)
    assert checkpoint.read_bytes() == b"step 200"
    assert not (ws / "stale.txt").exists()


@pytest.mark.slow(seconds=3)
def test_a_workspace_uses_the_cache_its_root_is_configured_with(tmp_path):
    # a clone that shares another clone's cache (`dvc cache dir --local ...`): its workers must
    # read and fill that cache, or they rerun every data stage and miss the run-cache
    root = copy_repository(tmp_path / "repo")
    shared = tmp_path / "shared_cache"
    _dvc(["cache", "dir", "--local", str(shared)], root, check=True, capture_output=True)
    assert cache_dir(root) == str(shared)
    ws = make_workspace(root, root / ".dvc" / "tmp" / "fan_out" / "w0", threads=1)
    assert cache_dir(ws) == str(shared)
    assert str((root / ".dvc" / "cache").resolve()) not in (ws / ".dvc" / "config.local").read_text()


STAGE = """\
stages:
  train:
    foreach: [{items}]
    do:
      cmd: python make.py ${item}
      deps:
        - make.py
      outs:
        - out/${item}
"""
# a model that is the same bytes every run, beside a log that is not (as an executed notebook)
MAKE = """\
import pathlib, sys, time
out = pathlib.Path("out", sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
(out / "model.txt").write_text("the same weights")
(out / "log.txt").write_text(str(time.time_ns()))
"""


def _tiny_repo(path: Path, items: str = "a") -> Path:
    """A DVC repository (no git) whose one matrix stage ``train@<item>`` writes ``out/<item>``."""
    path.mkdir()
    _dvc(["init", "--no-scm", "-q"], path, check=True)
    (path / "dvc.yaml").write_text(STAGE.replace("{items}", items))
    (path / "make.py").write_text(MAKE)
    (path / "params.yaml").write_text("training:\n  threads: 2\n")  # a workspace sets its share
    return path


def _repro(path: Path, *targets: str) -> str:
    return _dvc(["repro", *targets], path, check=True, capture_output=True).stdout


@pytest.mark.slow(seconds=10)
def test_the_workers_lock_entries_are_taken_and_their_outputs_checked_out(tmp_path):
    # what saves the last dvc repro from restoring every per-model stage from the run-cache
    # (and rewriting the whole lock after each one)
    root = _tiny_repo(tmp_path / "root", "a, b, c, d")
    w0, w1 = (make_workspace(root, root / ".dvc" / "tmp" / "fan_out" / f"w{i}", threads=1) for i in range(2))
    _repro(w0, "train@a", "train@c", "train@d")
    _repro(w1, "--no-run-cache", "train@b", "train@c")  # c run by both: their logs differ, neither is taken
    lock = yaml.safe_load((w0 / "dvc.lock").read_text())["stages"]
    md5 = lock["train@d"]["outs"][0]["md5"]  # d's outputs never reached the cache
    (Path(cache_dir(root)) / "files" / "md5" / md5[:2] / md5[2:]).unlink()
    order = ["train@a", "train@b", "train@c", "train@d"]
    assert adopt_runs(root, [w1, w0], order) == ["train@a", "train@b"]  # in dvc.yaml's order
    assert list(yaml.safe_load((root / "dvc.lock").read_text())["stages"]) == ["train@a", "train@b"]
    for item, worker in (("a", w0), ("b", w1)):
        assert (root / "out" / item / "log.txt").read_text() == (worker / "out" / item / "log.txt").read_text()
    assert adopt_runs(root, [w1, w0], order) == []  # taken already: nothing differs, nothing is missing
    shutil.rmtree(root / "out" / "a")  # root's entry is the worker's, its outputs are not here (a fresh clone)
    assert adopt_runs(root, [w1, w0], order) == ["train@a"]
    assert (root / "out" / "a" / "log.txt").read_text() == (w0 / "out" / "a" / "log.txt").read_text()
    out = _repro(root)
    for item in "ab":
        assert f"Stage 'train@{item}' didn't change" in out, out
    assert "Running stage 'train@a'" not in out and "Running stage 'train@b'" not in out
    assert "Stage 'train@c' is cached" in out and "Running stage 'train@d'" in out, out


@pytest.mark.slow(seconds=9)
def test_a_fresh_clone_gets_the_workers_runs_back_from_the_run_cache(tmp_path):
    # the committed dvc.lock names outputs a fresh clone's cache lacks (the log differs per
    # run); while that entry stands, dvc repro reruns the stage instead of asking the
    # run-cache for the worker's run, so the fan-out would train every model twice
    repo, repro = _tiny_repo, _repro

    released = repo(tmp_path / "released")
    repro(released)
    clones = []
    for name in ("as_is", "forgotten"):
        clone = repo(tmp_path / name)
        shutil.copy(released / "dvc.lock", clone / "dvc.lock")
        worker = make_workspace(clone, clone / ".dvc" / "tmp" / "fan_out" / "w0", threads=1)
        assert "Running stage 'train@a'" in repro(worker)
        clones.append(clone)
    as_is, forgotten = clones
    assert "Running stage 'train@a'" in repro(as_is)  # DVC's behaviour the fix is for
    assert forget_uncached(forgotten) == ["train@a"]
    assert forget_uncached(forgotten) == []  # idempotent: the entry is gone
    out = repro(forgotten)
    assert "Running stage" not in out and "is cached" in out
    assert (forgotten / "out" / "a" / "model.txt").read_text() == "the same weights"
    assert forget_uncached(forgotten) == []  # outputs in place: nothing to forget
