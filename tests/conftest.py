"""Shared fixtures: the smoke grammar and its universe (enumerated once per session), the
smoke profile's params for the synthesizer's tests, and the smoke pipeline, run once per
session, under xdist once for all workers (``smoke_run``, ``smoke_copy``)."""

from __future__ import annotations

import os

# ``make test`` runs two pytest workers on two cores: each worker, and every process it
# starts (the smoke pipeline's stages), computes on one thread.  A second thread finds no
# free core, and torch's and BLAS's threads then spin waiting on each other: the smoke
# run's search stage took 16 times longer on two threads than on one.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

import pytest
import yaml
from filelock import FileLock

from synthgen.enumeration import enumerate_universe
from synthgen.fan_out import dvc_env
from synthgen.grammar import Grammar
from synthgen.params import Params, validate_params
from synthgen.profiles import profile_text

ROOT = Path(__file__).resolve().parents[1]


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
    env = dvc_env()
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


def _shared_folder(tmp_path_factory) -> Path:
    """The session's temporary folder, under xdist the one every worker shares."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # popen-gwN's parent


def _once(tmp_path_factory, name: str, build, others_yield: bool = False) -> Path:
    """``build(repo)`` once per test session, under xdist once for all workers: the first
    worker to need it builds it under a file lock in the folder the workers share, the
    others wait and read it. A failed build is recorded, so the others fail at once with
    its message instead of building again. ``others_yield``: while it builds, the other
    worker lowers its priority (``_yield_to_the_smoke_build``). Returns ``repo``."""
    base = _shared_folder(tmp_path_factory)
    folder = base / name
    repo, done, failed = folder / "repo", base / f"{name}.done", base / f"{name}.failed"
    with FileLock(str(base / f"{name}.lock")):
        if failed.exists():
            pytest.fail(f"{name} failed in another worker:\n{failed.read_text()}")
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            building = base / BUILDING if others_yield else None
            if building:
                building.write_text(str(os.getpid()))
            try:
                build(repo)
            except BaseException as err:
                failed.write_text(str(err)[-5000:])
                raise
            finally:
                if building:
                    building.unlink(missing_ok=True)
            done.touch()
    return repo


BUILDING = "smoke.building"  # in the shared folder while a worker builds: its pid
_yielded = False


@pytest.fixture(autouse=True)
def _yield_to_the_smoke_build(tmp_path_factory):
    """Under xdist, a worker that finds the other building the smoke run lowers its own
    priority (``nice``, for good: it cannot raise it again), and so do the processes it
    starts.  The build is the suite's longest chain, and its per-model stages run two at a
    time: beside a third busy process on two cores they would get two thirds of the CPU.
    Niced, this worker's tests take what the build leaves idle (its one-process data and
    aggregating stages); once it is done, nice no longer matters: two workers, two cores."""
    global _yielded
    if not _yielded and os.environ.get("PYTEST_XDIST_WORKER"):
        try:
            builder = int((_shared_folder(tmp_path_factory) / BUILDING).read_text())
        except (FileNotFoundError, ValueError):
            builder = None
        if builder is not None and builder != os.getpid():
            os.nice(10)
            _yielded = True
    yield


@pytest.fixture(scope="session")
def _smoke_splits(tmp_path_factory) -> Path:
    """A fresh copy of the repository with the smoke profile, its data stages run (``dvc
    repro splits``), once per session: what the smoke run starts from, and what the queue
    test needs (it starts while the per-model stages of the smoke run are training)."""
    def build(repo: Path) -> None:
        copy_repository(repo)
        run_command(["dvc", "repro", "splits"], repo)

    return _once(tmp_path_factory, "smoke_splits", build, others_yield=True)


@pytest.fixture(scope="session")
def _smoke_build(_smoke_splits, tmp_path_factory) -> Path:
    """The smoke run: ``dvc repro`` of the smoke profile, as ``make repro`` runs it (the
    per-model stages fanned out over two workspaces, synthgen.fan_out), in a copy of
    ``_smoke_splits``; once per session."""
    def build(repo: Path) -> None:
        copy_of_smoke_run(_smoke_splits, repo)
        run_command([sys.executable, "-m", "synthgen.fan_out", "--workers", "2"], repo)

    return _once(tmp_path_factory, "smoke_run", build, others_yield=True)


@pytest.fixture
def smoke_run(_smoke_build, tmp_path_factory) -> Path:
    """A repository with the smoke profile on which ``dvc repro`` has completed (every stage
    run, once per session): ``reports/metrics/*.json`` are there. Shared by every test
    that asks for it, one at a time (a lock held for the test): a test that changes it
    restores it before it returns. A test that changes it for good, or runs long on it,
    asks for ``smoke_copy`` instead."""
    with FileLock(str(_shared_folder(tmp_path_factory) / "smoke_run.use.lock")):
        yield _smoke_build


@pytest.fixture
def smoke_copy(_smoke_build, tmp_path, tmp_path_factory) -> Path:
    """A private copy of the session's smoke run (``copy_of_smoke_run``), for a test that
    changes what it runs on or runs long on it: other tests go on with the shared run."""
    with FileLock(str(_shared_folder(tmp_path_factory) / "smoke_run.use.lock")):
        return copy_of_smoke_run(_smoke_build, tmp_path / "smoke")


@pytest.fixture
def smoke_splits_copy(_smoke_splits, tmp_path) -> Path:
    """A private copy of the smoke profile's repository with its data stages run (and no
    model yet): for a test of the per-model stages alone."""
    return copy_of_smoke_run(_smoke_splits, tmp_path / "smoke")


def _seconds(item) -> float:
    """A test's rough cost for the order below: ``@pytest.mark.slow(seconds=N)``'s N (a
    scheduling hint, measured on two busy cores; 0 for a test without one)."""
    marker = item.get_closest_marker("slow")
    return float(marker.kwargs.get("seconds", 0)) if marker else 0.0


WAIT_FOR_SPLITS = 20  # seconds of slow tests to run while the smoke run's data stages finish


def needs_smoke_run(item) -> bool:
    """Whether a test asks, through any fixture, for the smoke run: every fixture of the smoke
    profile's pipeline runs its data stages first (``_smoke_splits``)."""
    return "_smoke_splits" in getattr(item, "fixturenames", ())


def pytest_itemcollected(item):
    """A test of the smoke run is slow, marked or not: ``make test-fast`` (``-m "not slow"``)
    never builds the run."""
    if needs_smoke_run(item) and not item.get_closest_marker("slow"):
        item.add_marker(pytest.mark.slow)


def pytest_collection_modifyitems(config, items):
    """Order for ``pytest -n 2 --dist worksteal`` (``make test``), which sends the first
    worker the first half of the list and the second worker the rest, and lets an idle
    worker take the back half of the other's queue:

    1. one test of the smoke run: its worker builds the run, the suite's longest step;
    2. the other tests of the smoke run, ready once it is built;
    3. the fast tests (some 400; the halves meet among them);
    4. slow unit tests, about ``WAIT_FOR_SPLITS`` seconds of them: the second worker has
       run its fast tests before the first has run the smoke run's data stages;
    5. the tests that need only those data stages (the queue and calibration tests),
       which run beside the smoke run's per-model stages;
    6. the other slow unit tests, the longest first.

    The second worker reaches step 6 about when the first has built the smoke run; the
    first then runs the smoke run's tests and takes the back of the second's queue, so the
    two meet among the shortest slow tests, and neither waits for the other at the end
    behind a long one (a 20-second test there is 20 seconds of one idle core). In a
    profiled run the cores were idle for 13 core-seconds between the first test and the
    last (docs/performance.md, Test suite time)."""
    built = [item for item in items if "_smoke_build" in getattr(item, "fixturenames", ())]
    on_splits = [item for item in items if needs_smoke_run(item) and item not in built]
    smoke = built + on_splits
    slow = [item for item in items if item.get_closest_marker("slow") and item not in smoke]
    fast = [item for item in items if item not in smoke and item not in slow]
    slow.sort(key=lambda item: -_seconds(item))  # stable
    during_splits, seconds = [], 0.0
    for item in slow:
        if seconds + _seconds(item) <= WAIT_FOR_SPLITS:
            during_splits.append(item)
            seconds += _seconds(item)
    after = [item for item in slow if item not in during_splits]
    built[1:] = sorted(built[1:], key=lambda item: -_seconds(item))
    items[:] = built + fast + during_splits + on_splits + after
