"""``dvc repro`` with the per-model stages run by several workspaces at once:
``python -m synthgen.fan_out --workers 2`` (what ``make repro`` runs; docs/performance.md).

The study's models are small: on two cores, two trainings of one thread each train 1.3
times the tasks per second of one training on two threads (``benchmarks/fan_out.py``). DVC runs one stage at a time, so this
module fans the per-model stages out:

1. ``dvc repro splits`` here: the data stages every per-model stage reads;
2. ``workers`` workspaces (copies of this one under ``.dvc/tmp/fan_out/``, sharing its DVC
   cache, each with ``training.threads`` divided among them) take the per-model units from
   one list, the longest first: an ``evaluate@`` stage (with the ``train@`` stage it reads)
   or a ``scaling_run@`` stage, a few at a time by ``dvc repro``;
3. the workers' ``dvc.lock`` entries of the stages they ran are copied into this one, and
   ``dvc checkout`` gives this workspace their outputs from the shared cache
   (:func:`adopt_runs`; their deps and params are the same files);
4. ``dvc repro`` here: the per-model stages are up to date, and the aggregating stages run
   as usual. A stage no worker's lock gave back is restored from DVC's run-cache, or run.
   Before it, the per-model stages whose ``dvc.lock`` entry names outputs that are not in
   the cache lose that entry (:func:`forget_uncached`): DVC trusts a lock entry whose deps
   match and never asks the run-cache, so in a fresh clone (the committed lock, an empty
   cache; an executed notebook's bytes differ per run) it would run such a model again
   here, one at a time.

The outputs are what a plain ``dvc repro`` with ``training.threads`` set to the workers'
share gives: the threads are a run setting, not a param of any stage
(``synthgen.training.RUN_SETTINGS``). A worker's checkpoints stay in its workspace, so a
killed fan-out resumes its runs where they stopped, as ``dvc repro`` does.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from ruamel.yaml import YAML

from synthgen.atomic import atomic_path
from synthgen.params import ParamsError, load_params
from synthgen.paths import repo_root

# the per-model units, in the order they are taken: an evaluate stage pulls its train stage
UNIT_PREFIXES = ("evaluate@", "scaling_run@")
# every stage a worker runs
PER_MODEL = ("train@", *UNIT_PREFIXES)
# what a workspace does not copy: the shared cache, DVC's scratch, git, environments
SKIP = {".git", ".venv", ".dvc/cache", ".dvc/tmp", ".ipynb_checkpoints", "__pycache__", ".pytest_cache"}
# read-only inputs of the per-model stages, hard-linked rather than copied
LINKED = ("artifacts",)
# a worker's own partial runs, kept when its workspace is renewed (a killed run resumes)
KEPT = ("artifacts/checkpoints", "artifacts/scaling/runs")


def dvc_env() -> dict:
    """The environment to run ``dvc`` in: this interpreter's scripts (dvc, synthgen) first
    on PATH, no analytics, SYNTHGEN_ROOT unset (so that each workspace's stages write into
    that workspace)."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
               DVC_NO_ANALYTICS="1")
    env.pop("SYNTHGEN_ROOT", None)
    return env


def _dvc(args: list[str], cwd: Path, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["dvc", *args], cwd=cwd, env=dvc_env(), text=True, **kw)


def stage_names(root: Path) -> list[str]:
    """Every stage of ``root``'s pipeline, in dvc.yaml's order (matrix stages expanded)."""
    return _dvc(["stage", "list", "--name-only"], root, capture_output=True, check=True).stdout.split()


def units(root: Path, listed: list[str] | None = None) -> list[str]:
    """The per-model stages a worker takes, longest first: every ``evaluate@`` stage (its
    training comes with it), then every ``scaling_run@`` stage, largest size first.
    ``listed``: :func:`stage_names`, when the caller has it."""
    listed = stage_names(root) if listed is None else listed
    evaluate = [s for s in listed if s.startswith(UNIT_PREFIXES[0])]
    scaling = [s for s in listed if s.startswith(UNIT_PREFIXES[1])]
    sizes = list(load_params(root / "params.yaml").scaling.sizes)  # smallest first, as params.yaml lists them
    scaling.sort(key=lambda stage: -sizes.index(stage.split("@")[1].split("-")[0]))
    return evaluate + scaling


