"""The number tables of docs/results.md, printed from the study's metrics:

    python -m synthgen.doc_tables [--metrics DIR]                  # print them
    python -m synthgen.doc_tables --write docs/results.md         # put them in the file

In docs/results.md each table follows a marker line, ``<!-- doc_tables: NAME -->``;
``--write`` replaces the table after each marker with the one the metrics give, so that
after a rerun of the study its tables are regenerated, not retyped, and
``tests/test_doc_tables.py`` checks that the file holds what the committed metrics give.

- the synthesizer on every split (``evaluation.json``): greedy pass@1, per seed, on the
  functions without and with a twin in training, pass@k at the largest k, and the share of
  outputs consistent with the examples;
- the scaling fits (``scaling.json``) and pass@1 on iid at each point of the grid
  (``reports/scaling/points.csv``, the mean over training seeds);
- search at each method's largest budget (``search.json``);
- for the README: iid's greedy pass@1 on all its test functions and on those without and
  with a twin in training (the instrument's floor test), and the verdict table, both as
  ``synthgen results`` reads them (synthgen/results_table.py, the rules of
  synthgen/verdicts.py).

``--write FILE`` fills the tables whose markers FILE holds.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from synthgen.atomic import write_text
from synthgen.results_table import FORMATS, fmt, report
from synthgen.split_files import SPLIT_NAMES
from synthgen.verdicts import points_path

# search.json's methods, in the order the table shows them, with their column names
SEARCH_COLUMNS = (("greedy", "greedy"), ("sample_and_filter", "sample-and-filter ({budget:,})"),
                  ("best_first", "best-first ({budget:,})"), ("enumerative", "enumerative ({budget:,} programs)"))
FORMS = ("log_linear", "saturating", "logistic")


def ci(estimate: float | None, interval) -> str:
    """``0.096 [0.079, 0.116]`` (synthgen results' format) from an estimate and its interval."""
    return fmt({"est": estimate, "lo": interval[0], "hi": interval[1]})


def _in_study_order(by_split: dict) -> list:
    """``by_split``'s items in the study's order of splits (SPLIT_NAMES), any other after."""
    rank = {name: i for i, name in enumerate(SPLIT_NAMES)}
    return sorted(by_split.items(), key=lambda item: (rank.get(item[0], len(rank)), item[0]))


def _row(cells) -> str:
    return ("| " + " | ".join(cells) + " |").replace("|  |", "| |")


def _mean3(values: list[float]) -> str:
    """The mean to three decimals, halves rounded up (0.0265: 0.027), as the text reads it."""
    mean = Decimal(str(sum(values) / len(values)))
    return str(mean.quantize(Decimal("0.001"), rounding=ROUND_HALF_UP))


def splits_table(evaluation: dict) -> str:
    """The synthesizer on every split: one row per split, as evaluation.json holds it."""
    splits = evaluation["splits"]
    k = max(int(name.split("@")[1]) for name in next(iter(splits.values())) if name.startswith("pass@"))
    lines = [_row(("split", "pass@1 (greedy)", "per seed", "without a twin in training (functions)",
                   "with a twin (functions)", f"pass@{k} (sampled)", "consistent with the K examples")),
             "|---|---|---|---|---|---|---|"]
    for split, m in _in_study_order(splits):
        twin = evaluation["twin"][split]
        seeds = " / ".join(f"{m['per_seed'][s]:.3f}" for s in sorted(m["per_seed"], key=int))
        no, yes = twin["no twin"], twin["with twin"]
        if not yes["functions"]:
            without, with_ = f"(all {no['functions']:,})", ""
        else:
            without = f"{ci(no['estimate'], no['ci'])} ({no['functions']:,})"
            with_ = f"{ci(yes['estimate'], yes['ci'])} ({yes['functions']:,})"
        lines.append(_row((split, ci(m["pass@1"]["estimate"], m["pass@1"]["ci"]), seeds, without, with_,
                           ci(m[f"pass@{k}"]["estimate"], m[f"pass@{k}"]["ci"]),
                           ci(m["consistent"]["estimate"], m["consistent"]["ci"]))))
    return "\n".join(lines)


def scaling_fits_table(scaling: dict) -> str:
    """The line ``pass@1 = a + b log10 C`` per split, and which form predicts held-out budgets
    best (in bold)."""
    lines = [_row(("split", "a", "b (per decade of C)", "95% CI of b", "points inside the 95% band",
                   "held-out RMSE: log-linear / saturating / logistic")),
             "|---|---:|---:|---|---:|---|"]
    for split, fit in scaling["fits"].items():
        rmse = fit["held_out_rmse"]
        forms = " / ".join(f"**{rmse[f]:.4f}**" if f == fit["best_form"] else f"{rmse[f]:.4f}" for f in FORMS)
        lines.append(_row((split, f"{fit['a']:.3f}".replace("-", "−"), f"{fit['b']:.4f}",
                           f"{fit['b_ci'][0]:.4f}–{fit['b_ci'][1]:.4f}", f"{fit['band_coverage']:.0%}", forms)))
    return "\n".join(lines)


def _share(budget: float) -> str:
    return "1" if budget == 1 else f"1/{round(1 / budget)}"


def scaling_grid_table(points_csv: str | Path, split: str = "iid") -> str:
    """pass@1 on ``split`` at each (size, budget) of the grid, the mean over training seeds;
    the sizes smallest first (by their compute at the same budget: C = 6 N D)."""
    cells: dict = defaultdict(list)
    compute: dict = {}
    with open(points_csv) as f:
        for r in csv.DictReader(f):
            if r["split"] != split:
                continue
            cells[r["size"], float(r["budget"])].append(float(r["pass@1"]))
            compute[r["size"]] = max(compute.get(r["size"], float("-inf")), float(r["log10_compute"]))
    budgets = sorted({b for _, b in cells})
    sizes = sorted(compute, key=compute.get)
    lines = [_row(["size \\ share of the largest run", *map(_share, budgets)]), "|---|" + "---:|" * len(budgets)]
    for size in sizes:
        lines.append(_row([size, *(_mean3(cells[size, b]) for b in budgets)]))
    return "\n".join(lines)


def search_table(search: dict) -> str:
    """Each method at its largest budget, per split, with its interval."""
    results = search["pass@1"]
    first = next(iter(results.values()))
    header = ["split"]
    header += [label.format(budget=first[method]["budget"]) for method, label in SEARCH_COLUMNS]
    lines = [_row(header), "|" + "---|" * len(header)]
    for split, methods in _in_study_order(results):
        lines.append(_row([split, *(ci(methods[m]["mean"], methods[m]["ci"]) for m, _ in SEARCH_COLUMNS)]))
    return "\n".join(lines)


def instrument_table(r: dict) -> str:
    """iid's greedy pass@1 on all its test functions, without and with a twin in training
    (``r``: :func:`synthgen.results_table.report`)."""
    iid = r["pass@1"]["iid"]
    lines = [_row(("iid test functions", "greedy pass@1 [95% interval]", "functions")), "|---|---|---:|"]
    for how, label in (("all", "all"), ("no twin", "**without a twin in training**"), ("with twin", "with a twin")):
        count = iid[how].get("functions") if how != "all" else (iid["no twin"].get("functions") or 0) + (
            iid["with twin"].get("functions") or 0)
        lines.append(_row((label, fmt(iid[how]), f"{count:,}" if count else "")))
    return "\n".join(lines)


def verdict_table(r: dict, evaluation: dict | None = None) -> str:
    """Each claim: the figure read, its estimate and interval, what else is shown beside it
    (with ``evaluation``, density's raw difference and the other samplers'), the verdict and
    what the interval alone says (the rule before the floor test)."""
    lines = [_row(("the paper says", "figure read", "estimate [95% interval]", "beside it", "verdict",
                   "the interval alone")), "|---|---|---|---|---|---|"]
    for name, v in r["verdicts"].items():
        f = FORMATS[name]
        beside = [f"{label}: {fmt(i, **f)}" for label, i in (v.get("beside") or {}).items()]
        if name == "density" and evaluation:
            for key, d in evaluation["density"].items():
                sampler = key.removeprefix("density_").removesuffix("_minus_random")
                for how in (("raw",) if sampler == "diverse_both" else ("matched",)):
                    est, (lo, hi) = d[how]["estimate"], d[how]["ci"]
                    beside.append(f"{sampler} - random, {how}: {fmt({'est': est, 'lo': lo, 'hi': hi}, **f)}")
        if name == "scaling" and v.get("grid_best") is not None:
            half = 0.5 * v["iid_greedy"] if v.get("iid_greedy") is not None else None
            beside.append(f"the grid's best iid pass@1 {fmt({'est': v['grid_best']})}, half iid's greedy "
                          f"{fmt({'est': half})}")
        if name == "search":
            beside.append(f"on iid (the bar): {fmt({'est': v.get('iid_sample_and_filter')})}")
            for split, sp in (v.get("splits") or {}).items():
                closes = {True: "closes the gap", False: "the gap stays", None: "n/a"}[sp["closes_gap"]]
                beside.append(f"on {split}: {fmt(sp['sample_and_filter'])}, greedy {fmt({'est': sp['greedy']})}: "
                              f"{closes}")
        lines.append(_row((v["claim"], v["figure"], fmt(v, **f), "; ".join(beside) or "", f"**{v['verdict']}**",
                           v["rule"])))
    return "\n".join(lines)


def tables(metrics: str | Path) -> dict[str, str]:
    """Every table, keyed by the name its marker carries."""
    metrics = Path(metrics)
    read = lambda name: json.loads((metrics / f"{name}.json").read_text())  # noqa: E731
    r = report(metrics)
    evaluation = read("evaluation")
    out = {"the instrument": instrument_table(r), "the verdicts": verdict_table(r, evaluation),
           "the synthesizer on every split": splits_table(evaluation)}
    scaling = metrics / "scaling.json"
    if scaling.is_file():
        out["scaling: the fits"] = scaling_fits_table(read("scaling"))
    if points_path(metrics).is_file():
        out["scaling: pass@1 on iid at each point of the grid"] = scaling_grid_table(points_path(metrics))
    if (metrics / "search.json").is_file():
        out["search: each method at its largest budget"] = search_table(read("search"))
    return out


MARKER = "<!-- doc_tables: {} -->"


def fill(text: str, made: dict[str, str]) -> str:
    """``text`` with the table after each marker replaced by ``made``'s table of that name.
    Raises ValueError naming a table the text has no marker for, or a marker with no table."""
    lines = text.split("\n")
    for name, table in made.items():
        marker = MARKER.format(name)
        if marker not in lines:
            raise ValueError(f"no marker {marker!r}")
        at = lines.index(marker) + 1
        end = at
        while end < len(lines) and lines[end].startswith("|"):
            end += 1
        if end == at:
            raise ValueError(f"no table after {marker!r}")
        lines[at:end] = table.split("\n")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m synthgen.doc_tables", description=__doc__.split("\n\n")[0])
    parser.add_argument("--metrics", default="reports/metrics", help="a reports/metrics folder (default: %(default)s)")
    parser.add_argument("--write", metavar="FILE", help="replace the table after each marker in FILE")
    args = parser.parse_args(argv)
    if not (Path(args.metrics) / "evaluation.json").is_file():
        print(f"synthgen doc_tables: no evaluation.json in {args.metrics}", file=sys.stderr)
        return 2
    made = tables(args.metrics)
    if args.write:
        try:
            text = Path(args.write).read_text()
            made = {name: table for name, table in made.items() if MARKER.format(name) in text.split("\n")}
            if not made:
                raise ValueError(f"no marker {MARKER.format('NAME')!r}")
            write_text(args.write, fill(text, made))
        except (OSError, ValueError) as err:
            print(f"synthgen doc_tables: {args.write}: {err}", file=sys.stderr)
            return 2
        print(f"synthgen doc_tables: {len(made)} tables written to {args.write}")
        return 0
    for name, table in made.items():
        print(f"{MARKER.format(name)}\n{table}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
