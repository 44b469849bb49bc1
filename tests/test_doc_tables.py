"""The number tables of docs/results.md (synthgen/doc_tables.py): what they print, and that
the file holds what the committed metrics give."""

from __future__ import annotations

import pytest

from synthgen.doc_tables import MARKER, fill, main, scaling_grid_table, splits_table, tables
from tests.conftest import ROOT

METRICS = ROOT / "reports" / "metrics"
RESULTS_MD = ROOT / "docs" / "results.md"

EVALUATION = {
    "splits": {
        "support_syntax": {"pass@1": {"estimate": 0.085, "ci": [0.058, 0.116]}, "per_seed": {"0": 0.07, "10": 0.1, "2": 0.085},
                           "pass@5": {"estimate": 0.2, "ci": [0.1, 0.3]}, "pass@10": {"estimate": 0.245, "ci": [0.199, 0.295]},
                           "consistent": {"estimate": 0.146, "ci": [0.112, 0.181]}},
        "iid": {"pass@1": {"estimate": 0.0963, "ci": [0.079, 0.116]}, "per_seed": {"0": 0.107, "10": 0.096, "2": 0.086},
                "pass@5": {"estimate": 0.1, "ci": [0.1, 0.2]}, "pass@10": {"estimate": 0.2147, "ci": [0.1907, 0.2417]},
                "consistent": {"estimate": 0.1577, "ci": [0.1313, 0.185]}},
    },
    "twin": {
        "support_syntax": {"no twin": {"estimate": 0.085, "ci": [0.0573, 0.1157], "functions": 1000},
                           "with twin": {"estimate": None, "ci": [None, None], "functions": 0}},
        "iid": {"no twin": {"estimate": 0.0324, "ci": [0.0183, 0.0483], "functions": 545},
                "with twin": {"estimate": 0.1729, "ci": [0.1414, 0.2029], "functions": 455}},
    },
}


def test_the_splits_table_reads_each_split_in_the_studys_order():
    lines = splits_table(EVALUATION).split("\n")
    assert lines[0].startswith("| split | pass@1 (greedy) | per seed |") and "pass@10 (sampled)" in lines[0]
    assert len(lines) == 4 and lines[1] == "|---|---|---|---|---|---|---|"
    # iid before support_syntax (SPLIT_NAMES), seeds in numeric order (2 before 10)
    assert lines[2] == ("| iid | 0.096 [0.079, 0.116] | 0.107 / 0.086 / 0.096 | 0.032 [0.018, 0.048] (545) | "
                        "0.173 [0.141, 0.203] (455) | 0.215 [0.191, 0.242] | 0.158 [0.131, 0.185] |")
    # a support split has no function with a twin: all of them are counted without one
    assert lines[3] == ("| support_syntax | 0.085 [0.058, 0.116] | 0.070 / 0.085 / 0.100 | (all 1,000) | | "
                        "0.245 [0.199, 0.295] | 0.146 [0.112, 0.181] |")


def test_the_grid_table_averages_seeds_and_orders_sizes_by_compute(tmp_path):
    csv = tmp_path / "points.csv"
    rows = ["split,size,budget,tasks,log10_compute,pass@1"]
    for seed_value in (0.026, 0.027):  # two seeds: the mean 0.0265 reads 0.027 (halves up)
        rows += [f"iid,big,0.5,50,12.0,{seed_value}", "iid,big,1.0,100,12.3,0.1",
                 "iid,small,0.5,50,11.0,0.01", "iid,small,1.0,100,11.3,0.2", "support_syntax,big,1.0,100,12.3,0.9"]
    csv.write_text("\n".join(rows) + "\n")
    lines = scaling_grid_table(csv).split("\n")
    assert lines == ["| size \\ share of the largest run | 1/2 | 1 |", "|---|---:|---:|",
                     "| small | 0.010 | 0.200 |",  # fewer FLOPs at the same budget: smaller, first
                     "| big | 0.027 | 0.100 |"]


def test_fill_replaces_the_table_after_each_marker_and_names_what_is_missing():
    text = f"intro\n{MARKER.format('a')}\n| old |\n|---|\n| 1 |\n\nafter\n"
    assert fill(text, {"a": "| new |\n|---|\n| 2 |"}) == f"intro\n{MARKER.format('a')}\n| new |\n|---|\n| 2 |\n\nafter\n"
    with pytest.raises(ValueError, match="no marker"):
        fill(text, {"b": "| x |"})
    with pytest.raises(ValueError, match="no table after"):
        fill(f"{MARKER.format('a')}\n\n| late |\n", {"a": "| x |"})


README_TABLES = ("the instrument", "the verdicts")


@pytest.mark.parametrize("path, names", [
    (RESULTS_MD, ("the synthesizer on every split", "scaling: the fits",
                  "scaling: pass@1 on iid at each point of the grid", "search: each method at its largest budget")),
    (ROOT / "README.md", README_TABLES)])
def test_the_docs_hold_the_tables_the_committed_metrics_give(path, names):
    made = tables(METRICS)
    assert set(made) == {*README_TABLES, "the synthesizer on every split", "scaling: the fits",
                         "scaling: pass@1 on iid at each point of the grid", "search: each method at its largest budget"}
    text = path.read_text()
    assert fill(text, {n: made[n] for n in names}) == text, (
        f"{path.name} is stale: python -m synthgen.doc_tables --write {path.relative_to(ROOT)}")


def test_the_verdict_table_is_what_synthgen_results_reads():
    from synthgen.results_table import report

    r = report(METRICS)
    rows = tables(METRICS)["the verdicts"].split("\n")[2:]
    assert len(rows) == len(r["verdicts"])
    for row, v in zip(rows, r["verdicts"].values()):
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[0] == v["claim"] and cells[4] == f"**{v['verdict']}**" and cells[5] == v["rule"]


def test_the_command_writes_the_file_and_stops_in_one_line_without_metrics(tmp_path, capsys):
    doc = tmp_path / "results.md"
    stale = RESULTS_MD.read_text().replace("| iid | 0.", "| iid | 9.", 1)
    assert stale != RESULTS_MD.read_text()
    doc.write_text(stale)
    assert main(["--metrics", str(METRICS), "--write", str(doc)]) == 0
    assert doc.read_text() == RESULTS_MD.read_text()
    assert main(["--metrics", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0  # one line
    metrics = tmp_path / "m"  # an evaluation alone: no scaling or search tables, and no marker to fill
    metrics.mkdir()
    (metrics / "evaluation.json").write_text((METRICS / "evaluation.json").read_text())
    assert set(tables(metrics)) == {*README_TABLES, "the synthesizer on every split"}
    plain = tmp_path / "plain.md"
    plain.write_text("no markers here\n")
    assert main(["--metrics", str(metrics), "--write", str(plain)]) == 2
    err = capsys.readouterr().err
    assert "no marker" in err and err.strip().count("\n") == 0 and plain.read_text() == "no markers here\n"
