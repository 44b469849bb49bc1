"""The `paper` profile's training on a GPU: throughput, a time-boxed run and its pass@1.

The paper profile's training (a 44M-parameter encoder-decoder, 50M tasks per split) is
meant for a GPU.  This script measures what one GPU does with it, without the rest of the
pipeline: it enumerates the paper universe (max_size 8, 20,558,175 programs), draws the
`iid` split (it needs no metric space), and then

1. measures training throughput (tasks/s, tokens/s, achieved model TFLOP/s) of the paper
   model on the GPU, beside the default profile's model on the same GPU and on 2 CPU
   threads (the laptop this package is planned around) as the baseline;
2. trains the paper model on ``--split`` (`iid`, or `support_syntax`, which needs the
   pq-gram profiles but no SVD) for ``--minutes`` or ``--tasks`` (a complete run: warm-up
   and cosine decay over the number of tasks that fit the time at the measured rate);
3. scores greedy pass@1 on the split's test set, with a bootstrap CI;
4. projects the wall time of the paper profile's full training budgets from the rate.

    python benchmarks/paper_gpu.py [--split iid] [--minutes 4 | --tasks N [--skip-throughput]] [--out DIR]

It prints a table and writes ``paper_gpu_<split>.json`` and the run's curve to ``--out``.  The
numbers are a probe of the paper profile, not its results: the full budget is 50M tasks
per split.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from synthgen.enumeration import enumerate_universe  # noqa: E402
from synthgen.evaluation import function_interval  # noqa: E402
from synthgen.grammar import Grammar  # noqa: E402
from synthgen.model import ModelConfig, training_flops_per_task  # noqa: E402
from synthgen.params import Params, load_params  # noqa: E402
from synthgen.profiles import profile_text  # noqa: E402
from synthgen.scaling_run import greedy_pass_at_1  # noqa: E402
from synthgen.pqgram import universe_profiles  # noqa: E402
from synthgen.splits import IIDSplit, SplitInputs, SupportSyntaxSplit, candidate_pool  # noqa: E402
from synthgen.training import train  # noqa: E402

CALIBRATION_STEPS = 40  # of which the first WARM_STEPS are not timed (allocation, autotuning)
WARM_STEPS = 10


def profile_params(name: str, overrides: dict | None = None) -> Params:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "params.yaml"
        path.write_text(profile_text(ROOT, name))
        return load_params(path, overrides or {})


def throughput(universe, train_ids, profile: str, device: str, threads: int, steps: int = CALIBRATION_STEPS) -> dict:
    """Timed training steps of ``profile``'s model on ``device``: tasks/s after warm-up."""
    batch_size = profile_params(profile).training.batch_size
    p = profile_params(profile, {"training.device": device, "training.threads": threads,
                                 "training.tasks": steps * batch_size, "training.checkpoint_every": steps,
                                 "training.log_every": steps})
    times: list[float] = []

    def tick(step: int) -> None:
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as tmp:
        result = train(universe, train_ids, p, tmp, progress=False, on_step=tick)
    timed = len(times) - WARM_STEPS
    seconds = times[-1] - times[WARM_STEPS - 1]
    assert timed > 0, f"{steps} steps leave none timed after {WARM_STEPS} warm-up steps"
    rate = timed * p.training.batch_size / seconds
    config = ModelConfig.from_params(p.model, universe.grammar)
    n_ex = p.tasks.n_examples
    return {
        "device": torch.cuda.get_device_name() if device == "cuda" else device,
        "threads": threads,
        "non_embedding_parameters": result.non_embedding_parameters,
        "batch_size": p.training.batch_size,
        "tasks_per_s": rate,
        "tokens_per_s": rate * (n_ex + config.max_length - 1),
        "model_tflop_per_s": rate * training_flops_per_task(config, n_ex) / 1e12,
    }


