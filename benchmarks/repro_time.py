"""One uninterrupted `make repro` from a fresh clone, timed against the 4-hour budget.

    python benchmarks/repro_time.py [--rev HEAD] [--profile smoke] [--out reports/repro_time]

Clones the repository at its commit into a temporary folder, with every cache a new machine
lacks empty (as benchmarks/test_suite.py does), and runs `make repro` there once; nothing
else should run meanwhile. Each line of its output is echoed with the time since the start,
so the run shows its progress. Then it prints:

- the parts of the run (the bootstrap, the data stages, the per-model units on their
  workspaces, the aggregating stages, the release), each with its wall time, and the total
  against the budget (``--budget-hours``) as a ratio;
- the per-model stages by kind (train, evaluate, scaling_run): how many, and the wall time
  of one on its worker (median and range);
- whether the run made the committed study: the outputs in its dvc.lock whose hashes equal
  those of the committed dvc.lock (executed notebooks aside: they hold timings). On the CPU
  the committed run used, every one should.

With --out, the stamped log (log.txt), the table (timing.md), its figures (timing.json) and
the run's own metrics (metrics/: on another CPU, another draw of the study to compare with
the committed reports/metrics) are written there.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_suite import cpu_model, fresh_clone  # noqa: E402

WORKER = re.compile(r"^\[(w\d+)\] ")
STAGE_START = re.compile(r"^\[(w\d+)\] \d\d:\d\d:\d\d Running stage '([^'@]+)@")
UNITS_DONE = re.compile(r"^\[(w\d+)\] \d+ units?: ")
PARTS = ("bootstrap", "data stages", "per-model units", "aggregating stages", "release")


def run_stamped(args: list[str], cwd: Path, env: dict, log: Path) -> tuple[list[tuple[float, str]], int, float]:
    """Run ``args``, echo and log each line of its output with the seconds since the start;
    the lines as (seconds, text), the exit status, and the wall time."""
    start = time.monotonic()
    lines = []
    with log.open("w") as fh, subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                               stderr=subprocess.STDOUT, text=True, bufsize=1) as proc:
        for text in proc.stdout:
            t = time.monotonic() - start
            text = text.rstrip("\n")
            lines.append((t, text))
            stamped = f"{_clock(t)}  {text}"
            fh.write(stamped + "\n")
            print(stamped, flush=True)
    return lines, proc.returncode, time.monotonic() - start


def parts(lines: list[tuple[float, str]], total: float) -> dict[str, float]:
    """Wall seconds of each part of ``make repro``, read from its stamped output: the
    bootstrap ends at "environment ready"; the data stages run until the fan-out's first
    worker line ``[wN]``; the units until its last; the aggregating stages until the release
    starts (``synthgen.release build``), and the release until the end."""
    def first(pred, default):
        return next((t for t, text in lines if pred(text)), default)

    boot = first(lambda s: "synthgen: environment ready" in s, 0.0)
    worker_times = [t for t, text in lines if WORKER.match(text)]
    release = first(lambda s: "synthgen.release build" in s, total)
    units_start = worker_times[0] if worker_times else release
    units_end = worker_times[-1] if worker_times else release
    bounds = [0.0, boot, units_start, units_end, release, total]
    return {name: bounds[i + 1] - bounds[i] for i, name in enumerate(PARTS)}


def stage_times(lines: list[tuple[float, str]]) -> dict[str, list[float]]:
    """Wall seconds of each per-model stage on its worker, by kind (``train``, ...): from its
    "Running stage" line to the worker's next stage or the end of its batch of units."""
    out: dict[str, list[float]] = {}
    running: dict[str, tuple[str, float]] = {}
    for t, text in lines:
        m = STAGE_START.match(text) or UNITS_DONE.match(text)
        if not m:
            continue
        worker = m.group(1)
        if worker in running:
            kind, began = running.pop(worker)
            out.setdefault(kind, []).append(t - began)
        if m.re is STAGE_START:
            running[worker] = (m.group(2), t)
    return out


def lock_outputs(lock: dict) -> dict[str, str]:
    """Every stage's outputs in a dvc.lock (executed notebooks aside: they hold timings), as
    "stage: path" and its hash."""
    return {f"{stage}: {o['path']}": o.get("md5", "")
            for stage, entry in lock.get("stages", {}).items() for o in entry.get("outs", [])
            if not o["path"].startswith("reports/notebooks")}


