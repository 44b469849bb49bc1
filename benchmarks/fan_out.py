"""Why ``make repro`` fans the per-model stages out (synthgen/fan_out.py): training
throughput of the section-5 model on this machine, one training on every core against one
training per core, measured in the same run.

    python benchmarks/fan_out.py [--params params.yaml] [--tasks 25600] [--rounds 3]

Rows (each a fresh process per training, timed from start to the end of ``train``):

- ``one run, N threads`` (the baseline, a plain ``dvc repro``): one training of ``--tasks``
  tasks with ``training.threads`` = the number of cores;
- ``N runs, 1 thread each`` (``make repro JOBS=N``): N trainings of ``--tasks`` tasks each
  at once, one thread each.

Throughput is tasks trained per second by the whole machine; the ratio is the fan-out's
over the baseline's. Rounds alternate the two rows; the best round of each is shown with
the range over rounds. The model, batch and training set size are the params' (the
training set is a seeded sample of ``splits.train_size`` in-bound programs, as a split
gives). Every training writes to a temporary folder.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from synthgen.params import load_params


def _train(params_path: str, threads: int, tasks: int, seed: int, out: str, start, done) -> None:
    """One training in this process; ``start`` (a barrier) lines the processes up after
    their set-up; the seconds the training took go to ``done``."""
    import torch

    from synthgen.enumeration import enumerate_universe
    from synthgen.grammar import Grammar
    from synthgen.training import train

    P = load_params(params_path)
    P = P.model_copy(update={"training": P.training.model_copy(update={"threads": threads, "tasks": tasks,
                                                                       "checkpoint_every": 10**9})})
    universe = enumerate_universe(Grammar.from_params(P.grammar))
    valid = np.flatnonzero(universe.semantic_class >= 0)
    ids = np.sort(np.random.default_rng(seed).choice(valid, P.splits.train_size, replace=False))
    torch.set_num_threads(threads)
    start.wait()
    t0 = time.perf_counter()
    train(universe, ids, P, out, seed=seed, progress=False)
    done.put(time.perf_counter() - t0)


def _round(params_path: str, runs: int, threads: int, tasks: int, tmp: Path) -> float:
    """Wall seconds until ``runs`` trainings of ``tasks`` tasks, started together, all end."""
    ctx = mp.get_context("spawn")
    start, done = ctx.Barrier(runs), ctx.Queue()
    procs = [ctx.Process(target=_train, args=(params_path, threads, tasks, i, str(tmp / f"run{i}_{time.time_ns()}"),
                                              start, done)) for i in range(runs)]
    for p in procs:
        p.start()
    seconds = [done.get() for _ in procs]
    for p in procs:
        p.join()
        if p.exitcode:
            raise RuntimeError(f"a training process failed ({p.exitcode})")
    return max(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--tasks", type=int, default=25_600, help="tasks per training (100 steps of 256)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cores", type=int, default=os.cpu_count())
    args = parser.parse_args()
    P = load_params(args.params)
    n = args.cores
    rows = {f"one run, {n} threads (dvc repro)": (1, n), f"{n} runs, 1 thread each (make repro JOBS={n})": (n, 1)}
    rates: dict[str, list[float]] = {name: [] for name in rows}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for name, (runs, threads) in (rows.items() if r % 2 == 0 else reversed(rows.items())):
                seconds = _round(args.params, runs, threads, args.tasks, Path(tmp))
                rates[name].append(runs * args.tasks / seconds)
                print(f"round {r + 1}: {name}: {runs * args.tasks / seconds:,.0f} tasks/s", flush=True)
    m = P.model
    print(f"\nthe section-5 model ({m.encoder_layers}+{m.decoder_layers} layers, width {m.width}, batch "
          f"{P.training.batch_size}, bf16 {P.training.bf16}), {args.tasks:,} tasks per training, "
          f"{args.rounds} rounds, {n} cores\n")
    base = max(next(iter(rates.values())))
    print(f"| {'row':<44} | {'tasks/s (best)':>14} | {'range over rounds':>19} | {'ratio':>6} |")
    print(f"|{'-' * 46}|{'-' * 15}:|{'-' * 20}:|{'-' * 7}:|")
    for name, values in rates.items():
        print(f"| {name:<44} | {max(values):>14,.0f} | {min(values):>8,.0f} – {max(values):>8,.0f} | "
              f"{max(values) / base:>5.2f}x |")


if __name__ == "__main__":
    main()
