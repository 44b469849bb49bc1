"""The study's verdicts, read off the metrics files by fixed rules (STUDY.md section 8).

Every verdict of the study is computed here and nowhere else: the ``headline`` stage
writes them into ``reports/metrics/headline.json`` and ``synthgen results`` prints them.
The inputs are the metrics JSON the pipeline writes (``evaluation.json`` of notebook 06,
``scaling.json`` and ``reports/scaling/points.csv`` of notebook 07, ``search.json`` of
notebook 08); an interval is ``{"est", "lo", "hi"}``, the 95% hierarchical bootstrap
interval of the detailed file.  The rules were fixed before the runs they read:

**The instrument floor.**  The iid model's greedy pass@1 on the iid test functions
*without a twin in training* (no training program computes the function: the case of
every held-out function) must reach ``measurement.floor`` (params.yaml, default 0.10):
the estimate, not its interval, is compared.  Below it, every verdict that compares
models (density, both support drops, scaling) reads **untested**: a synthesizer that
solves almost no new function cannot show a shift.  Where the metrics hold no such
figure (files written before it existed) the floor is **unknown**: the verdicts are
read off their intervals and flagged ``floor_checked: false``, and every reader says so.

**density** (the paper: diverse sampling over both spaces gives robust generalization
under density shift): **supported** if the matched interval of diverse_both − random lies
above 0 (lo > 0), else **not supported**.

**The support drops** ``1 − pass@1(split) / pass@1(iid)``.  The primary figure is the drop
against iid's test functions *without a twin in training*, matched on strata
(``evaluation.json``'s ``support[...]["matched, no twin"]``): held-out functions never
have one, so this compares like with like.  Where a file lacks it, the drop against all
iid functions, matched, stands in (and says so); both it and the raw drop are kept
beside the primary figure.

- **support_syntax** (the paper: syntactically novel programs cost more than 30%):
  **agrees** if the interval lies above 0 and reaches 30% (lo > 0 and hi >= 0.30),
  **contradicts** if it lies below 30% (hi < 0.30), **unresolved** if it holds both 0
  and 30% (lo <= 0 and hi >= 0.30).
- **support_semantics** (the paper: semantic extrapolation stays robust):
  **contradicts** if the interval lies above 0 (lo > 0), **agrees** if it lies below
  30% and not above 0 (lo <= 0 and hi < 0.30), **unresolved** otherwise.

**scaling** (the paper: pass@1 grows log-linearly with training compute): **untested**
if the instrument is at the floor, or if the scaling grid's best pass@1 on iid (the
highest point of ``reports/scaling/points.csv``'s iid rows, each a mean over the grid's
seeds) is below half the section-5 iid greedy pass@1 (``evaluation.json``): a grid
that never comes near the model it extrapolates to tests nothing.  Otherwise
**supported** if the best form of the iid fit (lowest held-out error) is ``log_linear``
and its slope interval lies above 0, **contradicts** otherwise.

**search** (beyond the paper: search breaks the generalization bottleneck).  On a
support split, search *closes the gap* when sample-and-filter's interval there lies
above the split's own greedy pass@1 (lo > greedy estimate: search adds something) and
reaches sample-and-filter's estimate on iid (hi >= that: the held-out functions no
longer fall behind iid's under search).  **supported** if it closes the gap on every
support split, **partly** if on some, **not supported** if on none.  No floor: search
scores against a fixed oracle (the examples), and greedy is beside it.

**Two seed sets.**  :func:`combine` reads the same rules on several runs (the default
run and e.g. ``reports/seed_sets/seeds_3_4_5/evaluation.json``): a verdict that two runs
read differently is **unresolved**.

A verdict with no figure to read (a file missing, a key absent) is ``"n/a"``.
"""

from __future__ import annotations

import csv
from pathlib import Path

from synthgen.split_files import SUPPORT_SPLITS

THRESHOLD = 0.30  # the paper's "more than 30%"
UNTESTED, NA, UNRESOLVED = "untested", "n/a", "unresolved"
AT_FLOOR, SEES, UNKNOWN = "at the floor", "sees", "unknown"

CLAIMS = {  # verdict name -> the claim in short words (the first column of `synthgen results`)
    "density": "diverse sampling (both spaces) is robust",
    "support_syntax": "syntactically novel programs cost > 30%",
    "support_semantics": "semantic extrapolation stays robust",
    "scaling": "pass@1 grows log-linearly with compute",
    "search": "search breaks the bottleneck (beyond paper)",
}
GATED = ("density", "support_syntax", "support_semantics", "scaling")  # compare models: need the floor
SUPPORT_FIGURES = (("matched, no twin", "drop vs iid without a twin, matched"),
                   ("matched", "drop vs all iid, matched"), ("raw", "drop vs all iid, raw"))


