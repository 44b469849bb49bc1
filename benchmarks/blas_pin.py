"""Do the data stages give the same bytes on another CPU once the floating-point kernels are
pinned? A check to run on each kind of machine, not part of `make repro`.

    python benchmarks/blas_pin.py [--pin] [--rev HEAD] [--out FILE.json] [--against REF.json ...]
                                 [--env KEY=VALUE ...] [--keep DIR]

The data stages (grammar, enumeration, spaces, splits) are functions of params.yaml and of
the floating-point kernels they run on: OpenBLAS's kernel set, which numpy and SciPy pick
for the CPU they load on (``Haswell`` on an AVX2 CPU, ``SkylakeX`` on an AVX-512 one), numpy's
own SIMD code paths, and the number of threads (OpenBLAS and OpenMP use every core unless
told otherwise; OpenBLAS never more threads than cores, whatever it is asked). The
committed dvc.lock holds the bytes of an Intel Xeon (AVX-512) on two cores; an AMD EPYC (Zen
3, AVX2) gives others, and so does the same AMD on one thread (docs/results.md, "What
reproduces, and how exactly").

This clones the repository at ``--rev`` into a temporary folder (``--keep``: that folder's
``repo/``) and runs ``dvc repro splits`` there with this checkout's .venv, alone (about 10
minutes on two cores), with ``--env`` added to the stages' environment (a thread count:
``--env OPENBLAS_NUM_THREADS=2 --env OMP_NUM_THREADS=2``). With ``--pin`` it runs them on
the kernels every x86-64 CPU since 2013 has: ``OPENBLAS_CORETYPE=Haswell`` (numpy's and
SciPy's OpenBLAS) and numpy's AVX-512 code paths switched off (``NPY_DISABLE_CPU_FEATURES``;
on a CPU without them this changes nothing). Then it prints, for each output of the data
stages (executed notebooks aside: they hold timings), whether its hash equals the committed
dvc.lock's and each ``--against`` file's (the ``--out`` of a run on another machine). Where a
pinned run on an AVX-512 CPU equals a pinned run on an AVX2 CPU with as many threads in every
output, pinning the kernels and the thread count makes the data stages, and the released
benchmark, the same bytes on both.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from repro_time import lock_outputs  # noqa: E402
from test_suite import cpu_model, fresh_clone  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA_STAGES = ("grammar", "enumeration", "spaces", "splits")
PIN = {"OPENBLAS_CORETYPE": "Haswell", "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR"}
PROBE = ("import json, numpy; from numpy._core._multiarray_umath import __cpu_features__ as f, __cpu_dispatch__ as d; "
         "from synthgen.release import blas_kernels; import scipy.linalg, sklearn.cluster; "
         "from threadpoolctl import threadpool_info as t; "  # blas_kernels names BLAS's threads; OpenMP's here
         "print(json.dumps({'blas': blas_kernels(), 'numpy_simd': [x for x in d if f.get(x)], "
         "'openmp_threads': [i['num_threads'] for i in t() if i['user_api'] == 'openmp']}))")


def cpu_detail() -> dict:
    """The CPU's family and the vector instructions that decide the kernels (Linux)."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    def field(name: str) -> str:
        return next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith(name)), "")

    flags = set(field("flags").split())
    vector = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]
    return {"family": field("cpu family"), "vector": vector}


def data_outs(lock: dict) -> dict[str, str]:
    """The data stages' outputs in a dvc.lock and their hashes (executed notebooks aside)."""
    return lock_outputs({"stages": {s: e for s, e in lock["stages"].items() if s in DATA_STAGES}})


def compare(run: dict[str, str], references: dict[str, dict[str, str]]) -> list[dict]:
    """One row per output of ``run``: for each reference, "same", "differs" or "absent"."""
    return [{"output": path, **{name: ("absent" if path not in ref else "same" if ref[path] == md5 else "differs")
                                for name, ref in references.items()}}
            for path, md5 in sorted(run.items())]


def table(rows: list[dict]) -> str:
    names = [k for k in rows[0] if k != "output"]
    lines = ["| output | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    lines += [f"| {r['output']} | " + " | ".join(r[n] for n in names) + " |" for r in rows]
    lines.append("| **all the same** | " + " | ".join(
        "yes" if all(r[n] == "same" for r in rows) else f"no ({sum(r[n] != 'same' for r in rows)} differ)"
        for n in names) + " |")
    return "\n".join(lines)


def label(record: dict, name: str) -> str:
    """A recorded run, as a column of the table: its CPU, its pin and what else it set."""
    extra = ", ".join(f"{k}={v}" for k, v in record.get("env", {}).items() if k not in PIN)
    return (f"{record['cpu']} ({', '.join(record.get('vector', []))}), {'pinned' if record['pinned'] else 'unpinned'}"
            f"{', ' + extra if extra else ''} ({name})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pin", action="store_true", help="run on the pinned kernels (PIN)")
    ap.add_argument("--rev", default="HEAD")
    ap.add_argument("--out", type=Path, help="write this run's hashes, machine and kernels here (JSON)")
    ap.add_argument("--against", type=Path, nargs="*", default=[], help="the --out files of other runs")
    ap.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                    help="more environment for the stages, e.g. OPENBLAS_NUM_THREADS=1 (recorded with the run)")
    ap.add_argument("--keep", type=Path, help="run in this new folder and keep it (to compare files, not only hashes)")
    args = ap.parse_args()

    stage_env = {**(PIN if args.pin else {}), **dict(item.split("=", 1) for item in args.env)}
    python = ROOT / ".venv" / "bin" / "python"
    if not python.exists():
        sys.exit("blas_pin: needs this checkout's .venv (make setup)")
    if args.keep and args.keep.exists():
        sys.exit(f"blas_pin: {args.keep} exists")
    with tempfile.TemporaryDirectory(prefix="synthgen-blas-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        repo, commit, env = fresh_clone(args.rev, folder)  # empty caches, as a new machine has them
        env = {k: v for k, v in env.items() if k not in PIN and k != "SYNTHGEN_ROOT"}
        # this .venv's tools, the clone's synthgen
        env.update({"PATH": f"{python.parent}{os.pathsep}{env['PATH']}", "PYTHONPATH": str(repo),
                    "DVC_NO_ANALYTICS": "1", **stage_env})
        kernels = json.loads(subprocess.run([str(python), "-c", PROBE], cwd=repo, env=env, capture_output=True,
                                            text=True, check=True).stdout)
        print(f"{commit} on {cpu_model()}, {stage_env or 'nothing pinned'}: {kernels}", flush=True)
        start = time.monotonic()
        subprocess.run(["dvc", "repro", "splits"], cwd=repo, env=env, check=True)
        minutes = (time.monotonic() - start) / 60
        run = data_outs(yaml.safe_load((repo / "dvc.lock").read_text()))

    record = {"commit": commit, "cpu": cpu_model(), **cpu_detail(), "pinned": args.pin, "env": stage_env,
              "kernels": kernels, "minutes": round(minutes, 1), "outs": run}
    references = {"committed dvc.lock": data_outs(yaml.safe_load((ROOT / "dvc.lock").read_text()))}
    for path in args.against:
        ref = json.loads(path.read_text())
        references[label(ref, path.name)] = ref["outs"]
    print(f"\nthe data stages of {commit} in {minutes:.1f} min: {label(record, 'this run')}; {kernels}\n")
    print(table(compare(run, references)))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=1) + "\n")
        print(f"\nwritten: {args.out}")


if __name__ == "__main__":
    main()