def draw_split(universe, paper: Params, name: str):
    """The split ``name`` of the paper universe: iid reads the universe only; support_syntax
    needs the pq-gram profiles (no SVD, no semantic space)."""
    pool = candidate_pool(universe, paper.splits.pool, paper.splits.min_size)
    common = dict(train_size=paper.splits.train_size, test_size=paper.splits.test_size, seed=paper.seed,
                  tasks_per_function=paper.splits.tasks_per_function)
    if name == "iid":
        return IIDSplit(**common, guard=paper.splits.guard == "all").split(SplitInputs(universe, None, None, None), pool)
    profiles = universe_profiles(universe, paper.syntax.p, paper.syntax.q).counts
    split = SupportSyntaxSplit(**common, region_share=paper.splits.support.region_share,
                               regions=paper.splits.support.regions)
    return split.split(SplitInputs(universe, None, None, profiles), pool)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", choices=("iid", "support_syntax"), default="iid", help="the split of the timed run")
    parser.add_argument("--minutes", type=float, default=4.0, help="wall time of the paper model's run")
    parser.add_argument("--tasks", type=int, default=None, help="train this many tasks instead of --minutes' worth")
    parser.add_argument("--skip-throughput", action="store_true", help="no throughput table (needs --tasks)")
    parser.add_argument("--out", type=Path, default=Path("paper_gpu_out"))
    parser.add_argument("--cpu-baseline-steps", type=int, default=20)
    parser.add_argument("--calibration-steps", type=int, default=CALIBRATION_STEPS)
    parser.add_argument("--universe", default="paper", help="profile whose grammar gives the universe (default: a dry run)")
    parser.add_argument("--device", default="cuda", help="cuda, or cpu for a dry run of the script")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("paper_gpu.py needs a CUDA GPU (the paper profile's training is meant for one); --device cpu dry-runs it")
    if args.skip_throughput and args.tasks is None:
        parser.error("--skip-throughput needs --tasks")
    args.out.mkdir(parents=True, exist_ok=True)
    paper = profile_params("paper")

    t0 = time.perf_counter()
    universe = enumerate_universe(Grammar.from_params(profile_params(args.universe).grammar))
    t_enum = time.perf_counter() - t0
    print(f"enumerated {len(universe):,} programs in {t_enum:.1f} s", flush=True)
    t0 = time.perf_counter()
    split = draw_split(universe, paper, args.split)
    print(f"{args.split}: {len(split.train):,} training and {len(split.test):,} test programs "
          f"({time.perf_counter() - t0:.0f} s)", flush=True)

    rows = {}
    if not args.skip_throughput:
        rows = {
            f"paper model, {args.device}": throughput(universe, split.train, "paper", args.device,
                                                      paper.training.threads, args.calibration_steps),
            f"default model, {args.device}": throughput(universe, split.train, "default", args.device,
                                                        paper.training.threads, args.calibration_steps),
            "default model, CPU (2 threads)": throughput(universe, split.train, "default", "cpu", 2,
                                                         steps=WARM_STEPS + args.cpu_baseline_steps),
        }
        for name, row in rows.items():
            print(f"{name}: {row['tasks_per_s']:,.0f} tasks/s", flush=True)

    bs = paper.training.batch_size
    tasks = args.tasks or int(rows[f"paper model, {args.device}"]["tasks_per_s"] * args.minutes * 60)
    run = profile_params("paper", {"training.device": args.device, "training.tasks": max(bs, tasks // bs * bs),
                                   "training.checkpoint_every": 100, "training.log_every": 100})
    print(f"training the paper model on {args.split} for {run.training.tasks:,} tasks", flush=True)
    run_dir = args.out / f"{args.split}_run"
    shutil.rmtree(run_dir, ignore_errors=True)
    t0 = time.perf_counter()
    result = train(universe, split.train, run, run_dir, progress=False)
    t_train = time.perf_counter() - t0
    rate = result.tasks_seen / t_train
    t0 = time.perf_counter()
    table = greedy_pass_at_1(universe, result.model, split.test, run)
    t_eval = time.perf_counter() - t0
    p1 = table["pass@1"].to_numpy(dtype=float)
    ci = function_interval(p1, table["semantic_class"], run.evaluation.bootstrap, run.evaluation.confidence, run.seed)
    (run_dir / "checkpoint.pt").unlink(missing_ok=True)  # 0.5 GB of optimiser state: not needed here
    (run_dir / "model.pt").unlink(missing_ok=True)

    full = {
        "section 5: 7 splits x training.tasks": 7 * paper.training.tasks,
        "scaling grid at the l size: 3 splits x scaling.tasks": 3 * paper.scaling.tasks,
    }
    report = {
        "universe_programs": len(universe),
        "enumeration_s": t_enum,
        "throughput": rows,
        "run": {
            "split": args.split,
            "device": torch.cuda.get_device_name() if args.device == "cuda" else args.device,
            "tasks": result.tasks_seen,
            "training_s": t_train,
            "tasks_per_s_including_checkpoints": rate,
            "training_flops": result.training_flops,
            "final_train_loss": result.curve[-1]["train_loss"],
            "greedy_pass_at_1": float(p1.mean()),
            "ci": list(ci),
            "valid_share": float(table["valid"].mean()),
            "test_tasks": len(p1),
            "evaluation_s": t_eval,
        },
        "projected_hours_at_this_rate": {k: v / rate / 3600 for k, v in full.items()},
    }
    if rows:
        report["default_model_ratio_over_cpu"] = (rows[f"default model, {args.device}"]["tasks_per_s"]
                                                  / rows["default model, CPU (2 threads)"]["tasks_per_s"])
    (args.out / f"paper_gpu_{args.split}.json").write_text(json.dumps(report, indent=2) + "\n")

    print()
    if rows:
        print(f"{'run':34} {'params':>11} {'tasks/s':>10} {'tokens/s':>12} {'TFLOP/s':>8}")
        for name, row in rows.items():
            print(f"{name:34} {row['non_embedding_parameters']:>11,} {row['tasks_per_s']:>10,.0f} "
                  f"{row['tokens_per_s']:>12,.0f} {row['model_tflop_per_s']:>8.2f}")
        print(f"ratio, default model {args.device} / CPU (2 threads): {report['default_model_ratio_over_cpu']:.1f}x\n")
    r = report["run"]
    print(f"paper model on {args.split}: {r['tasks']:,} tasks in {r['training_s']:.0f} s "
          f"(10^{math.log10(r['training_flops']):.1f} FLOPs), final train loss {r['final_train_loss']:.3f}")
    print(f"greedy pass@1 on {r['test_tasks']} {args.split} test tasks: {r['greedy_pass_at_1']:.3f} "
          f"[{ci[0]:.3f}, {ci[1]:.3f}], valid {r['valid_share']:.3f}, evaluated in {r['evaluation_s']:.0f} s")
    for k, v in report["projected_hours_at_this_rate"].items():
        print(f"projected at this rate, {k}: {v:.1f} h")


if __name__ == "__main__":
    main()
