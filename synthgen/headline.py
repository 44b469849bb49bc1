"""The headline stage: the study's verdicts at a glance, in one small metrics file.

    python -m synthgen.headline        # reports/metrics/headline.json

``dvc metrics show`` and ``dvc exp show`` read this file first (it is the pipeline's only
metrics file; the detailed JSON of each stage is a plain output).  It holds pass@1 per
split and, per verdict of the study, the estimate and its interval, and the verdicts
themselves, read by the rules of :mod:`synthgen.verdicts`:

- ``pass@1``: each split's greedy pass@1 (estimate);
- ``pass@1 iid no twin``: iid's on its test functions without a twin in training, the
  instrument's floor test, beside ``floor`` (``measurement.floor``) and ``instrument``
  (``sees``, ``at the floor`` or ``unknown``);
- ``density S - random``: each sampler minus random, matched strata;
- ``support_S drop (no twin)``: the primary support figure, the drop against iid's
  functions without a twin, matched strata; ``support_S drop``: against all iid
  functions, matched (the raw drops stay in ``evaluation.json``);
- ``scaling slope support_syntax - iid``, ``search support_syntax sample-and-filter``;
- ``verdicts``: one word per claim (density, support_syntax, support_semantics, scaling,
  search).

Every interval is the hierarchical bootstrap's (seeds, regions, functions), as in the
detailed files.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from synthgen.atomic import write_json
from synthgen.params import load_params
from synthgen.paths import metrics_path
from synthgen.verdicts import grid_best, pass_at_1, points_path, verdicts

SOURCES = ("evaluation", "scaling", "search")


def _triple(estimate, ci) -> dict:
    lo, hi = ci if ci is not None else (None, None)
    return {"est": estimate, "lo": lo, "hi": hi}


def headline(evaluation: dict, scaling: dict, search: dict, floor: float | None = None,
             grid: float | None = None) -> dict:
    """The headline figures from the detailed metrics of notebooks 06, 07 and 08: pass@1
    per split (estimate only), and each verdict's figure with its interval and its word
    (:func:`synthgen.verdicts.verdicts`; ``grid``: the scaling grid's best iid pass@1).
    The raw figures and every other interval stay in the detailed files."""
    out: dict = {"pass@1": {s: m["pass@1"]["estimate"] for s, m in evaluation["splits"].items()}}
    no_twin = pass_at_1(evaluation, "iid", "no twin")
    if no_twin:
        out["pass@1 iid no twin"] = _triple(no_twin["est"], (no_twin["lo"], no_twin["hi"]))
    for name, estimates in evaluation["density"].items():
        sampler = name.removeprefix("density_").removesuffix("_minus_random")
        out[f"density {sampler} - random"] = _triple(estimates["matched"]["estimate"], estimates["matched"]["ci"])
    for name, estimates in evaluation["support"].items():
        if "matched" in estimates:
            out[f"{name.removesuffix('_drop')} drop"] = _triple(estimates["matched"]["estimate"], estimates["matched"]["ci"])
        if "matched, no twin" in estimates:
            nt = estimates["matched, no twin"]
            out[f"{name.removesuffix('_drop')} drop (no twin)"] = _triple(nt["estimate"], nt["ci"])
    versus = scaling.get("support_syntax_vs_iid")
    if versus:
        out["scaling slope support_syntax - iid"] = _triple(versus["slope_difference"], versus["slope_difference_ci"])
    best = search.get("pass@1", {}).get("support_syntax", {}).get("sample_and_filter")
    if best:
        out["search support_syntax sample-and-filter"] = _triple(best["mean"], best["ci"])
    out["seeds"] = len(evaluation["protocol"]["seeds"])
    out["regions"] = evaluation["protocol"]["regions"]
    read = verdicts(evaluation, scaling, search, grid=grid, floor=floor)
    if floor is not None:
        out["floor"] = floor
    out["instrument"] = read["instrument"]["reads"]
    out["verdicts"] = {name: v["verdict"] for name, v in read["verdicts"].items()}
    return out


def main(argv: list[str] | None = None) -> int:
    sources = {name: json.loads(Path(metrics_path(name)).read_text()) for name in SOURCES}
    floor = load_params().measurement.floor
    grid = grid_best(points_path(metrics_path("headline").parent))
    write_json(metrics_path("headline"), headline(**sources, floor=floor, grid=grid))
    print(f"headline: {metrics_path('headline')}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