def _skipped(rel: str) -> bool:
    """``rel`` (a folder, relative to the root) is one of SKIP, or named like one anywhere."""
    return rel in SKIP or os.path.basename(rel) in SKIP


def cache_dir(root: Path) -> str:
    """The DVC cache that ``root`` uses, as ``dvc cache dir`` resolves it: ``.dvc/cache`` unless
    a config (``cache.dir``, e.g. a cache shared by several clones) names another."""
    return _dvc(["cache", "dir"], root, check=True, capture_output=True).stdout.strip()


def _configure(workspace: Path, cache: str) -> None:
    """What ``dvc config --local core.no_scm true`` and ``dvc cache dir --local`` write, written
    with the library DVC edits its config files with (configobj), in this process: each
    ``dvc`` command would start DVC (1 to 2 s of CPU). Keeps what the copy's
    ``.dvc/config.local`` (root's) holds besides."""
    from configobj import ConfigObj

    conf = ConfigObj(str(workspace / ".dvc" / "config.local"))
    conf.setdefault("core", {})["no_scm"] = "true"
    conf.setdefault("cache", {})["dir"] = str(Path(cache).resolve())
    with atomic_path(workspace / ".dvc" / "config.local") as tmp:
        conf.filename = str(tmp)
        conf.write()


def make_workspace(root: Path, dest: Path, threads: int, cache: str | None = None) -> Path:
    """``dest`` as a copy of the workspace ``root`` (files copied, ``artifacts/`` hard-linked)
    that uses ``root``'s DVC cache (``cache``: :func:`cache_dir` of ``root``, when the caller
    has it), without git, with ``training.threads`` = ``threads``.
    A workspace there before is renewed, its partial runs (KEPT) kept."""
    kept = {}
    if dest.exists():
        for rel in KEPT:
            if (dest / rel).is_dir():
                aside = dest.parent / f".{dest.name}.{rel.replace('/', '_')}"
                shutil.rmtree(aside, ignore_errors=True)
                os.replace(dest / rel, aside)
                kept[rel] = aside
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for folder, dirs, files in os.walk(root):
        rel_folder = os.path.relpath(folder, root)
        rel_folder = "" if rel_folder == "." else rel_folder
        dirs[:] = [d for d in dirs if not _skipped(os.path.join(rel_folder, d))
                   and Path(folder, d).resolve() != dest.resolve()]  # never into the copy itself
        (dest / rel_folder).mkdir(parents=True, exist_ok=True)
        linked = rel_folder.split(os.sep)[0] in LINKED
        for name in files:
            src, dst = os.path.join(folder, name), dest / rel_folder / name
            if os.path.islink(src):
                os.symlink(os.readlink(src), dst)
            elif linked:
                try:
                    os.link(src, dst)
                except OSError:  # another file system: copy
                    shutil.copy2(src, dst)
            else:
                shutil.copy2(src, dst)
    for rel, aside in kept.items():
        shutil.rmtree(dest / rel, ignore_errors=True)
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        os.replace(aside, dest / rel)
    _configure(dest, cache or cache_dir(root))
    yaml = YAML()
    params = yaml.load(dest / "params.yaml")
    params["training"]["threads"] = threads
    with open(dest / "params.yaml", "w") as fh:
        yaml.dump(params, fh)
    return dest


def _cached(cache: Path, md5: str) -> bool:
    """The object ``md5`` (a ``.dir`` manifest with every file it lists) is in ``cache``."""
    path = cache / "files" / "md5" / md5[:2] / md5[2:]
    if not path.is_file():
        return False
    if md5.endswith(".dir"):
        return all(_cached(cache, entry["md5"]) for entry in json.loads(path.read_text()))
    return True


def _read_lock(root: Path):
    """``root``'s ``dvc.lock``, round-trip (DVC's own format when written back), or None."""
    path = root / "dvc.lock"
    return YAML().load(path) if path.is_file() else None


