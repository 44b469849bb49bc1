"""``synthgen results``: the verdicts and pass@1 per split, in the terminal.

    synthgen results [--metrics DIR] [--seed-set DIR ...] [--json]

Reads a ``reports/metrics`` folder (``evaluation.json``, ``scaling.json``,
``search.json``, ``headline.json`` where present, and ``../scaling/points.csv``), reads
every verdict by the rules of :mod:`synthgen.verdicts`, and prints, within 100 columns,
the verdict table (claim, figure with its interval, verdict), the instrument's floor
test, and pass@1 per split over all test functions and over those without and with a
twin in training.  ``--seed-set DIR`` (repeatable) adds runs of other training seeds (a
folder holding their ``evaluation.json``, e.g. ``reports/seed_sets/seeds_3_4_5``, and
their ``search.json`` where kept): their verdicts are shown beside the main run's and
combined (two runs that read a verdict differently make it unresolved).  ``--json``
prints the same figures as JSON.

The floor is the one the run recorded (``headline.json``'s ``floor``), else
``measurement.floor`` of the ``params.yaml`` two folders above the metrics, else the
repository's.  Where the metrics hold no pass@1 on iid functions without a twin (files
written before that figure existed), the floor test is unknown and the table says so:
verdicts marked ``*`` were read off their intervals without it.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from synthgen.params import ParamsError, load_params
from synthgen.paths import repo_root
from synthgen.split_files import SPLIT_NAMES
from synthgen.verdicts import AT_FLOOR, SEES, UNKNOWN, combine, grid_best, pass_at_1, points_path, verdicts

WIDTH = 100
UNCHECKED = " *"  # marks a verdict read without the floor test


# --- reading ---------------------------------------------------------------------------------


def _read_json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _floor(metrics: Path, headline: dict | None) -> tuple[float | None, str]:
    if headline and headline.get("floor") is not None:
        return float(headline["floor"]), "headline.json"
    candidates = [metrics.resolve().parent.parent / "params.yaml"]
    try:
        candidates.append(repo_root() / "params.yaml")
    except FileNotFoundError:
        pass
    for params in candidates:
        if params.is_file():
            try:
                return load_params(params).measurement.floor, str(params)
            except ParamsError:
                continue
    return None, "no params.yaml with measurement.floor"


def _run_name(evaluation: dict, fallback: str) -> str:
    seeds = evaluation.get("protocol", {}).get("seeds")
    return f"seeds {','.join(map(str, seeds))}" if seeds else fallback


def _pass_table(evaluation: dict) -> dict:
    out = {}
    for split in [s for s in SPLIT_NAMES if s in evaluation.get("splits", {})]:
        out[split] = {"all": pass_at_1(evaluation, split)} | {
            how: pass_at_1(evaluation, split, how) for how in ("no twin", "with twin")}
    return out


def report(metrics: str | Path, seed_sets: list[str | Path] = ()) -> dict:
    """Everything ``synthgen results`` shows, as one JSON-ready dict."""
    metrics = Path(metrics)
    evaluation = _read_json(metrics / "evaluation.json")
    if evaluation is None:
        raise FileNotFoundError(f"no evaluation.json in {metrics}")
    headline = _read_json(metrics / "headline.json")
    floor, floor_from = _floor(metrics, headline)
    grid = grid_best(points_path(metrics))
    main = verdicts(evaluation, _read_json(metrics / "scaling.json"), _read_json(metrics / "search.json"),
                    grid=grid, floor=floor)
    main_name = _run_name(evaluation, metrics.name)
    out = {"metrics": str(metrics), "run": main_name, "seeds": evaluation.get("protocol", {}).get("seeds"),
           "regions": evaluation.get("protocol", {}).get("regions"),
           "instrument": main["instrument"] | {"floor_from": floor_from},
           "verdicts": main["verdicts"], "pass@1": _pass_table(evaluation)}
    if seed_sets:
        runs = {main_name: main}
        for folder in map(Path, seed_sets):
            path = folder if folder.suffix == ".json" else folder / "evaluation.json"
            other = _read_json(path)
            if other is None:
                raise FileNotFoundError(f"no evaluation.json at {path}")
            name = _run_name(other, folder.name)
            if name in runs:
                name = f"{name} ({folder})"
            # its search (``search.json`` beside it, where kept) votes too; the scaling grid never
            # does: the grid has its own seeds, so every seed set shares the main run's
            runs[name] = verdicts(other, search=_read_json(path.parent / "search.json"), floor=floor)
        out["seed_sets"] = {name: {"instrument": r["instrument"],
                                   "verdicts": {n: v["verdict"] for n, v in r["verdicts"].items()},
                                   "read_without_floor": [n for n, v in r["verdicts"].items()
                                                          if v.get("floor_checked") is False]}
                            for name, r in runs.items()}
        out["combined"] = combine(runs)
    return out


# --- printing -----------------------------------------------------------------------------------


def _num(v, digits: int = 3, sign: bool = False, share: bool = False) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    if share:
        return f"{v:+.0%}" if sign else f"{v:.0%}"
    return f"{v:+.{digits}f}" if sign else f"{v:.{digits}f}"


def fmt(i: dict | None, digits: int = 3, sign: bool = False, share: bool = False) -> str:
    """``est [lo, hi]``, or ``n/a``."""
    if not i or i.get("est") is None:
        return "n/a"
    if i.get("lo") is None or i.get("hi") is None:
        return _num(i["est"], digits, sign, share)
    return (f"{_num(i['est'], digits, sign, share)} "
            f"[{_num(i['lo'], digits, sign, share)}, {_num(i['hi'], digits, sign, share)}]")


FORMATS = {  # how each verdict's figures print: drops as shares, differences signed
    "density": {"sign": True},
    "support_syntax": {"share": True, "sign": True},
    "support_semantics": {"share": True, "sign": True},
    "scaling": {"digits": 4},
    "search": {},
}


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else "..." + text[-(width - 3):]


def _shown(path: str) -> str:
    """A path as the reader would type it: an absolute one inside the working directory
    relative to it; anything else (a relative path, a note such as "headline.json") as is."""
    here, resolved = Path.cwd().resolve(), Path(path).resolve()
    return str(resolved.relative_to(here)) if Path(path).is_absolute() and resolved.is_relative_to(here) else path


def _row(left: str, middle: str, right: str = "") -> str:
    return f"{left:<44} {middle:<30} {right}".rstrip()


def verdict_lines(r: dict) -> list[str]:
    lines = [_row("claim / figure read", "estimate [95% interval]", "verdict"), "-" * WIDTH]
    unchecked = False
    for name, v in r["verdicts"].items():
        f = FORMATS[name]
        mark = UNCHECKED if v.get("floor_checked") is False else ""
        unchecked |= bool(mark)
        lines.append(_row(v["claim"], fmt(v, **f), v["verdict"] + mark))
        lines.append(_row(f"  {v['figure']}", ""))
        for label, i in (v.get("beside") or {}).items():
            lines.append(_row(f"  beside: {label}", fmt(i, **f)))
        if name == "scaling" and v.get("grid_best") is not None:
            lines.append(_row("  grid's best iid pass@1 / half iid greedy",
                              f"{_num(v['grid_best'])} / {_num(0.5 * v['iid_greedy'] if v.get('iid_greedy') else None)}"))
        if name == "search":
            lines.append(_row("  sample-and-filter on iid (the bar)", _num(v.get("iid_sample_and_filter"))))
            for split, sp in (v.get("splits") or {}).items():
                closes = {True: "closes the gap", False: "gap stays", None: "n/a"}[sp["closes_gap"]]
                lines.append(_row(f"  on {split} (greedy {_num(sp['greedy'])})", fmt(sp["sample_and_filter"]), closes))
    if unchecked:
        lines.append(f"{UNCHECKED.strip()} read off the interval without the floor test (the floor is unknown)")
    return lines


def instrument_lines(r: dict) -> list[str]:
    i = r["instrument"]
    floor = "unknown" if i["floor"] is None else f"{i['floor']:.2f}"
    no_twin = i["pass@1 iid no twin"]
    lines = ["the instrument: iid greedy pass@1 on test functions without a twin in training",
             f"(no training program computes them), against the floor {floor} (from {_short(_shown(i['floor_from']), 60)}):"]
    if no_twin is None:
        lines.append("  n/a: the metrics hold no pass@1 on iid functions without a twin (written before")
        lines.append("  that figure existed), so the floor test is unknown: rerun the results stage to read it.")
    else:
        n = no_twin.get("functions")
        lines.append(f"  {fmt(no_twin)} over {n} functions: "
                     + {SEES: "the instrument sees; verdicts comparing models are read",
                        AT_FLOOR: "at the floor; verdicts comparing models read untested",
                        UNKNOWN: "floor unknown"}[i["reads"]])
    return lines


def pass_lines(r: dict) -> list[str]:
    head = f"{'pass@1 (greedy)':<25} {'all functions':<20} {'without a twin':<20} {'n':>5} {'with a twin':<20} {'n':>5}"
    lines = [head, "-" * WIDTH]
    for split, row in r["pass@1"].items():
        nt, wt = row["no twin"], row["with twin"]
        lines.append(f"{split:<25} {fmt(row['all']):<20} {fmt(nt):<20} {_num(nt and nt.get('functions'), 0):>5} "
                     f"{fmt(wt):<20} {_num(wt and wt.get('functions'), 0):>5}".rstrip())
    return lines


def seed_set_lines(r: dict) -> list[str]:
    runs = r["seed_sets"]
    width = max(14, min(18, (WIDTH - 20) // (len(runs) + 1) - 1))
    lines = [(f"{'verdict':<19}" + "".join(f" {name[:width]:<{width}}" for name in runs) + " combined").rstrip(),
             "-" * WIDTH]
    for name, word in r["combined"].items():
        cells = [run["verdicts"].get(name, "n/a") + (UNCHECKED if name in run["read_without_floor"] else "")
                 for run in runs.values()]
        if any(name in run["read_without_floor"] for run in runs.values()):
            word += UNCHECKED
        lines.append((f"{name:<19}" + "".join(f" {c:<{width}}" for c in cells) + f" {word:<{width}}").rstrip())
    lines.append("a verdict two runs read differently is unresolved; n/a: the run has no such figure")
    if any(run["read_without_floor"] for run in runs.values()):
        lines.append(f"{UNCHECKED.strip()} read off the interval without the floor test (the floor is unknown)")
    return lines


def render(r: dict) -> str:
    seeds = ", ".join(map(str, r["seeds"] or [])) or "n/a"
    parts = [[f"synthgen results: {_short(_shown(r['metrics']), WIDTH - 18)}",
              f"training seeds {seeds}; {r['regions']} held-out regions per support split; 95% hierarchical "
              "bootstrap intervals", "the rules: synthgen/verdicts.py"],
             instrument_lines(r), verdict_lines(r), pass_lines(r)]
    if "seed_sets" in r:
        parts.append(seed_set_lines(r))
    return "\n\n".join("\n".join(p) for p in parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="synthgen results", description="The verdicts, the floor test and pass@1 "
                                     "per split, read off a reports/metrics folder (rules: synthgen/verdicts.py).")
    parser.add_argument("--metrics", default=None, metavar="DIR", help="a reports/metrics folder (default: the repository's)")
    parser.add_argument("--seed-set", action="append", default=[], metavar="DIR",
                        help="a folder with another seed set's evaluation.json (repeatable)")
    parser.add_argument("--json", action="store_true", help="print the same figures as JSON")
    args = parser.parse_args(argv)
    metrics = Path(args.metrics) if args.metrics else repo_root() / "reports" / "metrics"
    r = report(metrics, args.seed_set)
    print(json.dumps(r, indent=2) if args.json else render(r))
    return 0
