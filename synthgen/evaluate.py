"""The evaluate stage: one trained model, (split, training seed), on its split's test tasks.

    python -m synthgen.evaluate SPLIT SEED      # one item of dvc.yaml's matrix

Writes ``artifacts/evaluation/<split>/seed<seed>.parquet``: one row per test task, the
columns of :func:`synthgen.evaluation.evaluate` (greedy ``pass@1``, sampled ``pass@k``,
``beam@1``, validity, consistency, ``consistent_classes``) beside the task's held-out
``region``.  (Its OOD distances and strata are joined where results are made: they
annotate a task, and annotating it another way must not rerun the models.)  The test tasks (their K examples) are the
same for every seed of a split: they come from the study's root ``seed``; the samples
drawn for pass@k come from the training seed.  The notebook of the ``results`` stage
(06) reads every (split, seed) table and makes the comparisons.
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd
import torch

from synthgen.atomic import atomic_path
from synthgen.evaluation import evaluate
from synthgen.params import Params, ParamsError, load_params
from synthgen.paths import evaluation_path, model_dir, split_path
from synthgen.split_files import read_split
from synthgen.training import MODEL_FILE, load_model
from synthgen.universe import Universe, read_universe


def evaluate_model(universe: Universe, split: str, seed: int, params: Params) -> pd.DataFrame:
    """The per-task table of the model trained on ``split`` with training ``seed``."""
    _, test, facts = read_split(split_path(split))
    model = load_model(model_dir(split, seed) / MODEL_FILE, params.training.device)
    table = evaluate(universe, model, test.program_id.to_numpy(), params, sample_seed=seed)
    return table.merge(test, on="program_id").assign(split=split, family=facts["family"], seed=seed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m synthgen.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("split", help="a split of artifacts/splits, e.g. iid")
    parser.add_argument("seed", type=int, help="a training seed of params.yaml's seeds")
    args = parser.parse_args(argv)
    try:
        params = load_params()
        if args.seed not in params.seeds:
            raise ParamsError(f"seeds {params.seeds} has no seed {args.seed}; dvc.yaml's matrix reads the same list")
    except ParamsError as err:
        print(f"synthgen: {err}", file=sys.stderr)
        return 2
    torch.set_num_threads(params.training.threads)
    universe = read_universe(split_path(args.split).parents[1] / "universe")
    table = evaluate_model(universe, args.split, args.seed, params)
    target = evaluation_path(args.split, args.seed)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        table.to_parquet(tmp, index=False)
    print(f"{args.split}, seed {args.seed}: greedy pass@1 {table['pass@1'].mean():.3f} over {len(table)} test tasks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