def compare_locks(run: dict, committed: dict) -> dict:
    """The outputs (executed notebooks aside) in both locks: how many have the same hash, and
    which differ or are in one lock only."""
    a, b = lock_outputs(run), lock_outputs(committed)
    both = sorted(set(a) & set(b))
    return {"same": sum(a[k] == b[k] for k in both), "compared": len(both),
            "differ": [k for k in both if a[k] != b[k]], "only_in_run": sorted(set(a) - set(b)),
            "only_committed": sorted(set(b) - set(a))}


def _clock(seconds: float) -> str:
    h, rest = divmod(int(round(seconds)), 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}"


def table(record: dict) -> str:
    budget = record["budget_hours"] * 3600
    rows = [f"`make repro` from a fresh clone of {record['commit']}, empty caches, one uninterrupted run: "
            f"{record['cpu']}, {record['cores']} cores, started {record['date']}, exit status {record['exit']}",
            "", "| part | wall time | share |", "|---|---:|---:|"]
    for name, seconds in record["parts"].items():
        rows.append(f"| {name} | {_clock(seconds)} | {seconds / record['wall_s']:.0%} |")
    rows.append(f"| **total** | **{_clock(record['wall_s'])}** | {record['wall_s'] / budget:.2f}x the "
                f"{record['budget_hours']:g}-hour budget |")
    rows += ["", f"CPU time {record['cpu_s'] / 3600:.2f} h ({record['cpu_s'] / record['wall_s']:.0%} of one core), "
                 f"largest process {record['peak_rss_gb']:.1f} GB.", "",
             "| per-model stage | count | wall time on its worker: median | range |", "|---|---:|---:|---:|"]
    for kind, times in sorted(record["stages"].items()):
        rows.append(f"| {kind} | {len(times)} | {_clock(statistics.median(times))} | "
                    f"{_clock(min(times))} – {_clock(max(times))} |")
    lock = record["lock"]
    if lock is None:
        return "\n".join(rows)
    rows += ["", f"The run's outputs against the committed dvc.lock (executed notebooks aside): {lock['same']} of "
                 f"{lock['compared']} have the committed hash"
                 + (f"; differ: {', '.join(lock['differ'][:8])}{' ...' if len(lock['differ']) > 8 else ''}"
                    if lock["differ"] else "") + "."]
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rev", default="HEAD", help="the commit run (default HEAD)")
    parser.add_argument("--profile", help="switch to this profile first (make repro PROFILE=...); default: the commit's params.yaml")
    parser.add_argument("--jobs", type=int, default=2, help="make repro's JOBS (default 2)")
    parser.add_argument("--budget-hours", type=float, default=4.0, help="the budget the total is compared with (default 4)")
    parser.add_argument("--out", type=Path, help="write log.txt, timing.md and timing.json here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="synthgen-repro-time-") as tmp:
        repo, commit, env = fresh_clone(args.rev, Path(tmp))
        committed = yaml.safe_load((repo / "dvc.lock").read_text())
        log = Path(tmp) / "log.txt"
        command = ["make", "repro", f"JOBS={args.jobs}"] + ([f"PROFILE={args.profile}"] if args.profile else [])
        print(f"[{args.rev} = {commit}] {' '.join(command)} in {repo}", flush=True)
        started = time.strftime("%Y-%m-%d %H:%M %Z")
        lines, rc, wall = run_stamped(command, repo, env, log)
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        run_lock = yaml.safe_load((repo / "dvc.lock").read_text()) if (repo / "dvc.lock").exists() else {}
        record = {"rev": args.rev, "commit": commit, "profile": args.profile or "the commit's params.yaml",
                  "cpu": cpu_model(), "cores": os.cpu_count(), "date": started,
                  "exit": rc, "wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime,
                  "peak_rss_gb": usage.ru_maxrss / 2**20, "budget_hours": args.budget_hours,
                  "parts": parts(lines, wall), "stages": stage_times(lines),
                  # another profile's outputs have no committed hashes to compare with
                  "lock": None if args.profile else compare_locks(run_lock, committed)}
        text = table(record)
        print("\n" + text)
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
            # the clone's temporary paths are this machine's, not the record's: the clone, and
            # the folder holding it and its empty caches and TMPDIR (fresh_clone)
            text_log = log.read_text().replace(str(repo), "<clone>").replace(str(repo.parent), "<clone>/..")
            (args.out / "log.txt").write_text(text_log)
            (args.out / "timing.md").write_text(text + "\n")
            (args.out / "timing.json").write_text(json.dumps(record, indent=2) + "\n")
            if (repo / "reports/metrics").is_dir():
                shutil.copytree(repo / "reports/metrics", args.out / "metrics", dirs_exist_ok=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
