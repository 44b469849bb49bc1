"""Benchmark: build both metric spaces for the default universe, with baselines.

    python benchmarks/spaces.py

Enumerates the default grammar in-process, then times each step of building the spaces
(the target: under 120 s and 8 GB on two cores) and, in the same run, the baselines the
design choices were made against: pq-gram profiles one tree at a time, the SVD fitted on
every program instead of a sample, and brute-force nearest neighbours instead of the k-d
tree.  Prints one table; peak memory is the process's maximum resident set size.
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# this checkout's package, even where the environment has another checkout installed
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synthgen.enumeration import enumerate_universe  # noqa: E402
from synthgen.grammar import Grammar  # noqa: E402
from synthgen.ood import ood_distance  # noqa: E402
from synthgen.params import load_params  # noqa: E402
from synthgen.pqgram import pq_nearest_distance, program_profiles, universe_profiles  # noqa: E402
from synthgen.seeding import derive_seed  # noqa: E402
from synthgen.spaces import SemanticSpace, SyntaxSpace, write_spaces  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PER_TREE_SUBSET = 20_000
KD_QUERIES, BRUTE_QUERIES = 10_000, 500
EXACT_TRAIN, EXACT_QUERIES = 200_000, 1_000


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9  # ru_maxrss is in KiB on Linux


def brute_force_nearest(query: np.ndarray, train: np.ndarray, block: tuple[int, int] = (1024, 8192)) -> np.ndarray:
    """The baseline: float32 matrix products over blocks, ||t||^2 - 2 q.t, running minimum."""
    train_sq = (train.astype(np.float32) ** 2).sum(axis=1)
    best = np.full(len(query), np.inf, np.float32)
    for i in range(0, len(query), block[0]):
        q = query[i : i + block[0]]
        for j in range(0, len(train), block[1]):
            part = q @ train[j : j + block[1]].T
            part *= -2
            part += train_sq[j : j + block[1]]
            np.minimum(best[i : i + block[0]], part.min(axis=1), out=best[i : i + block[0]])
    return np.sqrt(np.maximum(best + (query.astype(np.float32) ** 2).sum(axis=1), 0))


def main() -> None:
    P = load_params(ROOT / "profiles" / "default.yaml")
    rows: list[tuple[str, float, str]] = []

    def timed(label: str, fn, rate_of: int | None = None, unit: str = "programs"):
        t0 = time.perf_counter()
        out = fn()
        dt = time.perf_counter() - t0
        rate = f"{rate_of / dt:,.0f} {unit}/s" if rate_of else ""
        rows.append((label, dt, rate))
        print(f"  {label}: {dt:.2f} s", file=sys.stderr, flush=True)
        return out, dt

    universe, _ = timed("enumerate the universe (input, not counted)", lambda: enumerate_universe(Grammar.from_params(P.grammar)))
    n = len(universe)
    seed = derive_seed(P.seed, "spaces-syntax", bits=32)

    # --- building both spaces (the target) ---
    profiles, t_profiles = timed(f"pq-gram profiles, vectorised ({n:,} programs)", lambda: universe_profiles(universe, P.syntax.p, P.syntax.q), n)
    syntax = SyntaxSpace(P.syntax.p, P.syntax.q, P.syntax.dims, P.syntax.fit_sample, random_state=seed)
    _, t_fit = timed(f"syntax SVD fit ({P.syntax.fit_sample:,} sampled programs)", lambda: syntax.fit(profiles))
    syntax_coords, t_project = timed(f"syntax projection ({n:,} programs)", lambda: syntax.transform(profiles), n)
    semantics = SemanticSpace(P.semantics.dims, P.semantics.transform)
    _, t_sem_fit = timed(f"semantic fit + transform ({universe.n_classes:,} classes)", lambda: semantics.fit(universe))
    semantic_coords = semantics.transform(universe)
    with tempfile.TemporaryDirectory() as folder:
        _, t_write = timed("write artifacts", lambda: write_spaces(folder, profiles, syntax, syntax_coords, semantics, semantic_coords))
    build_total = t_profiles + t_fit + t_project + t_sem_fit + t_write
    build_peak = peak_gb()

    # --- baselines, same run ---
    subset = np.sort(np.random.default_rng(0).choice(n, PER_TREE_SUBSET, replace=False))
    timed(
        f"baseline: pq-gram profiles per tree ({PER_TREE_SUBSET:,}-program subset)",
        lambda: program_profiles((universe.program(int(i)) for i in subset), P.syntax.p, P.syntax.q, profiles.vocabulary),
        PER_TREE_SUBSET,
    )
    everything = SyntaxSpace(P.syntax.p, P.syntax.q, P.syntax.dims, None, random_state=seed)
    timed(f"baseline: syntax SVD fit on all {n:,} programs", lambda: everything.fit(profiles))

    rng = np.random.default_rng(1)
    queries = rng.choice(n, KD_QUERIES, replace=False)
    kd, _ = timed(
        f"OOD distance, k-d tree: {KD_QUERIES:,} queries vs all {n:,} (build + query)",
        lambda: ood_distance(syntax_coords[queries], syntax_coords),
        KD_QUERIES,
        "queries",
    )
    brute, _ = timed(
        f"baseline: OOD distance, brute force float32: {BRUTE_QUERIES:,} queries vs all {n:,}",
        lambda: brute_force_nearest(syntax_coords[queries[:BRUTE_QUERIES]], syntax_coords),
        BRUTE_QUERIES,
        "queries",
    )
    assert np.allclose(kd[:BRUTE_QUERIES], brute, atol=1e-2), "k-d tree and brute force disagree"
    perm = rng.permutation(n)
    train, query = perm[:EXACT_TRAIN], perm[EXACT_TRAIN : EXACT_TRAIN + EXACT_QUERIES]
    timed(
        f"exact pq-gram OOD distance (sparse): {EXACT_QUERIES:,} queries vs {EXACT_TRAIN:,}",
        lambda: pq_nearest_distance(profiles.counts[query], profiles.counts[train]),
        EXACT_QUERIES,
        "queries",
    )

    rate = {label: r for label, _, r in rows}
    vec = float(rate[f"pq-gram profiles, vectorised ({n:,} programs)"].split()[0].replace(",", ""))
    per_tree = float(rate[f"baseline: pq-gram profiles per tree ({PER_TREE_SUBSET:,}-program subset)"].split()[0].replace(",", ""))
    width = max(len(label) for label, _, _ in rows)
    print(f"\nspaces benchmark: default profile, {n:,} programs, {len(profiles.vocabulary):,} pq-grams\n")
    print(f"{'step':<{width}}  {'seconds':>8}  rate")
    for label, dt, r in rows:
        print(f"{label:<{width}}  {dt:8.2f}  {r}")
    print(f"\nbuild both spaces (profiles + SVD fit + projection + semantics + write): {build_total:.1f} s (target < 120 s)")
    print(f"peak memory while building: {build_peak:.2f} GB (target < 8 GB); whole run: {peak_gb():.2f} GB")
    print(f"vectorised vs per-tree pq-gram profiles: {vec / per_tree:,.0f}x faster")


if __name__ == "__main__":
    main()
