"""How much does the draw of a training set decide?  The density comparisons with a fresh
draw of every sampler's training set per training seed.

    python benchmarks/sampler_draws.py draw WORKSPACE DRAW OUT    # OUT: WORKSPACE with draw DRAW's training sets
    python benchmarks/sampler_draws.py compare WS0 WS1 WS2 ...    # WSd: draw d, its units trained with seed d

The study draws each density sampler's training set once (from the root ``seed``) and
trains three seeds on it, so its intervals resample training seeds and test functions but
not the draw: a sampler that happened to draw a good or a bad set reads as a property of
the sampler.  This measures that draw.  ``draw`` redraws the four samplers' training sets
from the same candidates (the shifted test set, the validation functions and the leakage
guard are untouched: the test set is the same, function by function) with the random
stream ``(seed, "splits", <split>, "draw", DRAW)`` in place of the stage's
``(seed, "splits", <split>)``, and writes them into OUT, a copy of WORKSPACE (files
hard-linked; the split files are replaced, not written through).  DRAW 0 is the stage's
own draw: it must give WORKSPACE's files (checked), which ties the redraw to the stage's
code.  Train and evaluate in OUT with the pipeline's own commands, seed DRAW:

    python -m synthgen.notebook 05_training -p split S -p seed D --output 05_training_S_seedD
    python -m synthgen.evaluate S D

``compare`` takes draw d's evaluations at training seed d (iid's seed 0 of WS0 gives the
reference mix) and reads them with the pipeline's estimator as if they were one split's
three seeds: each "seed" is then a fresh draw *and* a fresh training seed, and the
hierarchical bootstrap resamples both.  Beside it, the study's protocol on WS0 alone (one
draw, seeds 0-2, where WS0 has them).  It also prints how much the draws of one sampler
share, and how much each draw shares with the other samplers' sets.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]  # noqa: E402

import synthgen.splits as splits_module  # noqa: E402
from synthgen.params import load_params  # noqa: E402
from cross_cpu import minus_random, trained_seeds  # noqa: E402
from synthgen.results import by_seed, load_outcomes  # noqa: E402
from synthgen.seeding import rng_for  # noqa: E402
from synthgen.split_files import DENSITY_SPLITS, read_split, write_split  # noqa: E402
from synthgen.splits import DensityFamily, candidate_pool, draw_validation, load_split_inputs  # noqa: E402
from synthgen.universe import read_universe  # noqa: E402

#: folders of a workspace that hold what training and evaluation write: not copied
TRAINED = ("artifacts/models", "artifacts/checkpoints", "artifacts/evaluation", "reports")


def density_family(root: Path, draw: int) -> list:
    """The density family's splits of the workspace at ``root``, its training sets from draw
    ``draw`` (0: the splits stage's own).  The candidates are make_splits' (pool, less the
    validation programs; validation functions blocked from the test set)."""
    P = load_params(root / "params.yaml")
    cfg = P.splits
    inputs = load_split_inputs(root / "artifacts/universe", root / "artifacts/spaces")
    pool = candidate_pool(inputs.universe, cfg.pool, cfg.min_size)
    validation, _ = draw_validation(inputs.universe, pool, cfg.validation_size, cfg.test_size, P.seed)
    pool = np.setdiff1d(pool, validation)
    family = DensityFamily(
        train_size=cfg.train_size, test_size=cfg.test_size, seed=P.seed, tasks_per_function=cfg.tasks_per_function,
        blocked=np.unique(inputs.universe.semantic_class[validation]), cells=cfg.density.cells,
        neighbours=cfg.density.neighbours, tilt=cfg.density.tilt, reference=cfg.density.reference,
        fit_sample=cfg.density.fit_sample, guard=cfg.guard == "all",
    )

    def redraw(seed, *parts):  # only the training sets' streams, named after their split
        if draw and len(parts) == 2 and parts[0] == "splits" and parts[1] in DENSITY_SPLITS:
            parts = (*parts, "draw", draw)
        return rng_for(seed, *parts)

    with mock.patch.object(splits_module, "rng_for", redraw):
        return family.split(inputs, pool)


def cmd_draw(workspace: Path, draw: int, out: Path) -> None:
    workspace, out = workspace.resolve(), out.resolve()
    family = density_family(workspace, draw)
    if draw == 0:
        for s in family:
            train, test, _ = read_split(workspace / "artifacts/splits" / f"{s.name}.parquet")
            if not (np.array_equal(train, s.train) and np.array_equal(test.program_id.to_numpy(), s.test)):
                sys.exit(f"sampler_draws: draw 0 of {s.name} is not the splits stage's: {workspace} ran other code")
        print("draw 0 is the splits stage's draw (every training and test set checked)")
    if out.exists():
        sys.exit(f"sampler_draws: {out} exists")
    ignore = shutil.ignore_patterns(".git")
    shutil.copytree(workspace, out, symlinks=True, copy_function=os.link, ignore=ignore)
    for folder in TRAINED:
        shutil.rmtree(out / folder, ignore_errors=True)
    for s in family:  # write_split replaces the file (atomic rename): the workspace's copy stays
        write_split(s, out / "artifacts/splits")
        print(f"{s.name}: draw {draw}, {len(s.train):,} training programs, {len(s.test):,} test programs")


def shared(a: np.ndarray, b: np.ndarray) -> float:
    return len(np.intersect1d(a, b, assume_unique=True)) / len(a)


def cmd_compare(workspaces: list[Path]) -> None:
    roots = [w.resolve() for w in workspaces]
    P = load_params(roots[0] / "params.yaml")
    universe = read_universe(roots[0] / "artifacts/universe")
    conf = P.evaluation.confidence
    sets = {s: [read_split(r / "artifacts/splits" / f"{s}.parquet")[0] for r in roots] for s in DENSITY_SPLITS}
    tests = [read_split(r / "artifacts/splits/density_random.parquet")[1].program_id.to_numpy() for r in roots]
    if not all(np.array_equal(tests[0], t) for t in tests):
        sys.exit("sampler_draws: the workspaces' density test sets differ")
    print(f"{len(roots)} draws of each training set; share of draw 0's programs that draw d holds, "
          "and of each draw's that random's same draw holds:")
    rows = {s: {**{f"draw {d} vs 0": shared(sets[s][d], sets[s][0]) for d in range(1, len(roots))},
                **{f"vs random, draw {d}": shared(sets[s][d], sets["density_random"][d]) for d in range(len(roots))}}
            for s in DENSITY_SPLITS}
    print(pd.DataFrame(rows).T.round(3).to_string(), "\n")

    iid = load_outcomes(universe, P, ["iid"], seeds=[0], root=roots[0])
    frames = []
    for d, r in enumerate(roots):
        have = [s for s in DENSITY_SPLITS if trained_seeds(r, s, [d])]
        if have:
            frames.append(load_outcomes(universe, P, have, seeds=[d], root=r))
    drawn = pd.concat([iid, *frames], ignore_index=True)
    protocol = trained_seeds(roots[0], "density_random", P.seeds)
    complete = [s for s in DENSITY_SPLITS if trained_seeds(roots[0], s, protocol) == protocol]
    study = pd.concat([iid, load_outcomes(universe, P, complete, seeds=protocol, root=roots[0])], ignore_index=True)
    present = [s for s in DENSITY_SPLITS if s in set(drawn.split)]
    print("greedy pass@1 per draw (draw d trained with seed d):")
    print(by_seed(drawn, present).round(3).to_string(), "\n")
    print(f"greedy pass@1 per seed, one draw (draw 0, seeds {protocol}):")
    print(by_seed(study, [s for s in DENSITY_SPLITS if s in set(study.split)]).round(3).to_string(), "\n")
    rows = []
    for name, outcomes in ((f"{len(roots)} draws x 1 seed each", drawn), (f"1 draw x seeds {protocol}", study)):
        for split in DENSITY_SPLITS[1:]:
            if split not in set(outcomes.split):
                continue
            for how, diff in minus_random(outcomes, split, P).items():
                lo, hi = diff.interval(conf)
                rows.append({"design": name, "comparison": f"{split.removeprefix('density_')} - random", "how": how,
                             "estimate": round(diff.estimate, 4), "ci": f"[{lo:+.4f}, {hi:+.4f}]"})
    print(f"each sampler minus random (paired over the shared test functions; {conf:.0%} hierarchical bootstrap):")
    print(pd.DataFrame(rows).to_string(index=False))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    d = sub.add_parser("draw", help="a copy of WORKSPACE with draw DRAW of the density training sets")
    d.add_argument("workspace", type=Path)
    d.add_argument("draw", type=int)
    d.add_argument("out", type=Path)
    c = sub.add_parser("compare", help="the density comparisons over draws")
    c.add_argument("workspaces", type=Path, nargs="+", help="draw 0's workspace first, then draw 1's, ...")
    args = ap.parse_args()
    if args.command == "draw":
        cmd_draw(args.workspace, args.draw, args.out)
    else:
        cmd_compare(args.workspaces)


if __name__ == "__main__":
    main()