def _write_lock(root: Path, lock) -> None:
    with atomic_path(root / "dvc.lock") as tmp, open(tmp, "w") as fh:
        YAML().dump(lock, fh)


def forget_uncached(root: Path, cache: str | None = None) -> list[str]:
    """Drop from ``root``'s ``dvc.lock`` each per-model stage (``train@``, ``evaluate@``,
    ``scaling_run@``) that records an output the DVC cache lacks and whose output is not in
    the workspace either; return their names. Such an entry can give nothing back, and
    while it stands ``dvc repro`` runs the stage rather than restore it from the run-cache.
    Without the entry, DVC restores the stage from the run-cache when a worker ran it with
    the same deps and params, and runs it otherwise: the outputs are the same either way.
    ``cache``: :func:`cache_dir` of ``root``, when the caller has it."""
    lock = _read_lock(root)
    stages = lock.get("stages", {}) if lock else {}
    if not any(name.startswith(PER_MODEL) for name in stages):
        return []
    cache_path = Path(cache or cache_dir(root))
    dropped = []
    for name in list(stages):
        if not name.startswith(PER_MODEL):
            continue
        outs = stages[name].get("outs", [])
        if any(not (root / out["path"]).exists() and not _cached(cache_path, str(out.get("md5", ""))) for out in outs):
            del stages[name]
            dropped.append(name)
    if dropped:
        _write_lock(root, lock)
    return dropped


def adopt_runs(root: Path, workspaces: list[Path], order: list[str], cache: str | None = None) -> list[str]:
    """Copy into ``root``'s ``dvc.lock`` each per-model entry that a workspace's lock holds
    and ``root``'s does not (or holds otherwise, or holds without the outputs here: a
    deterministic output in a fresh clone of a committed lock), when every output it names
    is in the DVC cache; then ``dvc checkout`` those stages here. Returns their names, in
    ``order`` (:func:`stage_names`), the order in which new entries are appended.

    A workspace starts from a copy of ``root``'s lock (:func:`make_workspace`), so an entry
    that differs was written by its worker in this fan-out, from deps and params that are
    the same files as ``root``'s. Without this, the last ``dvc repro`` restores each such
    stage from the run-cache, and DVC parses and rewrites the whole lock after every one
    (28 s for the smoke run's 36 stages on the Intel machine). An entry that two workspaces
    wrote differently is left out (the run-cache decides). ``cache``: :func:`cache_dir` of
    ``root``, when the caller has it."""
    lock = _read_lock(root) or YAML().load("schema: '2.0'\nstages: {}\n")
    stages = lock.setdefault("stages", {})
    found: dict = {}
    clashing: set[str] = set()
    for workspace in workspaces:
        theirs = _read_lock(workspace)
        for name, entry in ((theirs or {}).get("stages") or {}).items():
            if not name.startswith(PER_MODEL):
                continue
            if stages.get(name) == entry and all((root / out["path"]).exists() for out in entry.get("outs", [])):
                continue  # here already, outputs and all
            if name in found and found[name] != entry:
                clashing.add(name)
            found[name] = entry
    if not found:
        return []
    cache_path = Path(cache or cache_dir(root))
    rank = {name: i for i, name in enumerate(order)}
    adopted = sorted((name for name in found if name not in clashing
                      and all(_cached(cache_path, str(out.get("md5", ""))) for out in found[name].get("outs", []))),
                     key=lambda name: (rank.get(name, len(rank)), name))
    if not adopted:
        return []
    for name in adopted:
        stages[name] = found[name]
    _write_lock(root, lock)
    _dvc(["checkout", "--quiet", *adopted], root, check=True)
    return adopted


