"""The study's verdict rules (synthgen/verdicts.py), the headline that carries them and
``synthgen results`` (synthgen/results_table.py) that prints them."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from synthgen.cli import main as cli_main
from synthgen.headline import headline
from synthgen.results_table import WIDTH, FORMATS, _short, fmt, render, report
from synthgen.verdicts import (AT_FLOOR, SEES, UNKNOWN, closes_gap, combine, density_rule, grid_best, instrument,
                               interval, points_path, scaling_rule, search_rule, semantics_drop_rule, syntax_drop_rule,
                               verdicts)
from tests.conftest import ROOT

METRICS = ROOT / "reports" / "metrics"
SEED_SET = ROOT / "reports" / "seed_sets" / "seeds_3_4_5"


def i(lo, hi, est=None):
    return interval((lo + hi) / 2 if est is None else est, lo, hi)


# --- each rule on one interval, boundaries included ---------------------------------------------


def test_instrument_floor():
    assert instrument(interval(0.10), 0.10) == SEES  # reaching the floor is enough
    assert instrument(interval(0.0999), 0.10) == AT_FLOOR
    assert instrument(interval(0.0), 0.0) == SEES  # floor 0: always sees (the smoke profile)
    assert instrument(None, 0.10) == UNKNOWN and instrument(interval(0.5), None) == UNKNOWN


def test_density_rule():
    assert density_rule(i(0.001, 0.05)) == "supported"
    assert density_rule(i(0.0, 0.05)) == "not supported"  # touching 0 is not above it
    assert density_rule(i(-0.02, 0.012)) == "not supported"
    assert density_rule(i(-0.05, -0.01)) == "not supported"
    assert density_rule(None) == "n/a" and density_rule(interval(0.1)) == "n/a"


@pytest.mark.parametrize("lo, hi, word", [
    (0.01, 0.30, "agrees"),          # above 0, reaches 30% exactly
    (0.01, 0.60, "agrees"),
    (0.31, 0.60, "agrees"),
    (0.0, 0.30, "unresolved"),      # holds 0 (lo = 0 is not above it) and 30%
    (-0.06, 0.55, "unresolved"),
    (-0.06, 0.2999, "contradicts"),  # below 30%
    (0.05, 0.25, "contradicts"),
    (-76.0, -2.8, "contradicts"),
])
def test_syntax_drop_rule(lo, hi, word):
    assert syntax_drop_rule(i(lo, hi)) == word


@pytest.mark.parametrize("lo, hi, word", [
    (0.0712, 0.85, "contradicts"),   # above 0
    (0.0001, 0.10, "contradicts"),
    (0.0, 0.2999, "agrees"),         # not above 0, below 30%
    (-23.4, -0.34, "agrees"),
    (0.0, 0.30, "unresolved"),       # holds 0 and reaches 30%
    (-0.2, 0.5, "unresolved"),
])
def test_semantics_drop_rule(lo, hi, word):
    assert semantics_drop_rule(i(lo, hi)) == word


def test_scaling_rule():
    log_linear = {"best_form": "log_linear", "b": 0.01, "b_ci": [0.005, 0.02]}
    assert scaling_rule(log_linear, grid_best=0.05, iid_greedy=0.10) == "supported"  # exactly half: tested
    assert scaling_rule(log_linear, grid_best=0.0499, iid_greedy=0.10) == "untested"
    assert scaling_rule(log_linear | {"b_ci": [0.0, 0.02]}, 0.2, 0.1) == "contradicts"  # slope not above 0
    assert scaling_rule(log_linear | {"best_form": "saturating"}, 0.2, 0.1) == "contradicts"
    assert scaling_rule(None, 0.2, 0.1) == "n/a" and scaling_rule(log_linear, None, 0.1) == "n/a"


def test_search_rule():
    # today's figures: support_syntax closes the gap, support_semantics does not
    assert closes_gap(i(0.2425, 0.4094), greedy=0.0442, iid_sample_and_filter=0.2622) is True
    assert closes_gap(i(0.0751, 0.1847), greedy=0.0125, iid_sample_and_filter=0.2622) is False
    assert closes_gap(i(0.2, 0.2622), greedy=0.1, iid_sample_and_filter=0.2622) is True  # reaching the bar is enough
    assert closes_gap(i(0.1, 0.5), greedy=0.1, iid_sample_and_filter=0.2) is False  # not above its own greedy
    assert closes_gap(None, 0.1, 0.2) is None
    assert search_rule({"a": True, "b": True}) == "supported"
    assert search_rule({"a": True, "b": False}) == "partly"
    assert search_rule({"a": False, "b": False}) == "not supported"
    assert search_rule({"a": True, "b": None}) == "n/a"


def test_combine_two_seed_sets():
    def run(**words):
        return {"verdicts": {k: {"verdict": v} for k, v in words.items()}}

    both = combine({"a": run(density="not supported", support_syntax="unresolved", scaling="untested"),
                    "b": run(density="not supported", support_syntax="agrees", scaling="n/a")})
    assert both == {"density": "not supported", "support_syntax": "unresolved", "scaling": "untested"}
    assert combine({"a": run(density="n/a")}) == {"density": "n/a"}


# --- the verdicts of one run ------------------------------------------------------------------


def summary(lo, hi, est=None):
    return {"estimate": (lo + hi) / 2 if est is None else est, "ci": [lo, hi]}


def evaluation(no_twin: float | None = 0.2, with_primary: bool = True) -> dict:
    """A small evaluation.json of the shape notebook 06 writes."""
    support = {
        "support_syntax_drop": {"raw": summary(-0.37, 0.58), "matched": summary(-0.06, 0.55),
                                "matched, no twin": summary(0.35, 0.6)},
        "support_semantics_drop": {"raw": summary(0.57, 0.89), "matched": summary(0.07, 0.85),
                                   "matched, no twin": summary(-0.1, 0.2)},
    }
    if not with_primary:
        for d in support.values():
            del d["matched, no twin"]
    ev = {"protocol": {"seeds": [0, 1, 2], "regions": 5},
          "splits": {s: {"pass@1": summary(0.05, 0.07, 0.06)} for s in ("iid", "support_syntax", "support_semantics")},
          "density": {"density_diverse_both_minus_random": {"matched": summary(0.01, 0.03), "raw": summary(0.0, 0.03)}},
          "support": support}
    if no_twin is not None:
        ev["twin"] = {"iid": {"no twin": summary(no_twin - 0.01, no_twin + 0.01, no_twin) | {"functions": 600},
                              "with twin": summary(0.1, 0.2) | {"functions": 400}}}
    return ev


SCALING = {"fits": {"iid": {"best_form": "log_linear", "b": 0.01, "b_ci": [0.005, 0.02]}}}
SEARCH = {"pass@1": {
    "iid": {"greedy": {"mean": 0.06}, "sample_and_filter": {"mean": 0.26, "ci": [0.22, 0.31]}},
    "support_syntax": {"greedy": {"mean": 0.04}, "sample_and_filter": {"mean": 0.31, "ci": [0.24, 0.41]}},
    "support_semantics": {"greedy": {"mean": 0.01}, "sample_and_filter": {"mean": 0.13, "ci": [0.08, 0.18]}},
}}


def words(read):
    return {name: v["verdict"] for name, v in read["verdicts"].items()}


def test_a_run_that_sees_reads_every_rule():
    read = verdicts(evaluation(no_twin=0.2), SCALING, SEARCH, grid=0.05, floor=0.10)
    assert read["instrument"]["reads"] == SEES
    assert words(read) == {"density": "supported", "support_syntax": "agrees", "support_semantics": "agrees",
                           "scaling": "supported", "search": "partly"}
    v = read["verdicts"]["support_syntax"]  # the primary figure: against iid without a twin
    assert v["figure"].startswith("drop vs iid without a twin") and (v["lo"], v["hi"]) == (0.35, 0.6)
    assert set(v["beside"]) == {"drop vs all iid, matched", "drop vs all iid, raw"}
    assert all(read["verdicts"][n]["floor_checked"] for n in ("density", "support_syntax", "scaling"))


def test_at_the_floor_the_comparisons_are_untested_but_search_is_read():
    read = verdicts(evaluation(no_twin=0.0999), SCALING, SEARCH, grid=0.05, floor=0.10)
    assert read["instrument"]["reads"] == AT_FLOOR
    assert words(read) == {"density": "untested", "support_syntax": "untested", "support_semantics": "untested",
                           "scaling": "untested", "search": "partly"}
    assert read["verdicts"]["density"]["rule"] == "supported"  # what the interval alone says, kept


def test_unknown_floor_reads_the_intervals_and_says_so():
    read = verdicts(evaluation(no_twin=None, with_primary=False), SCALING, SEARCH, grid=0.05, floor=0.10)
    assert read["instrument"]["reads"] == UNKNOWN and read["instrument"]["pass@1 iid no twin"] is None
    v = read["verdicts"]["support_syntax"]  # falls back to the matched drop against all iid
    assert v["figure"] == "drop vs all iid, matched" and v["verdict"] == "unresolved"
    assert v["floor_checked"] is False and read["verdicts"]["search"]["floor_checked"] is None


def test_scaling_untested_when_the_grid_stays_far_below_the_model():
    read = verdicts(evaluation(), SCALING, SEARCH, grid=0.0245, floor=0.10)  # 0.0245 < 0.06 / 2
    assert read["verdicts"]["scaling"]["verdict"] == "untested"
    assert verdicts(evaluation(), None, None, floor=0.1)["verdicts"]["scaling"]["verdict"] == "n/a"


def test_grid_best_reads_the_iid_points(tmp_path):
    csv = tmp_path / "points.csv"
    csv.write_text("split,size,budget,tasks,log10_compute,pass@1\niid,l,1.0,10,12.0,0.02\niid,s,1.0,10,11.0,0.03\n"
                   "support_syntax,l,1.0,10,12.0,0.5\n")
    assert grid_best(csv) == 0.03 and grid_best(tmp_path / "none.csv") is None
    points = pd.read_csv(points_path(METRICS))  # the committed grid, read another way
    assert grid_best(points_path(METRICS)) == pytest.approx(points.loc[points["split"] == "iid", "pass@1"].max())


def test_headline_carries_the_primary_support_figure_the_floor_and_the_verdicts():
    out = headline(evaluation(no_twin=0.05), SCALING, SEARCH, floor=0.10, grid=0.05)
    assert out["pass@1 iid no twin"] == {"est": 0.05, "lo": 0.04, "hi": 0.060000000000000005}
    assert out["support_syntax drop (no twin)"]["lo"] == 0.35 and out["support_syntax drop"]["lo"] == -0.06
    assert out["floor"] == 0.10 and out["instrument"] == AT_FLOOR
    assert out["verdicts"]["density"] == "untested" and out["verdicts"]["search"] == "partly"


COMPARISONS = ("density", "support_syntax", "support_semantics", "scaling")  # the verdicts the floor gates


def test_headline_on_the_committed_metrics():
    sources = {n: json.loads((METRICS / f"{n}.json").read_text()) for n in ("evaluation", "scaling", "search")}
    committed = json.loads((METRICS / "headline.json").read_text())
    out = headline(**sources, floor=committed["floor"], grid=grid_best(points_path(METRICS)))
    assert out == committed  # the committed headline is the committed detailed metrics', read by today's rules
    assert out["support_syntax drop"]["est"] == sources["evaluation"]["support"]["support_syntax_drop"]["matched"]["estimate"]
    assert "support_syntax drop (no twin)" in out
    # the floor test on the committed run: under the floor every comparison of models reads untested
    under = out["pass@1 iid no twin"]["est"] < out["floor"]
    assert out["instrument"] == (AT_FLOOR if under else SEES)
    if under:
        assert all(out["verdicts"][name] == "untested" for name in COMPARISONS), out["verdicts"]
    assert out["verdicts"]["search"] != "untested"  # search is read against greedy, not gated by the floor


# --- synthgen results ---------------------------------------------------------------------------


def _cli(*args, cwd=ROOT, process=False) -> subprocess.CompletedProcess:
    """``synthgen results ARGS`` run in ``cwd``: as its own process where ``process`` (the
    command as typed), else in this one (the same ``main``, its output captured: a second
    of start-up less a call)."""
    if process:
        return subprocess.run([sys.executable, "-m", "synthgen.cli", "results", *args], cwd=cwd, capture_output=True,
                              text=True, timeout=120)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.chdir(cwd), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli_main(["results", *args])
        except SystemExit as exit_:  # argparse
            code = exit_.code
    return subprocess.CompletedProcess(["synthgen", "results", *args], code, out.getvalue(), err.getvalue())


def _check_printed_equals_json(text: str, r: dict) -> None:
    assert max(len(line) for line in text.splitlines()) <= WIDTH
    lines = text.splitlines()
    for name, v in r["verdicts"].items():
        row = next(line for line in lines if line.startswith(v["claim"]))
        assert fmt(v, **FORMATS[name]) in row and v["verdict"] in row, name
        for label, b in (v.get("beside") or {}).items():
            assert any(label in line and fmt(b, **FORMATS[name]) in line for line in lines), label
    for split, row in r["pass@1"].items():
        line = next(line for line in lines if line.startswith(f"{split} "))
        for how in ("all", "no twin", "with twin"):
            assert fmt(row[how]) in line, (split, how)
    no_twin = r["instrument"]["pass@1 iid no twin"]
    assert (fmt(no_twin) if no_twin else "n/a") in text


@pytest.mark.slow(seconds=2)
def test_cli_on_the_committed_metrics():
    shown = _cli(process=True)
    assert shown.returncode == 0, shown.stderr
    as_json = _cli("--json")
    assert as_json.returncode == 0, as_json.stderr
    r = json.loads(as_json.stdout)
    _check_printed_equals_json(shown.stdout, r)
    # the printed verdicts are the committed headline's, and so is the floor test
    committed = json.loads((METRICS / "headline.json").read_text())
    assert {name: v["verdict"] for name, v in r["verdicts"].items()} == committed["verdicts"]
    assert r["instrument"]["reads"] == committed["instrument"] and r["instrument"]["floor"] == committed["floor"]
    assert ("at the floor" in shown.stdout) == (committed["instrument"] == AT_FLOOR)
    assert r["verdicts"]["density"]["rule"] == density_rule(
        i(*(committed["density diverse_both - random"][k] for k in ("lo", "hi", "est"))))
    assert r == report(METRICS)  # the command prints report() and nothing else


def test_cli_names_the_metrics_as_the_reader_would_type_them(tmp_path):
    # from the repository's root: relative; from outside it: the path as given (the JSON keeps it as given)
    assert _cli().stdout.splitlines()[0] == "synthgen results: reports/metrics"
    outside = _cli("--metrics", str(METRICS), cwd=tmp_path).stdout.splitlines()[0]
    assert outside == f"synthgen results: {_short(str(METRICS), WIDTH - 18)}"
    assert json.loads(_cli("--json").stdout)["metrics"] == str(METRICS)
    # a folder without headline.json takes its floor from the repository's params.yaml, named alike
    assert "(from params.yaml)" in _cli("--metrics", str(SEED_SET)).stdout


def test_cli_with_a_second_seed_set(tmp_path):
    shown = _cli("--seed-set", str(SEED_SET))
    assert shown.returncode == 0, shown.stderr
    r = json.loads(_cli("--seed-set", str(SEED_SET), "--json").stdout)
    assert set(r["seed_sets"]) == {"seeds 0,1,2", "seeds 3,4,5"}
    assert r["combined"]["scaling"] == r["verdicts"]["scaling"]["verdict"]  # the seed set has no grid: no vote
    # its search.json votes: the seed set's own reading of it; without the file, no vote
    own = verdicts(json.loads((SEED_SET / "evaluation.json").read_text()),
                   search=json.loads((SEED_SET / "search.json").read_text()), floor=r["instrument"]["floor"])
    assert r["seed_sets"]["seeds 3,4,5"]["verdicts"]["search"] == own["verdicts"]["search"]["verdict"] != "n/a"
    shutil.copy(SEED_SET / "evaluation.json", tmp_path / "evaluation.json")
    alone = json.loads(_cli("--seed-set", str(tmp_path), "--json").stdout)
    assert alone["seed_sets"]["seeds 3,4,5"]["verdicts"]["search"] == "n/a"
    assert alone["combined"]["search"] == r["verdicts"]["search"]["verdict"]
    assert max(len(line) for line in shown.stdout.splitlines()) <= WIDTH
    assert "combined" in shown.stdout


def test_cli_on_a_run_at_the_floor(tmp_path):
    metrics = tmp_path / "reports" / "metrics"
    metrics.mkdir(parents=True)
    (metrics / "evaluation.json").write_text(json.dumps(evaluation(no_twin=0.03)))
    (metrics / "scaling.json").write_text(json.dumps(SCALING))
    (metrics / "search.json").write_text(json.dumps(SEARCH))
    (metrics / "headline.json").write_text(json.dumps({"floor": 0.10}))
    r = report(metrics)
    text = render(r)
    _check_printed_equals_json(text, r)
    assert r["instrument"]["floor_from"] == "headline.json"
    assert "at the floor" in text and "*" not in text
    assert [v["verdict"] for v in r["verdicts"].values()].count("untested") == 4  # scaling too, with no grid
    (tmp_path / "reports" / "scaling").mkdir()
    points_path(metrics).write_text("split,size,budget,tasks,log10_compute,pass@1\niid,l,1.0,10,12.0,0.05\n")
    assert report(metrics)["verdicts"]["scaling"]["grid_best"] == 0.05


def test_cli_reports_a_missing_folder_in_one_line(tmp_path):
    shown = _cli("--metrics", str(tmp_path))
    assert shown.returncode == 2 and shown.stderr.strip().count("\n") == 0 and "evaluation.json" in shown.stderr


@pytest.mark.slow
def test_results_on_the_smoke_profiles_outputs(smoke_run):
    """The smoke pipeline's own files (measurement.floor 0.0 there): the headline carries
    the no-twin pass@1 and the verdicts, and the command prints them within 100 columns."""
    metrics = smoke_run / "reports" / "metrics"
    head = json.loads((metrics / "headline.json").read_text())
    assert "pass@1 iid no twin" in head and head["floor"] == 0.0 and head["instrument"] == SEES
    assert set(head["verdicts"]) == {"density", "support_syntax", "support_semantics", "scaling", "search"}
    ev = json.loads((metrics / "evaluation.json").read_text())
    for split, twin in ev["twin"].items():
        assert set(twin) == {"no twin", "with twin"}, split
    shown = _cli("--metrics", str(metrics), cwd=smoke_run)
    assert shown.returncode == 0, shown.stderr
    r = json.loads(_cli("--metrics", str(metrics), "--json", cwd=smoke_run).stdout)
    _check_printed_equals_json(shown.stdout, r)
    assert {n: v["verdict"] for n, v in r["verdicts"].items()} == head["verdicts"]
    assert r["instrument"]["pass@1 iid no twin"]["functions"] > 0
