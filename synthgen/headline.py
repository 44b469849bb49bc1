"""The headline stage: the study's verdicts at a glance, in one small metrics file.

    python -m synthgen.headline        # reports/metrics/headline.json

``dvc metrics show`` and ``dvc exp show`` read this file first (it is the pipeline's only
metrics file; the detailed JSON of each stage is a plain output).  It holds pass@1 per
split and, per verdict of the study, the estimate and its interval: the density
comparisons and the support drops on matched strata (their raw figures are in
``evaluation.json``), the slope difference of the scaling fits, and what sample-and-filter
search reaches on support_syntax.  Every interval is the
hierarchical bootstrap's (seeds, regions, functions), as in the detailed files.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from synthgen.atomic import write_json
from synthgen.paths import metrics_path

SOURCES = ("evaluation", "scaling", "search")


def _triple(estimate, ci) -> dict:
    lo, hi = ci if ci is not None else (None, None)
    return {"est": estimate, "lo": lo, "hi": hi}


def headline(evaluation: dict, scaling: dict, search: dict) -> dict:
    """The headline figures from the detailed metrics of notebooks 06, 07 and 08: pass@1
    per split (estimate only), and each verdict on matched strata with its interval.  The
    raw figures and every other interval stay in the detailed files."""
    out: dict = {"pass@1": {s: m["pass@1"]["estimate"] for s, m in evaluation["splits"].items()}}
    for name, estimates in evaluation["density"].items():
        sampler = name.removeprefix("density_").removesuffix("_minus_random")
        out[f"density {sampler} - random"] = _triple(estimates["matched"]["estimate"], estimates["matched"]["ci"])
    for name, estimates in evaluation["support"].items():
        if "matched" in estimates:
            out[f"{name.removesuffix('_drop')} drop"] = _triple(estimates["matched"]["estimate"], estimates["matched"]["ci"])
    versus = scaling.get("support_syntax_vs_iid")
    if versus:
        out["scaling slope support_syntax - iid"] = _triple(versus["slope_difference"], versus["slope_difference_ci"])
    best = search.get("pass@1", {}).get("support_syntax", {}).get("sample_and_filter")
    if best:
        out["search support_syntax sample-and-filter"] = _triple(best["mean"], best["ci"])
    out["seeds"] = len(evaluation["protocol"]["seeds"])
    out["regions"] = evaluation["protocol"]["regions"]
    return out


def main(argv: list[str] | None = None) -> int:
    sources = {name: json.loads(Path(metrics_path(name)).read_text()) for name in SOURCES}
    write_json(metrics_path("headline"), headline(**sources))
    print(f"headline: {metrics_path('headline')}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
