"""`make test` from a fresh clone, a baseline commit against this one, in the same run.

    python benchmarks/test_suite.py --baseline 1dba7d2 [--rev HEAD] [--out rows.json]

Each row clones the repository at its commit into a temporary folder and times, one after
the other (nothing else should run), the bootstrap (`make setup`: `.venv`, the install,
the kernel) and then `make test` (pytest; the bootstrap is done by then). Every cache a
fresh machine lacks points at an empty folder of its own: pip's and uv's downloads,
matplotlib's font cache, torch inductor's compiled kernels, and the temporary folder
(``TMPDIR``: inductor keeps its precompiled C++ header there, whatever
``TORCHINDUCTOR_CACHE_DIR`` says, and it takes 4 CPU-seconds to build); so each row starts
as CI does. Prints the table (and the ratio of each column to the baseline), and writes it as
JSON with --out.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHES = ("PIP_CACHE_DIR", "UV_CACHE_DIR", "MPLCONFIGDIR", "TORCHINDUCTOR_CACHE_DIR", "TMPDIR")


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def _timed(args: list[str], cwd: Path, env: dict, log: Path) -> tuple[float, int]:
    start = time.monotonic()
    with log.open("a") as fh:
        proc = subprocess.run(args, cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT)
    return time.monotonic() - start, proc.returncode


def fresh_clone(rev: str, folder: Path) -> tuple[Path, str, dict]:
    """A clone of this repository at ``rev`` in ``folder/repo``, its short commit, and the
    environment a new machine would give it: every cache in CACHES an empty folder of its
    own, no virtual environment on PATH."""
    repo = folder / "repo"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(repo)], check=True)
    subprocess.run(["git", "checkout", "-q", rev], cwd=repo, check=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True,
                            check=True).stdout.strip()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTEST"))}
    for name in CACHES:
        (folder / name.lower()).mkdir()
        env[name] = str(folder / name.lower())
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p)
    return repo, commit, env


def one_row(rev: str, folder: Path) -> dict:
    """Clone at ``rev``, then time ``make setup`` and ``make test`` with empty caches."""
    repo, commit, env = fresh_clone(rev, folder)
    log = folder / "log.txt"
    print(f"[{rev} = {commit}] make setup ...", flush=True)
    setup_s, rc = _timed(["make", "setup"], repo, env, log)
    if rc:
        raise SystemExit(f"{rev}: make setup failed ({rc}); see {log}")
    print(f"[{rev} = {commit}] make test ...", flush=True)
    test_s, rc = _timed(["make", "test"], repo, env, log)
    tail = log.read_text()[-3000:]
    summary = next((line.strip("= ") for line in reversed(tail.splitlines()) if re.search(r"\d+ passed", line)), "")
    return {"rev": rev, "commit": commit, "setup_s": setup_s, "test_s": test_s, "total_s": setup_s + test_s,
            "exit": rc, "summary": summary}


def _clock(seconds: float) -> str:
    return f"{int(seconds // 60)} min {seconds % 60:4.1f} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", required=True, help="the commit to compare with (e.g. 1dba7d2)")
    parser.add_argument("--rev", default="HEAD", help="the commit measured (default HEAD)")
    parser.add_argument("--out", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    rows = []
    for rev in (args.baseline, args.rev):
        with tempfile.TemporaryDirectory(prefix="synthgen-test-suite-") as tmp:
            rows.append(one_row(rev, Path(tmp)))
    base = rows[0]
    print(f"\n`make test` from a fresh clone, empty caches; {cpu_model()}, {os.cpu_count()} cores, "
          f"{time.strftime('%Y-%m-%d')}")
    print(f"| commit | bootstrap | pytest | make test | ratio to {base['commit']} | exit | tests |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for r in rows:
        print(f"| {r['commit']} | {_clock(r['setup_s'])} | {_clock(r['test_s'])} | {_clock(r['total_s'])} | "
              f"{r['total_s'] / base['total_s']:.2f}x | {r['exit']} | {r['summary']} |")
    if args.out:
        args.out.write_text(json.dumps({"cpu": cpu_model(), "rows": rows}, indent=2))
    return max(r["exit"] for r in rows)


if __name__ == "__main__":
    sys.exit(main())