# --- intervals --------------------------------------------------------------------------------


def interval(est, lo=None, hi=None) -> dict:
    return {"est": est, "lo": lo, "hi": hi}


def from_summary(s: dict | None) -> dict | None:
    """``{"estimate", "ci": [lo, hi]}`` (the detailed files) as ``{"est", "lo", "hi"}``."""
    if not s or s.get("estimate") is None:
        return None
    lo, hi = s.get("ci") or (None, None)
    return interval(s["estimate"], lo, hi)


def _complete(i: dict | None) -> bool:
    return i is not None and None not in (i.get("est"), i.get("lo"), i.get("hi"))


# --- the rules, each on one interval ------------------------------------------------------------


def instrument(no_twin: dict | None, floor: float | None) -> str:
    """``sees`` if iid's greedy pass@1 on functions without a twin reaches ``floor``,
    ``at the floor`` if below it, ``unknown`` without the figure or the floor."""
    if no_twin is None or no_twin.get("est") is None or floor is None:
        return UNKNOWN
    return SEES if no_twin["est"] >= floor else AT_FLOOR


def density_rule(diff: dict | None) -> str:
    if not _complete(diff):
        return NA
    return "supported" if diff["lo"] > 0 else "not supported"


def syntax_drop_rule(drop: dict | None) -> str:
    if not _complete(drop):
        return NA
    if drop["hi"] < THRESHOLD:
        return "contradicts"
    return "agrees" if drop["lo"] > 0 else UNRESOLVED


def semantics_drop_rule(drop: dict | None) -> str:
    if not _complete(drop):
        return NA
    if drop["lo"] > 0:
        return "contradicts"
    return "agrees" if drop["hi"] < THRESHOLD else UNRESOLVED


def scaling_rule(fit: dict | None, grid_best: float | None, iid_greedy: float | None) -> str:
    """The scaling verdict before the floor: ``fit`` is scaling.json's ``fits.iid``."""
    if not fit or grid_best is None or iid_greedy is None:
        return NA
    if grid_best < 0.5 * iid_greedy:
        return UNTESTED
    slope_lo = (fit.get("b_ci") or [None])[0]
    return "supported" if fit.get("best_form") == "log_linear" and slope_lo is not None and slope_lo > 0 else "contradicts"


def closes_gap(sample_and_filter: dict | None, greedy: float | None, iid_sample_and_filter: float | None) -> bool | None:
    """Search closes a support split's gap (see the module's docstring); None without figures."""
    if not _complete(sample_and_filter) or greedy is None or iid_sample_and_filter is None:
        return None
    return sample_and_filter["lo"] > greedy and sample_and_filter["hi"] >= iid_sample_and_filter


def search_rule(closed: dict[str, bool | None]) -> str:
    known = [v for v in closed.values() if v is not None]
    if not known or len(known) < len(closed):
        return NA
    return "supported" if all(known) else "partly" if any(known) else "not supported"


# --- reading the metrics files ------------------------------------------------------------------


def pass_at_1(evaluation: dict, split: str, twin: str | None = None) -> dict | None:
    """A split's greedy pass@1 over all its test functions (``twin=None``) or over those
    ``"no twin"`` / ``"with twin"`` in its training set (with ``functions``)."""
    if twin is None:
        return from_summary(evaluation.get("splits", {}).get(split, {}).get("pass@1"))
    s = evaluation.get("twin", {}).get(split, {}).get(twin)
    i = from_summary(s)
    return None if i is None else i | {"functions": s.get("functions")}


def points_path(metrics_dir: str | Path) -> Path:
    """The scaling grid's points beside a ``reports/metrics`` folder: ``reports/scaling/points.csv``."""
    return Path(metrics_dir).parent / "scaling" / "points.csv"


def grid_best(points_csv: str | Path, split: str = "iid") -> float | None:
    """The highest pass@1 of the scaling grid on ``split`` (reports/scaling/points.csv)."""
    path = Path(points_csv)
    if not path.is_file():
        return None
    with path.open() as f:
        values = [float(r["pass@1"]) for r in csv.DictReader(f) if r.get("split") == split]
    return max(values) if values else None


def _search_interval(entry: dict | None) -> dict | None:
    if not entry or entry.get("mean") is None:
        return None
    lo, hi = entry.get("ci") or (None, None)
    return interval(entry["mean"], lo, hi)


