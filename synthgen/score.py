"""Scoring an external model on the released benchmark.

    python -m synthgen.score support_syntax predictions.tsv [--data data] [--notation auto]

A predictions file holds one line per test task of the split: the target's
``program_id`` (from ``data/splits/<split>/test.parquet``), a TAB, and the predicted
program as prefix (``add x mul y 2``) or infix (``x + y * 2``) text, in UTF-8, each
line ending in LF or CR LF.  Blank lines and lines starting with ``#`` are skipped.  A
file that is not of this shape (a line without a TAB or not UTF-8, an id that is not a
test task of the split, a task predicted twice or not at all) is refused with an error
naming the line.  A program that does not parse is a wrong
prediction, not an error: models write such things, and they count against pass@1.

A prediction passes when it computes the target's function on the whole grid (the pass
criterion of the study); it is parsed by the grammar's parser and evaluated by its
interpreter, never by Python's ``eval``.  The output: pass@1 with a bootstrap interval,
the shares of predictions that parse and that agree with the K examples, and the
generalization map (pass@1 over quantile bins of the syntactic and semantic OOD
distances, with the task count per cell).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from synthgen.evaluation import judge
from synthgen.grammar import Grammar, Program, parse_infix, parse_prefix
from synthgen.results import generalization_map
from synthgen.stats import hierarchical_bootstrap
from synthgen.tasks import grid_points
from synthgen.universe import read_universe

NOTATIONS = ("auto", "prefix", "infix")


class PredictionFileError(ValueError):
    """A predictions file that is not of the documented shape; the message names the line."""


@dataclass
class Score:
    split: str
    table: pd.DataFrame  # one row per test task: program_id, valid, consistent, pass@1, strata, OOD distances
    summary: dict
    strata: pd.DataFrame  # pass@1 per stratum (kind, commonness) with intervals over functions
    map_mean: pd.DataFrame
    map_count: pd.DataFrame

    def report(self) -> str:
        s = self.summary
        lines = [
            f"split {self.split}: {s['tasks']} tasks",
            f"pass@1      {s['pass@1']:.4f}  ({s['confidence']:.0%} CI {s['ci_low']:.4f} to {s['ci_high']:.4f}, "
            f"bootstrap over {s['functions']} functions" + (f" in {s['regions']} regions)" if s["regions"] > 1 else ")"),
            f"parses      {s['valid']:.4f}",
            f"consistent  {s['consistent']:.4f}  (agrees with the K examples)",
            "",
            "pass@1 per stratum (kind: the variables the function depends on; commonness: programs computing it)",
            self.strata.to_string(index=False, float_format=lambda v: f"{v:.3f}"),
            "",
            "generalization map: pass@1 (rows: semantic OOD distance, far at the top; columns: syntactic pq-gram OOD "
            "distance, near at the left)",
            self.map_mean.to_string(float_format=lambda v: f"{v:.3f}"),
            "",
            "tasks per cell",
            self.map_count.to_string(),
        ]
        return "\n".join(lines)


def read_predictions(path: Path, grammar: Grammar, test_ids: np.ndarray, notation: str = "auto") -> dict[int, object]:
    """The parsed prediction (a :class:`Program` or a :class:`ParseError`) of every test
    task in ``path``; :class:`PredictionFileError` naming the line for a malformed file."""
    if notation not in NOTATIONS:
        raise ValueError(f"notation must be one of {', '.join(NOTATIONS)}; got {notation!r}")
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise PredictionFileError(f"{path}: cannot read predictions ({err})") from None
    wanted = set(int(i) for i in test_ids)
    seen: dict[int, int] = {}
    out: dict[int, object] = {}
    for n, line in enumerate(_lines(raw, path), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if "\t" not in line:
            raise PredictionFileError(f"{path}:{n}: expected '<program_id><TAB><program>', found no TAB")
        key, program = line.split("\t", 1)
        try:
            pid = int(key.strip())
        except ValueError:
            raise PredictionFileError(f"{path}:{n}: program_id {key.strip()!r} is not an integer") from None
        if pid not in wanted:
            raise PredictionFileError(f"{path}:{n}: program_id {pid} is not a test task of this split")
        if pid in seen:
            raise PredictionFileError(f"{path}:{n}: program_id {pid} is predicted twice (first on line {seen[pid]})")
        seen[pid] = n
        out[pid] = _parse(program.strip(), grammar, notation, f"{path}:{n}")
    missing = sorted(wanted - set(out))
    if missing:
        raise PredictionFileError(
            f"{path}: {len(missing)} of {len(wanted)} test tasks have no prediction, e.g. program_id {missing[0]}")
    return out


def _lines(raw: bytes, path: Path):
    """The file's lines as an editor numbers them: split at LF only (``str.splitlines``
    also splits at form feeds and other separators, and would name the wrong line), each
    decoded alone, so that bytes that are not UTF-8 are refused with their line."""
    for n, chunk in enumerate(raw.split(b"\n"), start=1):
        try:
            line = chunk.decode("utf-8-sig" if n == 1 else "utf-8")  # a leading byte-order mark is no id
        except UnicodeDecodeError as err:
            raise PredictionFileError(f"{path}:{n}: not UTF-8 text (byte {err.start + 1} of the line)") from None
        yield line.removesuffix("\r")


def _parse(text: str, grammar: Grammar, notation: str, where: str):
    if notation == "prefix":
        return parse_prefix(text, grammar)
    if notation == "infix":
        return parse_infix(text, grammar)
    as_prefix, as_infix = parse_prefix(text, grammar), parse_infix(text, grammar)
    if isinstance(as_prefix, Program) and isinstance(as_infix, Program) and as_prefix != as_infix:
        raise PredictionFileError(f"{where}: {text!r} reads differently as prefix and as infix; pass --notation")
    return as_prefix if isinstance(as_prefix, Program) else as_infix


def score_predictions(data: Path, split: str, predictions: Path, notation: str = "auto", *, bins: int = 4,
                      n_boot: int = 1000, confidence: float = 0.95, seed: int = 0) -> Score:
    """Score a predictions file against ``data/splits/<split>/test.parquet``."""
    data = Path(data)
    test_file = data / "splits" / split / "test.parquet"
    if not test_file.is_file():
        known = sorted(p.name for p in (data / "splits").glob("*") if p.is_dir())
        raise FileNotFoundError(f"{test_file}: no such split in {data} (splits: {', '.join(known) or 'none'})")
    universe = read_universe(data / "universe")
    grammar = universe.grammar
    test = pq.read_table(test_file).to_pandas()
    ids = test.program_id.to_numpy()
    predicted = read_predictions(predictions, grammar, ids, notation)
    targets = universe.class_outputs[universe.semantic_class[ids]]
    valid, has = np.zeros(len(test), dtype=bool), np.zeros(len(test), dtype=bool)
    outputs = np.zeros((len(test), grammar.n_points), dtype=np.int64)
    for i, pid in enumerate(ids):
        program = predicted[int(pid)]
        if not isinstance(program, Program):
            continue
        valid[i] = True
        values = grammar.evaluate(program)  # the grammar's interpreter; None: out of bound
        if values is not None:
            outputs[i], has[i] = values, True
    points = grid_points(grammar, np.stack([np.stack(v) for v in test.inputs]))  # (tasks, K)
    examples = np.stack([np.asarray(v) for v in test.outputs])
    consistent, passed = (a[:, 0] for a in judge(outputs[:, None, :], has[:, None], points, examples, targets))
    table = pd.DataFrame({"program_id": ids, "valid": valid, "consistent": consistent, "pass@1": passed.astype(float)})
    table = pd.concat([table, test[[c for c in STRATA_COLUMNS if c in test.columns]]], axis=1)
    # files released before format 2 lack the function and region of a task: derive them
    if "semantic_class" not in table:
        table["semantic_class"] = universe.semantic_class[ids].astype(np.int64)
    if "region" not in table:
        table["region"] = 0
    overall = function_estimate(table, n_boot, seed, f"score:{split}")
    lo, hi = overall.interval(confidence)
    summary = {"tasks": int(len(table)), "functions": int(table.semantic_class.nunique()),
               "regions": int(table.region.nunique()), "pass@1": float(table["pass@1"].mean()),
               "pass@1_per_function": overall.estimate, "ci_low": lo, "ci_high": hi,
               "confidence": confidence, "valid": float(valid.mean()), "consistent": float(consistent.mean())}
    rows = []
    for column in [c for c in ("kind", "commonness") if c in table]:
        for label, part in table.groupby(column, sort=True):
            e = function_estimate(part, n_boot, seed, f"score:{split}:{column}={label}")
            rows.append({"stratum": column, "value": label, "functions": int(part.semantic_class.nunique()),
                         "pass@1": e.estimate, "ci_low": e.interval(confidence)[0], "ci_high": e.interval(confidence)[1]})
    mean, count = generalization_map(table, "ood_pqgram", "ood_semantics", bins=bins)
    return Score(split, table, summary, pd.DataFrame(rows), mean, count)


STRATA_COLUMNS = ("semantic_class", "kind", "commonness", "class_size", "size", "region", "ood_pqgram", "ood_semantics")
"""The columns of a released test task that scoring reports by (data/splits/<split>/test.parquet)."""


def function_estimate(table: pd.DataFrame, n_boot: int, seed: int, purpose: str):
    """pass@1 over the functions of ``table`` (each function's tasks averaged), with a
    bootstrap over the held-out regions (when there are several) and the functions."""
    per_function = table.groupby("semantic_class", sort=True).agg(passed=("pass@1", "mean"), region=("region", "first"))
    regions = per_function.region.to_numpy()
    return hierarchical_bootstrap(per_function.passed.to_numpy(), n_boot, seed, function_purpose=purpose,
                                  clusters=regions if len(np.unique(regions)) > 1 else None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m synthgen.score", description=__doc__.split("\n\n")[0])
    parser.add_argument("split", help="a released split, e.g. iid or support_syntax")
    parser.add_argument("predictions", type=Path, help="TSV: program_id, TAB, predicted program (prefix or infix)")
    parser.add_argument("--data", type=Path, default=None, help="the released benchmark (default: the repository's data/)")
    parser.add_argument("--notation", choices=NOTATIONS, default="auto", help="how programs are written (default: auto)")
    parser.add_argument("--bins", type=int, default=4, help="quantile bins per axis of the generalization map")
    parser.add_argument("--json", type=Path, default=None, help="also write the summary and the map as JSON here")
    args = parser.parse_args(argv)
    if args.data is None:
        from synthgen.paths import repo_root

        args.data = repo_root() / "data"
    try:
        score = score_predictions(args.data, args.split, args.predictions, args.notation, bins=args.bins)
    except (PredictionFileError, FileNotFoundError) as err:
        print(f"synthgen: {err}", file=sys.stderr)
        return 2
    print(score.report())
    if args.json:
        from synthgen.atomic import write_json

        write_json(args.json, {"split": args.split, **score.summary,
                               "strata": json.loads(score.strata.to_json(orient="records")),
                               "map": {"pass@1": json.loads(score.map_mean.to_json(orient="split", default_handler=str)),
                                       "tasks": json.loads(score.map_count.to_json(orient="split", default_handler=str))}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
