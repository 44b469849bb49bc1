"""Benchmark: enumerating and classifying the default universe, end to end.

Prints one table: programs/s of synthgen's enumerator (enumerate + classify + write
Parquet) for the default grammar, and of a straightforward per-tree recursive evaluator
(build each tree, evaluate it on the grid node by node, classify it by its outputs)
measured in the same run on a subset, the ratio, and peak memory.

    python benchmarks/enumeration.py [--repeats 3] [--baseline-programs 20000]

Targets (issue 2): >= 2,000,000 programs/s end to end, >= 50x the per-tree evaluator,
peak memory < 4 GB, on a 2-core machine.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synthgen.enumeration import enumerate_universe  # noqa: E402
from synthgen.grammar import Grammar  # noqa: E402
from synthgen.params import load_params  # noqa: E402
from synthgen.universe import write_universe  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def default_grammar() -> Grammar:
    return Grammar.from_params(load_params(ROOT / "profiles" / "default.yaml").grammar)


def _end_to_end(queue: mp.Queue) -> None:
    """One run in a fresh process, so its peak memory is its own."""
    g = default_grammar()
    with tempfile.TemporaryDirectory() as folder:
        t0 = time.perf_counter()
        u = enumerate_universe(g)
        t1 = time.perf_counter()
        write_universe(u, folder)
        t2 = time.perf_counter()
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    queue.put((len(u), u.n_classes, t1 - t0, t2 - t1, peak_kb * 1024))


def per_tree_baseline(n: int) -> tuple[int, float]:
    """Per-tree evaluation of the first ``n`` programs of each size (at most), classified
    with a dict keyed by their outputs."""
    g = default_grammar()
    u = enumerate_universe(g)
    offsets = u.size_offsets
    ids = [i for s in range(1, g.max_size + 1) for i in range(offsets[s - 1], min(offsets[s], offsets[s - 1] + n))]
    trees = [u.program(i) for i in ids]  # tree building is not timed: only evaluation + classification
    classes: dict[bytes, int] = {}
    t0 = time.perf_counter()
    for tree in trees:
        out = g.evaluate(tree)
        key = b"" if out is None else out.tobytes()
        classes.setdefault(key, len(classes))
    return len(trees), time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline-programs", type=int, default=5000, help="per size, for the per-tree evaluator")
    args = parser.parse_args()

    ctx = mp.get_context("spawn")
    runs = []
    for _ in range(args.repeats):
        q = ctx.Queue()
        proc = ctx.Process(target=_end_to_end, args=(q,))
        proc.start()
        runs.append(q.get())
        proc.join()
    n_programs, n_classes = runs[0][:2]
    totals = [r[2] + r[3] for r in runs]
    best = min(range(len(runs)), key=lambda i: totals[i])
    fast_rate = n_programs / statistics.median(totals)
    peak = max(r[4] for r in runs)

    n_base, t_base = per_tree_baseline(args.baseline_programs)
    base_rate = n_base / t_base

    rows = [
        ("programs (default grammar)", f"{n_programs:,}"),
        ("semantic classes", f"{n_classes:,}"),
        ("enumerate + classify, s (best)", f"{runs[best][2]:.3f}"),
        ("write Parquet, s (best)", f"{runs[best][3]:.3f}"),
        (f"end to end, s (median of {len(runs)})", f"{statistics.median(totals):.3f}"),
        ("synthgen, programs/s (median)", f"{fast_rate:,.0f}"),
        (f"per-tree evaluator, programs/s ({n_base:,} programs)", f"{base_rate:,.0f}"),
        ("ratio", f"{fast_rate / base_rate:,.0f}x"),
        ("peak memory (RSS), GB", f"{peak / 1e9:.2f}"),
    ]
    width = max(len(k) for k, _ in rows)
    print(f"{'measure':<{width}}  value")
    print(f"{'-' * width}  {'-' * 12}")
    for k, v in rows:
        print(f"{k:<{width}}  {v:>12}")
    verdict = fast_rate >= 2e6 and fast_rate / base_rate >= 50 and peak < 4e9
    print(f"\ntargets (>= 2,000,000 programs/s, >= 50x, < 4 GB): {'met' if verdict else 'NOT met'}")


if __name__ == "__main__":
    main()
