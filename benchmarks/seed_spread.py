"""How much does one training seed decide?  The spread of the section-5 model across seeds.

    python benchmarks/seed_spread.py [--split iid] [--seeds 0 1 2 3] [--set training.lr=0.001 ...]
                                     [--out reports/seed_spread]

Trains the split's model (params.yaml, with ``--set`` overrides) once per training seed
and evaluates each on the split's test functions (the pipeline's ``evaluate``).  Prints,
per seed: final training and validation loss, greedy pass@1, the top beam (``beam@1``) and
the pass rate of the samples (pass@1 estimated from ``evaluation.n_samples`` samples);
then the spread (standard deviation and range) of each over seeds, beside the standard
error that test sampling alone gives one model (``sd over functions / sqrt(n)``).

What it tells: if the validation loss is as tight as its noise but greedy pass@1 spreads
far beyond test sampling, the seeds reach equally good models that *decide* differently
(greedy commits to near-ties), and the remedy is to average seeds, not to change
training; a loss that spreads too says the optimisation itself is unstable (learning rate,
warm-up, budget).  Needs the pipeline's universe and splits (``dvc repro splits``).
Models go to ``--out`` (not to the pipeline's artifacts); an existing run resumes.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from synthgen.evaluation import evaluate
from synthgen.params import load_params
from synthgen.paths import artifacts_dir, repo_root, split_path
from synthgen.split_files import read_split
from synthgen.training import train
from synthgen.universe import read_universe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", default="iid")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a param")
    parser.add_argument("--out", type=Path, default=None, help="run folders and the table (default: a folder per --set)")
    args = parser.parse_args()
    overrides = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)}
    P = load_params(overrides=overrides)
    torch.set_num_threads(P.training.threads)
    tag = "_".join(f"{k}={v}" for k, v in sorted(overrides.items())) or "params"
    out = args.out or repo_root() / "reports" / "seed_spread" / f"{args.split}_{tag}"
    universe = read_universe(artifacts_dir("universe"))
    train_ids, test, _ = read_split(split_path(args.split))
    ids = test.program_id.to_numpy()
    rows = []
    for seed in args.seeds:
        start = time.perf_counter()
        result = train(universe, train_ids, P, out / f"seed{seed}", val_ids=ids[:256], seed=seed, progress=False)
        trained = time.perf_counter() - start
        start = time.perf_counter()
        table = evaluate(universe, result.model, ids, P, sample_seed=seed)
        last = result.curve[-1]
        rows.append({
            "seed": seed, "train_loss": last["train_loss"], "val_loss": last["val_loss"],
            "greedy pass@1": table["pass@1"].mean(), "beam@1": table["beam@1"].mean(),
            "sampled pass@1": table["sample@1"].mean(),  # the share of the n samples that pass
            "train s": trained, "evaluate s": time.perf_counter() - start,
        })
        greedy_se = table["pass@1"].std(ddof=1) / np.sqrt(len(table))
        rows[-1]["greedy se (test sampling)"] = greedy_se
        print(pd.DataFrame(rows).round(4).to_string(index=False), flush=True)
    frame = pd.DataFrame(rows)
    cols = ["train_loss", "val_loss", "greedy pass@1", "beam@1", "sampled pass@1"]
    spread = pd.DataFrame({"mean": frame[cols].mean(), "sd over seeds": frame[cols].std(ddof=1),
                           "range": frame[cols].max() - frame[cols].min()})
    print(f"\n{args.split}, {len(args.seeds)} seeds, overrides {overrides or 'none'}:")
    print(spread.round(4).to_string())
    print(f"test sampling alone (one model, {len(ids)} functions): greedy se {frame['greedy se (test sampling)'].mean():.4f}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "spread.json").write_text(json.dumps({"split": args.split, "overrides": overrides, "runs": rows,
                                                 "spread": spread.to_dict()}, indent=1, default=float) + "\n")


if __name__ == "__main__":
    main()
