"""Peak memory and wall time of the `paper` profile's data stages on this machine.

The paper profile (max_size 8: 20,558,175 programs) is meant to run its enumeration,
spaces and splits on a laptop and its training on a GPU.  This script checks the first
part: it copies the repository to a temporary folder, switches it to the paper profile,
and runs the stages `grammar`, `enumeration`, `spaces` and `splits` one at a time, each in
a fresh process, printing one row per stage: wall time and the peak resident memory of
the largest process the stage ran (its notebook kernel), with the default profile's
figures for the same stages beside it as the baseline, measured in the same run.

    python benchmarks/paper_profile.py [--keep DIR] [--skip-default] [--from STAGE] [--until STAGE]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("grammar", "enumeration", "spaces", "splits")

# Run in a child: the stage, then the peak RSS of its largest descendant (Linux: KiB).
_MEASURE = (
    "import resource, subprocess, sys; "
    "rc = subprocess.run(sys.argv[1:]).returncode; "
    "print('PEAK_KIB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, rc, file=sys.stderr)"
)


def copy_repo(dest: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split("\n")
    for rel in filter(None, files):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    for rel in ("dvc.lock", "reports", "data.dvc"):
        path = dest / rel
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)


def run_stage(repo: Path, stage: str) -> tuple[float, float]:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", DVC_NO_ANALYTICS="1")
    env.pop("SYNTHGEN_ROOT", None)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _MEASURE, "dvc", "repro", "--single-item", stage], cwd=repo, env=env,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - start
    line = [ln for ln in proc.stderr.splitlines() if ln.startswith("PEAK_KIB")][-1].split()
    if int(line[2]) != 0:
        sys.exit(f"stage {stage} failed after {seconds:.0f} s at a peak of {int(line[1]) / 2**20:.2f} GB:\n"
                 f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return seconds, int(line[1]) / 2**20


def measure(profile: str, keep: Path | None, stages=STAGES) -> dict[str, tuple[float, float]]:
    base = keep or Path(tempfile.mkdtemp(prefix=f"synthgen-{profile}-"))
    repo = base / profile
    repo.mkdir(parents=True, exist_ok=True)
    copy_repo(repo)
    subprocess.run([sys.executable, "-m", "synthgen.cli", "profile", profile], cwd=repo, check=True, capture_output=True)
    out = {}
    for stage in stages:
        print(f"{profile}: {stage} ...", flush=True)
        out[stage] = run_stage(repo, stage)
        print(f"{profile}: {stage} took {out[stage][0]:.1f} s, peak {out[stage][1]:.2f} GB", flush=True)
    if keep is None:
        shutil.rmtree(base, ignore_errors=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", type=Path, default=None, help="run in DIR and keep the outputs")
    parser.add_argument("--skip-default", action="store_true", help="do not measure the default profile's baseline")
    parser.add_argument("--until", choices=STAGES, default=STAGES[-1], help="stop after this stage")
    parser.add_argument("--from", dest="start", choices=STAGES, default=STAGES[0],
                        help="start at this stage, reusing the outputs of the earlier ones in --keep DIR")
    args = parser.parse_args()
    if args.start != STAGES[0] and args.keep is None:
        parser.error("--from needs --keep DIR holding the outputs of the earlier stages")
    stages = STAGES[STAGES.index(args.start) : STAGES.index(args.until) + 1]
    default = None if args.skip_default else measure("default", args.keep, stages)
    paper = measure("paper", args.keep, stages)
    print()
    header = f"{'stage':<12} {'paper s':>9} {'paper peak GB':>14}"
    if default:
        header += f" {'default s':>10} {'default peak GB':>16} {'memory ratio':>13}"
    print(header)
    print("-" * len(header))
    for stage in stages:
        s, gb = paper[stage]
        row = f"{stage:<12} {s:>9.1f} {gb:>14.2f}"
        if default:
            ds, dgb = default[stage]
            row += f" {ds:>10.1f} {dgb:>16.2f} {gb / dgb:>12.1f}x"
        print(row)
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    print(f"\nmachine memory: {total:.1f} GB; peak = the largest process of the stage (its notebook kernel)")


if __name__ == "__main__":
    main()
