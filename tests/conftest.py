"""Shared fixtures: the smoke grammar and its universe (enumerated once per session), the
smoke profile's params for the synthesizer's tests, and the smoke pipeline, run once per
session (``smoke_run``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

import pytest
import yaml

from synthgen.enumeration import enumerate_universe
from synthgen.grammar import Grammar
from synthgen.params import Params, validate_params
from synthgen.profiles import profile_text

ROOT = Path(__file__).resolve().parents[1]
SMOKE_GROUP = "smoke_run"  # the xdist group of the tests that use the smoke_run fixture


def make_grammar(**changes) -> Grammar:
    """The default DSL (x, y; 1, 2, 3; neg, abs; seven binary operators) on a small grid."""
    fields = dict(
        variables=("x", "y"),
        constants=(1, 2, 3),
        unary=("neg", "abs"),
        binary=("add", "sub", "mul", "div", "mod", "min", "max"),
        max_size=5,
        grid_low=-3,
        grid_high=3,
        value_bound=10**6,
    )
    fields.update(changes)
    return Grammar(**fields)


@pytest.fixture(scope="session")
def grammar() -> Grammar:
    return make_grammar()


@pytest.fixture(scope="session")
def universe(grammar):
    return enumerate_universe(grammar)


@pytest.fixture(scope="session")
def spaces_for():
    """The metric spaces of a universe, as the splits read them (small dims for speed)."""

    def build(universe):
        from synthgen.pqgram import universe_profiles
        from synthgen.spaces import SemanticSpace, SyntaxSpace
        from synthgen.splits import SplitInputs

        profiles = universe_profiles(universe, 2, 3)
        syntax = SyntaxSpace(2, 3, dims=8, fit_sample=None, random_state=0).fit_transform(profiles)
        semantics = SemanticSpace(dims=8, output_transform="asinh").fit_transform(universe)
        return SplitInputs(universe, syntax, semantics.astype(np.float32), profiles.counts)

    return build


def smoke_params(**sections) -> Params:
    """The smoke profile, with some sections' keys replaced: ``model={"width": 16}``."""
    raw = yaml.safe_load(profile_text(ROOT, "smoke"))
    for section, values in sections.items():
        raw[section].update(values)
    return validate_params(raw, source="smoke")


@pytest.fixture(scope="session")
def params() -> Params:
    """The smoke profile; its grammar is the ``grammar`` fixture's."""
    P = smoke_params()
    assert Grammar.from_params(P.grammar) == make_grammar()
    return P


@pytest.fixture(scope="session")
def valid_ids(universe) -> np.ndarray:
    """Ids of the universe's in-bound programs, the ones that have tasks."""
    return np.flatnonzero(universe.semantic_class >= 0)


def run_command(args: list[str], cwd: Path, check: bool = True, quiet: bool = False) -> subprocess.CompletedProcess:
    """``args`` in ``cwd``, with this interpreter's scripts (dvc, synthgen) first on PATH;
    ``quiet``: output not captured, for a command that leaves processes behind holding it
    (dvc queue start's workers)."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", DVC_NO_ANALYTICS="1")
    env.pop("SYNTHGEN_ROOT", None)
    out = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True) if quiet else dict(capture_output=True, text=True)
    proc = subprocess.run(args, cwd=cwd, env=env, **out)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({proc.returncode}):\n{(proc.stdout or '')[-3000:]}\n"
                             f"{(proc.stderr or '')[-3000:]}")
    return proc


def copy_repository(dest: Path) -> Path:
    """A fresh copy of the repository's files (tracked and new, not ignored) in ``dest``,
    without dvc.lock, reports/ and data.dvc (as a fresh reproduction starts), set to the
    smoke profile: nothing run yet."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split("\n")
    for rel in filter(None, files):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    for rel in ("dvc.lock", "reports", "data.dvc"):  # start from nothing, as a fresh reproduction would
        path = dest / rel
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    run_command(["git", "init", "-q"], dest)
    run_command([sys.executable, "-m", "synthgen.cli", "profile", "smoke"], dest)
    return dest


def copy_of_smoke_run(smoke_run: Path, dest: Path) -> Path:
    """A copy of the smoke run (files, DVC cache and lock, git history; not DVC's tmp/, its
    locks and queue) for a test that changes what it runs on: the session's run stays as
    every test expects it."""
    shutil.copytree(smoke_run, dest, symlinks=True, ignore=lambda d, names: ["tmp"] if d.endswith(".dvc") else [])
    return dest


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory) -> Path:
    """A temporary copy of the repository with the smoke profile on which ``dvc repro`` has
    completed (every stage run, once per session): ``reports/metrics/*.json`` are there.
    A test that changes the repository restores it, or works on ``copy_of_smoke_run``.
    Under xdist every test that uses it runs in one group (SMOKE_GROUP), on one worker."""
    repo = copy_repository(tmp_path_factory.mktemp("smoke_run") / "repo")
    run_command(["dvc", "repro"], repo)
    return repo


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Every test that uses ``smoke_run`` in the xdist group SMOKE_GROUP (``--dist
    loadgroup``): one worker builds the smoke pipeline once for all of them."""
    for item in items:
        if "smoke_run" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group(SMOKE_GROUP))