def verdicts(evaluation: dict, scaling: dict | None = None, search: dict | None = None,
             grid: float | None = None, floor: float | None = None) -> dict:
    """Every verdict of one run: ``{"instrument": {...}, "verdicts": {name: {...}}}``.
    Each verdict has ``claim``, ``figure`` (what was read), ``est``/``lo``/``hi``,
    ``verdict`` (after the floor), ``rule`` (the interval's reading before it),
    ``floor_checked`` (False: read without the floor test, the floor being unknown; None:
    the floor does not bear on it) and, for the support drops, ``beside`` (the other figures).
    ``grid``: the scaling grid's best iid pass@1 (:func:`grid_best`)."""
    no_twin = pass_at_1(evaluation, "iid", "no twin")
    sees = instrument(no_twin, floor)
    out: dict = {}

    both = evaluation.get("density", {}).get("density_diverse_both_minus_random", {})
    d = from_summary(both.get("matched"))
    out["density"] = {"figure": "diverse_both - random, matched", **(d or interval(None)), "rule": density_rule(d)}

    for split, rule in (("support_syntax", syntax_drop_rule), ("support_semantics", semantics_drop_rule)):
        figures = evaluation.get("support", {}).get(f"{split}_drop", {})
        read = {how: from_summary(figures.get(how)) for how, _ in SUPPORT_FIGURES}
        primary = next(((how, label) for how, label in SUPPORT_FIGURES[:2] if read[how] is not None), None)
        if primary is None:
            out[split] = {"figure": "drop vs iid", **interval(None), "rule": NA, "beside": {}}
            continue
        how, label = primary
        out[split] = {"figure": label, **read[how], "rule": rule(read[how]),
                      "beside": {lbl: read[h] for h, lbl in SUPPORT_FIGURES if h != how and read[h] is not None}}

    fit = (scaling or {}).get("fits", {}).get("iid")
    iid = pass_at_1(evaluation, "iid")
    slope = interval(fit.get("b"), *(fit.get("b_ci") or (None, None))) if fit else interval(None)
    out["scaling"] = {"figure": f"iid slope per decade of compute (best form: {fit.get('best_form') if fit else 'n/a'})",
                      **slope, "rule": scaling_rule(fit, grid, iid["est"] if iid else None),
                      "grid_best": grid, "iid_greedy": iid["est"] if iid else None}

    per_split = (search or {}).get("pass@1", {})
    if per_split:
        iid_sf = (per_split.get("iid", {}).get("sample_and_filter") or {}).get("mean")
        closed, figures = {}, {}
        for split in SUPPORT_SPLITS:
            methods = per_split.get(split, {})
            sf = _search_interval(methods.get("sample_and_filter"))
            greedy = (methods.get("greedy") or {}).get("mean")
            closed[split] = closes_gap(sf, greedy, iid_sf)
            figures[split] = {"sample_and_filter": sf, "greedy": greedy, "closes_gap": closed[split]}
        first = figures[SUPPORT_SPLITS[0]]["sample_and_filter"] or interval(None)
        out["search"] = {"figure": f"sample-and-filter on {SUPPORT_SPLITS[0]}", **first,
                         "rule": search_rule(closed), "iid_sample_and_filter": iid_sf, "splits": figures}
    else:
        out["search"] = {"figure": "sample-and-filter on the support splits", **interval(None), "rule": NA}

    for name, v in out.items():
        v["claim"] = CLAIMS[name]
        gated = name in GATED and v.get("est") is not None  # a figure to read, compared across models
        v["verdict"] = UNTESTED if gated and sees == AT_FLOOR else v["rule"]
        # checked: the floor test was applied; None where it cannot change the verdict
        v["floor_checked"] = (sees != UNKNOWN) if gated and v["rule"] not in (NA, UNTESTED) else None
    return {"instrument": {"pass@1 iid no twin": no_twin, "floor": floor, "reads": sees}, "verdicts": out}


def combine(runs: dict[str, dict]) -> dict[str, str]:
    """One verdict per claim over several runs (``{run name: verdicts(...)}``): the runs'
    common verdict, or ``unresolved`` where two runs read it differently.  A run without
    the figure (``n/a``, e.g. a seed set with no scaling grid) does not vote."""
    names = list(dict.fromkeys(n for r in runs.values() for n in r["verdicts"]))
    out = {}
    for name in names:
        read = {r["verdicts"][name]["verdict"] for r in runs.values() if name in r["verdicts"]} - {NA}
        out[name] = NA if not read else read.pop() if len(read) == 1 else UNRESOLVED
    return out
