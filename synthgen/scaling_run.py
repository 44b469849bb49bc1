"""The scaling grid (STUDY.md section 6): model sizes x training budgets, one run per
(size, split, training seed).

    python -m synthgen.scaling_run SIZE SPLIT SEED     # one item of dvc.yaml's matrix

The seeds are ``scaling.seeds``: no single training run decides a point, and the fits'
intervals resample the seeds (:func:`synthgen.scaling_fit.bootstrap_log_linear`).

**Prefix reuse.** Each (size, split) is one training run with the largest budget,
``scaling.tasks``; the smaller budgets are snapshots of that run at the shares
``scaling.budgets``.  A prefix of a cosine run is not a shorter cosine run (its learning
rate has not decayed yet), so the grid's runs keep the learning rate constant after the
warm-up (``min_lr = lr``, :func:`run_params`).  The warm-up is the same number of steps in
every snapshot, so the snapshot at budget ``b`` is exactly the run of budget ``b`` with that
schedule: the grid costs one run per (size, split), not one per budget.  The price: no
snapshot gets the end-of-run decay that lowers the loss of the section 5 runs, so the grid
measures how pass@1 scales under one fixed schedule, not each budget's best schedule.

**Snapshots** are taken through :func:`synthgen.training.train`'s public hook: a snapshot
step is a checkpoint step, and ``train`` writes the checkpoint before it calls ``on_step``,
so ``on_step`` keeps that checkpoint's config and weights (what
:func:`~synthgen.training.load_model` reads).  A resumed run keeps the snapshots already
taken.  The run directory (``artifacts/scaling/runs/<item>``) is not the stage's output,
only the points are: the stage stays one that DVC's run-cache can restore, and a
checkpoint kept there still resumes a killed run.

**Compute** (:func:`training_compute`): ``C = 6 N D`` (Kaplan et al.), with ``N`` the
non-embedding parameters and ``D`` the training tokens, i.e. the positions a task occupies
(K encoder positions + ``max_length - 1`` decoder positions) times the tasks seen.  The
exact matmul count, attention scores included (:func:`synthgen.model.training_flops_per_task`),
is kept beside it: at these widths attention adds a few per cent, more at the smallest.

**Evaluation**: greedy pass@1 of each snapshot on the split's whole test set, on the same
tasks (purpose "test") that :func:`synthgen.evaluation.evaluate` uses, one row per
(snapshot, test program) so that the fits can resample test programs.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from synthgen.atomic import atomic_path
from synthgen.decoding import synthesize
from synthgen.evaluation import score_candidates, task_table
from synthgen.model import ModelConfig, Synthesizer, count_parameters, training_flops_per_task
from synthgen.params import Params, ParamsError, load_params
from synthgen.tasks import make_tasks
from synthgen.training import CHECKPOINT_FILE, discard_stale_run, load_model, save_state, train
from synthgen.universe import Universe

POINT_COLUMNS = (
    "size", "split", "seed", "budget", "tasks", "non_embedding_parameters", "tokens", "compute", "compute_exact",
    "program_id", "semantic_class", "region", "valid", "pass@1",
)


def item_name(size: str, split: str, seed: int) -> str:
    return f"{size}_{split}_seed{seed}"


def run_params(params: Params, size: str) -> Params:
    """The params of the grid's run of ``size``: the size's shape, the largest budget, a
    constant learning rate after warm-up, and checkpoints at (at least) every snapshot."""
    sizes = params.scaling.sizes
    if size not in sizes:
        raise ParamsError(f"scaling.sizes has no size {size!r} (it has {', '.join(sizes)}); dvc.yaml's matrix must name the same sizes")
    tp = params.training.model_copy(update={"tasks": params.scaling.tasks, "min_lr": params.training.lr})
    every = math.gcd(*snapshot_steps(params))
    tp = tp.model_copy(update={"checkpoint_every": every, "log_every": math.gcd(every, tp.log_every)})
    model = params.model.model_copy(update=sizes[size].model_dump())
    return params.model_copy(update={"model": model, "training": tp})


def snapshot_steps(params: Params) -> list[int]:
    """The optimiser steps at which the budgets' snapshots are taken (distinct: params.py checks)."""
    steps = -(-params.scaling.tasks // params.training.batch_size)
    return [round(b * steps) for b in params.scaling.budgets]


def snapshot_file(step: int) -> str:
    return f"snapshot_{step:08d}.pt"


def training_compute(config: ModelConfig, n_examples: int, tasks: int) -> dict[str, float]:
    """N (non-embedding parameters), D (training tokens) and C = 6 N D for ``tasks`` tasks,
    with the exact matmul count (attention scores included) as ``compute_exact``."""
    n = count_parameters(Synthesizer(config))
    tokens = (n_examples + config.max_length - 1) * tasks
    return {
        "non_embedding_parameters": n,
        "tokens": tokens,
        "compute": 6.0 * n * tokens,
        "compute_exact": float(training_flops_per_task(config, n_examples)) * tasks,
    }


def _keep_snapshot(out_dir: Path, step: int, wanted: set[int]) -> None:
    target = out_dir / snapshot_file(step)
    if step in wanted and not target.exists():
        state = torch.load(out_dir / CHECKPOINT_FILE, map_location="cpu", weights_only=True)
        # config and weights only: the optimiser state would triple it
        save_state({"config": state["config"], "model": state["model"], "step": state["step"]}, target)


def train_with_snapshots(universe: Universe, train_ids, params: Params, size: str, out_dir: str | Path, seed: int = 0,
                         progress: bool = True) -> list[Path]:
    """Train the grid's run of ``size`` with training ``seed`` in ``out_dir`` (resuming),
    keeping a snapshot at each budget."""
    out_dir = Path(out_dir)
    rp = run_params(params, size)
    wanted = set(snapshot_steps(params))
    checkpoint = out_dir / CHECKPOINT_FILE
    discard_stale_run(universe, train_ids, rp, out_dir, seed=seed)  # after an ablation: its snapshots go too
    if checkpoint.exists():  # a run killed between its checkpoint and the copy still gets its snapshot
        _keep_snapshot(out_dir, torch.load(checkpoint, map_location="cpu", weights_only=True)["step"], wanted)
    train(universe, train_ids, rp, out_dir, seed=seed, progress=progress,
          on_step=lambda step: _keep_snapshot(out_dir, step, wanted))
    return [out_dir / snapshot_file(s) for s in sorted(wanted)]


def greedy_pass_at_1(universe: Universe, model: Synthesizer, test_ids, params: Params) -> pd.DataFrame:
    """program_id, semantic_class, valid and greedy pass@1 per test program (the tasks of
    ``evaluate``)."""
    tasks = make_tasks(universe, test_ids, params.tasks.n_examples, "test", params.seed)
    written = synthesize(model, universe.grammar, tasks, "greedy", constrained=params.decoding.constrained)
    table = task_table(universe, tasks, score_candidates(universe, tasks, written), ks=[1])
    return table[["program_id", "semantic_class", "valid", "pass@1"]]


def grid_points(universe: Universe, train_ids, test_ids, params: Params, size: str, split: str, out_dir: str | Path,
                seed: int = 0, regions=None, progress: bool = True) -> pd.DataFrame:
    """Train (size, split, seed) and evaluate every snapshot: one row per (budget, test
    program); ``regions``: the held-out region of each test program (default 0)."""
    snapshots = train_with_snapshots(universe, train_ids, params, size, out_dir, seed, progress)
    rp = run_params(params, size)
    config = ModelConfig.from_params(rp.model, universe.grammar)
    frames = []
    for budget, step, path in zip(params.scaling.budgets, snapshot_steps(params), snapshots):
        tasks = step * rp.training.batch_size
        table = greedy_pass_at_1(universe, load_model(path, rp.training.device), test_ids, params)
        facts = {"size": size, "split": split, "seed": seed, "budget": budget, "tasks": tasks,
                 "region": np.zeros(len(table), dtype=np.int64) if regions is None else np.asarray(regions, dtype=np.int64),
                 **training_compute(config, params.tasks.n_examples, tasks)}
        frames.append(table.assign(**facts))
    return pd.concat(frames, ignore_index=True)[list(POINT_COLUMNS)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m synthgen.scaling_run", description=__doc__.split("\n\n")[0])
    parser.add_argument("size", help="a size named in params.yaml's scaling.sizes")
    parser.add_argument("split", help="a split of artifacts/splits, e.g. iid")
    parser.add_argument("seed", type=int, help="a training seed of params.yaml's scaling.seeds")
    args = parser.parse_args(argv)
    from synthgen.paths import artifacts_dir, split_path
    from synthgen.split_files import read_split
    from synthgen.universe import read_universe

    try:
        params = load_params()
        run_params(params, args.size)  # an unknown size or seed stops here, before any work
        if args.seed not in params.scaling.seeds:
            raise ParamsError(f"scaling.seeds {params.scaling.seeds} has no seed {args.seed}; dvc.yaml's matrix reads "
                              "the same list")
    except ParamsError as err:
        print(f"synthgen: {err}", file=sys.stderr)
        return 2
    torch.set_num_threads(params.training.threads)
    universe = read_universe(artifacts_dir("universe"))
    train_ids, test, _ = read_split(split_path(args.split))
    name = item_name(args.size, args.split, args.seed)
    points = grid_points(universe, train_ids, test.program_id.to_numpy(), params, args.size, args.split,
                         artifacts_dir("scaling") / "runs" / name, seed=args.seed, regions=test.region.to_numpy())
    target = artifacts_dir("scaling") / "points" / f"{name}.parquet"
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        points.to_parquet(tmp, index=False)
    summary = points.groupby(["tasks", "compute"])["pass@1"].mean()
    print(f"{name}: greedy pass@1 by budget\n{summary.to_string()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
