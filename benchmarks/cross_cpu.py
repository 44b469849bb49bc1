"""The committed run against units trained on another machine: per-seed pass@1 and each
density sampler minus random, by the pipeline's own estimator (synthgen.results: paired
hierarchical bootstrap over seeds and functions, raw and matched to iid's mix).

    python benchmarks/cross_cpu.py WORKSPACE [--committed reports/metrics/evaluation.json]

WORKSPACE is a checkout whose data stages ran on that machine (``dvc repro splits``) and
where some section-5 units were trained and evaluated there (``python -m synthgen.notebook
05_training -p split S -p seed K --output 05_training_S_seedK``, then ``python -m
synthgen.evaluate S K``).  It needs iid's seed 0 (the reference mix) and density_random's
evaluations; each diverse sampler is compared over the seeds it shares with random.  The
figures of docs/results.md ("On another CPU") come from it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # noqa: E402

from synthgen.params import load_params  # noqa: E402
from synthgen.paths import evaluation_path  # noqa: E402
from synthgen.results import by_seed, difference, estimate, labels_of, load_outcomes, matched_weights, reference_mix  # noqa: E402
from synthgen.split_files import DENSITY_SPLITS  # noqa: E402
from synthgen.universe import read_universe  # noqa: E402


def trained_seeds(root: Path, split: str, seeds) -> list[int]:
    return [s for s in seeds if evaluation_path(split, s, root).is_file()]


def minus_random(outcomes: pd.DataFrame, split: str, P) -> dict:
    """``split`` minus density_random's pass@1, raw and matched to iid's mix (the outcomes
    hold iid's for the mix): the pipeline's paired difference, by how."""
    weights = matched_weights(reference_mix(outcomes, P), labels_of(outcomes, "density_random", P))
    return {how: difference(estimate(outcomes, split, P, "pass@1", w), estimate(outcomes, "density_random", P, "pass@1", w))
            for how, w in (("raw", None), ("matched", weights))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("workspace", type=Path)
    ap.add_argument("--committed", type=Path, default=ROOT / "reports/metrics/evaluation.json")
    args = ap.parse_args()
    root = args.workspace.resolve()
    P = load_params(root / "params.yaml")
    universe = read_universe(root / "artifacts/universe")
    committed = json.loads(args.committed.read_text())
    random_seeds = trained_seeds(root, "density_random", P.seeds)
    if not trained_seeds(root, "iid", [0]) or not random_seeds:
        sys.exit("cross_cpu: needs the evaluations of iid seed 0 and of density_random in " + str(root))
    for split in DENSITY_SPLITS[1:]:
        seeds = trained_seeds(root, split, random_seeds)
        if not seeds:
            continue
        outcomes = pd.concat([load_outcomes(universe, P, ["iid"], seeds=[0], root=root),
                              load_outcomes(universe, P, ["density_random", split], seeds=seeds, root=root)],
                             ignore_index=True)
        per_seed = by_seed(outcomes, [split, "density_random"]).round(3)
        print(f"{split}, seeds {seeds}: pass@1 per seed {per_seed.loc[split].tolist()}, random "
              f"{per_seed.loc['density_random'].tolist()}; committed {list(committed['splits'][split]['per_seed'].values())}")
        for how, d in minus_random(outcomes, split, P).items():
            lo, hi = d.interval(P.evaluation.confidence)
            c = committed["density"][f"{split}_minus_random"][how]
            print(f"  {split} - random, {how}: here {d.estimate:+.4f} [{lo:+.4f}, {hi:+.4f}]; committed "
                  f"{c['estimate']:+.4f} [{c['ci'][0]:+.4f}, {c['ci'][1]:+.4f}]")
        e = estimate(outcomes, split, P)
        lo, hi = e.interval(P.evaluation.confidence)
        c = committed["splits"][split]["pass@1"]
        print(f"  pass@1: here {e.estimate:.4f} [{lo:.4f}, {hi:.4f}]; committed {c['estimate']:.4f} {c['ci']}")


if __name__ == "__main__":
    main()