def _take(todo: list[str], workers: int, lock: threading.Lock) -> list[str]:
    """The next units for a worker: guided self-scheduling, a 1/(2 x workers) share of what
    is left (at least one), so that each ``dvc repro`` call (about 2 s of start-up) carries
    several units early on and single units balance the workers at the end."""
    with lock:
        n = min(len(todo), max(1, -(-len(todo) // (2 * workers))))
        taken, todo[:n] = todo[:n], []
        return taken


def _worker(name: str, workspace: Path, todo: list[str], workers: int, log, failures: list,
            lock: threading.Lock) -> None:
    """Take units until none is left; each ``dvc repro`` call's output goes to ``log`` as it
    comes, and each stage it starts or restores is printed (a call may run for an hour)."""
    while taken := _take(todo, workers, lock):
        start = time.monotonic()
        with lock:
            print(f"[{name}] {', '.join(taken)} ...", flush=True)
            log.write(f"==> [{name}] dvc repro {' '.join(taken)}\n")
        proc = subprocess.Popen(["dvc", "repro", *taken], cwd=workspace, env=dvc_env(), text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        tail: list[str] = []
        ran = 0
        for line in proc.stdout:
            tail = (tail + [line])[-60:]
            with lock:
                log.write(line)
                log.flush()
                if line.startswith("Running stage"):
                    ran += 1
                    print(f"[{name}] {time.strftime('%H:%M:%S')} {line.strip()}", flush=True)
        proc.wait()
        with lock:
            state = "failed" if proc.returncode else (f"ran {ran} stage{'s' * (ran != 1)}" if ran else "up to date")
            print(f"[{name}] {len(taken)} unit{'s' * (len(taken) != 1)}: {state} ({time.monotonic() - start:.0f} s)",
                  flush=True)
            if proc.returncode:
                failures.append((" ".join(taken), "".join(tail)[-3000:]))


def run(root: Path | None = None, workers: int = 2) -> None:
    """The whole pipeline, its per-model stages on ``workers`` workspaces (1: plain
    ``dvc repro``). Raises RuntimeError naming the stages that failed."""
    root = Path(root or repo_root()).resolve()
    P = load_params(root / "params.yaml")
    if workers < 1:
        raise ParamsError(f"--workers {workers}: must be at least 1")
    if workers > 1:
        _dvc(["repro", "splits"], root, check=True)
        listed = stage_names(root)
        todo = units(root, listed)
        threads = max(1, P.training.threads // workers)
        base = root / ".dvc" / "tmp" / "fan_out"
        print(f"synthgen: {len(todo)} per-model units on {workers} workspaces of {threads} thread"
              f"{'s' * (threads != 1)} each ({base.relative_to(root)}/)", flush=True)
        cache = cache_dir(root)  # one DVC start, shared by every step below
        spaces = [make_workspace(root, base / f"w{i}", threads, cache) for i in range(workers)]
        failures: list = []
        lock = threading.Lock()
        with open(base / "log.txt", "w") as log:
            pool = [threading.Thread(target=_worker, args=(f"w{i}", ws, todo, workers, log, failures, lock))
                    for i, ws in enumerate(spaces)]
            for t in pool:
                t.start()
            for t in pool:
                t.join()
        if failures:
            unit, tail = failures[0]
            raise RuntimeError(f"{len(failures)} per-model unit(s) failed, the first {unit} "
                               f"(all output: {(base / 'log.txt').relative_to(root)}):\n{tail}")
        if adopted := adopt_runs(root, spaces, listed, cache):
            print(f"synthgen: {len(adopted)} per-model stages taken from the workspaces' dvc.lock, "
                  f"their outputs checked out from the cache", flush=True)
        if dropped := forget_uncached(root, cache):
            print(f"synthgen: {len(dropped)} per-model stages' dvc.lock entries name outputs the cache "
                  f"lacks: dropped, so that dvc repro restores them from the run-cache", flush=True)
    _dvc(["repro"], root, check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m synthgen.fan_out", description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2, help="workspaces running per-model stages (1: dvc repro)")
    args = parser.parse_args(argv)
    try:
        run(workers=args.workers)
    except (ParamsError, RuntimeError) as err:
        print(f"synthgen: {err}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as err:
        print(f"synthgen: {' '.join(err.cmd)} failed ({err.returncode})", file=sys.stderr)
        return err.returncode or 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
