"""The released benchmark: ``data/``, tracked by ``data.dvc`` (STUDY.md section 8).

    python -m synthgen.release build     # data/ from artifacts/ (the end of `make repro`)
    python -m synthgen.release check     # a fresh rebuild has the bytes data.dvc records

``data/`` holds

- ``universe/programs.parquet``, ``universe/classes.parquet``: every program of the
  grammar and its semantic class, as the enumeration stage wrote them (the grammar is in
  the files' metadata);
- ``splits/<split>/train.parquet``: the training programs (id, size, prefix and infix
  text); training examples are drawn afresh each epoch, so none are fixed here;
- ``splits/<split>/test.parquet``: the test tasks: the target program, its K example
  inputs and outputs (the tasks every result of the study is measured on), its function
  (``semantic_class``) and stratum (``kind``, ``class_size``, ``commonness``: STUDY.md
  section 8), its held-out ``region``, the OOD distances of the generalization map, and
  whether its function occurs in training;
- ``manifest.json``: every file's rows, bytes and SHA-256, the grammar and the
  parameters the benchmark was made with;
- ``DATASHEET.md``: what each split isolates, how it was made, its salient variables.

Everything is a function of ``params.yaml`` and the artifacts: the same inputs give the
same bytes, so the hash that ``data.dvc`` records is that of any fresh reproduction, and
:func:`check_release` verifies it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from synthgen.census import salient_summary, symbol_counts
from synthgen.params import Params, ParamsError, load_params
from synthgen.split_files import SPLIT_NAMES, read_ood, read_split
from synthgen.strata import task_strata
from synthgen.tasks import make_tasks
from synthgen.universe import CLASSES_FILE, PROGRAMS_FILE, Universe, read_universe

FORMAT_VERSION = 2  # 2: test tasks carry their function, stratum and held-out region
MANIFEST_FILE = "manifest.json"
DATASHEET_FILE = "DATASHEET.md"
ISOLATES = {
    "iid": "nothing: train and test are uniform draws from one pool (the reference).",
    "density_random": "density shift: the test set favours sparse regions; training is a uniform draw.",
    "density_diverse_syntax": "density shift, with training spread evenly over the syntactic space (k-means cells).",
    "density_diverse_semantics": "density shift, with training spread evenly over the semantic space.",
    "density_diverse_both": "density shift, with training spread evenly over both spaces.",
    "support_syntax": "syntactic novelty: every test program contains a pq-gram that no training program has "
                      "(several disjoint held-out regions of pq-grams; `region` says which).",
    "support_semantics": "semantic extrapolation: test functions lie in held-out balls of the semantic space "
                         "(`region` says which), written with pq-grams all seen in training.",
}


# --- building -------------------------------------------------------------------------


def _write(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="zstd", use_dictionary=False)


def _texts(universe: Universe, ids: np.ndarray) -> tuple[list[str], list[str]]:
    programs = [universe.program(int(i)) for i in ids]
    return [p.prefix() for p in programs], [p.infix() for p in programs]


def split_tables(universe: Universe, split_file: Path, ood_file: Path, params: Params) -> tuple[pa.Table, pa.Table, dict]:
    """(train, test, facts) of one split, as released."""
    train_ids, test, facts = read_split(split_file)
    test = test.merge(read_ood(ood_file), on="program_id", how="left")
    train_ids = np.asarray(train_ids, dtype=np.int64)
    prefix, infix = _texts(universe, train_ids)
    train = pa.table({
        "program_id": pa.array(train_ids, pa.int64()),
        "size": pa.array(universe.size[train_ids].astype(np.int8)),
        "prefix": pa.array(prefix, pa.string()),
        "infix": pa.array(infix, pa.string()),
    })
    test_ids = test.program_id.to_numpy().astype(np.int64)
    tasks = make_tasks(universe, test_ids, params.tasks.n_examples, "test", params.seed)
    inputs = universe.grammar.grid[tasks.points]  # (n, K, variables)
    n, k, v = inputs.shape
    prefix, infix = _texts(universe, test_ids)
    twin = np.isin(universe.semantic_class[test_ids], universe.semantic_class[train_ids])
    strata = task_strata(universe, test_ids, params.measurement.class_size_edges)
    test_table = pa.table({
        "program_id": pa.array(test_ids, pa.int64()),
        "size": pa.array(universe.size[test_ids].astype(np.int8)),
        "prefix": pa.array(prefix, pa.string()),
        "infix": pa.array(infix, pa.string()),
        "inputs": pa.FixedSizeListArray.from_arrays(
            pa.FixedSizeListArray.from_arrays(pa.array(inputs.reshape(-1).astype(np.int64)), v), k),
        "outputs": pa.FixedSizeListArray.from_arrays(pa.array(tasks.outputs.reshape(-1).astype(np.int64)), k),
        "semantic_class": pa.array(strata.semantic_class.to_numpy(np.int64)),
        "kind": pa.array(strata.kind.astype(str).tolist(), pa.string()),
        "class_size": pa.array(strata.class_size.to_numpy(np.int64)),
        "commonness": pa.array(strata.commonness.astype(str).tolist(), pa.string()),
        "region": pa.array(test.region.to_numpy(np.int64)),
        "ood_syntax": pa.array(test.ood_syntax.to_numpy(np.float64)),
        "ood_pqgram": pa.array(test.ood_pqgram.to_numpy(np.float64)),
        "ood_semantics": pa.array(test.ood_semantics.to_numpy(np.float64)),
        "function_in_training": pa.array(twin),
    })
    return train, test_table, facts


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _file_entries(folder: Path) -> dict[str, dict]:
    entries = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if rel in (MANIFEST_FILE,):
            continue
        entry = {"bytes": path.stat().st_size, "sha256": _sha256(path)}
        if path.suffix == ".parquet":
            try:
                entry["rows"] = pq.ParquetFile(path).metadata.num_rows
            except (OSError, ValueError, pa.ArrowException):  # not readable as Parquet: no row count
                entry["rows"] = None
        entries[rel] = entry
    return entries


def build_release(artifacts: Path, out: Path, params: Params, log=print) -> dict:
    """Write the benchmark from ``artifacts`` (the pipeline's outputs) to ``out``,
    replacing it as a whole; return the manifest."""
    artifacts, out = Path(artifacts), Path(out)
    universe = read_universe(artifacts / "universe")
    split_files = {p.stem: p for p in (artifacts / "splits").glob("*.parquet")}
    if not split_files:
        raise FileNotFoundError(f"no splits in {artifacts / 'splits'}: run `dvc repro` first")
    names = [s for s in SPLIT_NAMES if s in split_files] + sorted(set(split_files) - set(SPLIT_NAMES))
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for name in (PROGRAMS_FILE, CLASSES_FILE):
            (staging / "universe").mkdir(exist_ok=True)
            shutil.copyfile(artifacts / "universe" / name, staging / "universe" / name)
        counts = symbol_counts(universe)
        splits = {}
        for name in names:
            log(f"release: split {name}")
            train, test, facts = split_tables(universe, split_files[name], artifacts / "ood" / f"{name}.parquet", params)
            _write(train, staging / "splits" / name / "train.parquet")
            _write(test, staging / "splits" / name / "test.parquet")
            train_ids = train.column("program_id").to_numpy()
            test_ids = test.column("program_id").to_numpy()
            splits[name] = {
                "family": facts["family"], "isolates": ISOLATES.get(name, ""), "guarded": facts["guarded"],
                "guard_removed": facts["guard_removed"], "filter_removed": facts["filter_removed"],
                "notes": facts["notes"], "train": int(len(train_ids)), "test": int(len(test_ids)),
                "test_function_in_training": int(np.asarray(test.column("function_in_training")).sum()),
                "test_functions": int(len(np.unique(test.column("semantic_class").to_numpy()))),
                "regions": int(len(np.unique(test.column("region").to_numpy()))),
                "test_kind": _shares(test.column("kind").to_pylist()),
                "test_commonness": _shares(test.column("commonness").to_pylist()),
                "salient": {"train": _rounded(salient_summary(universe, train_ids, counts)),
                            "test": _rounded(salient_summary(universe, test_ids, counts))},
                "median_ood": {c: round(float(np.median(test.column(c).to_numpy())), 6)
                               for c in ("ood_syntax", "ood_pqgram", "ood_semantics")},
            }
        manifest = {
            "format_version": FORMAT_VERSION,
            "grammar": universe.grammar.to_dict(),
            "programs": len(universe),
            "semantic_classes": universe.n_classes,
            "params": {"seed": params.seed, "tasks": params.tasks.model_dump(),
                       "splits": params.splits.model_dump(), "syntax": params.syntax.model_dump(),
                       "semantics": params.semantics.model_dump(), "measurement": params.measurement.model_dump()},
            "splits": splits,
        }
        (staging / DATASHEET_FILE).write_text(datasheet(manifest))
        manifest["files"] = _file_entries(staging)
        (staging / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def _shares(values: list) -> dict[str, float]:
    counts = pd.Series(values).value_counts(normalize=True).sort_index()
    return {str(k): round(float(v), 6) for k, v in counts.items()}


def _rounded(d: dict) -> dict:
    return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in d.items()}


def datasheet(m: dict) -> str:
    """The datasheet (Gebru et al.'s questions, answered for this benchmark)."""
    g = m["grammar"]
    lines = [
        "# synthgen benchmark: datasheet",
        "",
        "Written by `python -m synthgen.release build` from the pipeline's artifacts; do not edit.",
        "",
        "## What it is",
        "",
        f"Program-synthesis tasks over an arithmetic DSL: variables {', '.join(g['variables'])}; constants "
        f"{', '.join(map(str, g['constants']))}; unary {', '.join(g['unary'])}; binary {', '.join(g['binary'])}; "
        f"programs of at most {g['max_size']} nodes; inputs on the grid {g['grid_low']}..{g['grid_high']} per variable; "
        f"a program whose value leaves ±{g['value_bound']:,} anywhere is out of bound.",
        "",
        f"The universe holds all {m['programs']:,} programs (every tree, not only one per function) in "
        f"{m['semantic_classes']:,} semantic classes (programs with equal outputs on the whole grid).",
        "",
        "A task is K = {0} input-output examples of a target program, at distinct grid points drawn "
        "deterministically from (seed {1}, program id). A prediction passes when it computes the target's function "
        "on the whole grid (same semantic class); agreeing with the K examples only is not enough.".format(
            m["params"]["tasks"]["n_examples"], m["params"]["seed"]),
        "",
        "## How it was made",
        "",
        "Enumerated bottom-up with exact evaluation (no sampling), then placed in a syntactic space (pq-gram "
        f"profiles, p = {m['params']['syntax']['p']}, q = {m['params']['syntax']['q']}) and a semantic space (outputs "
        "on the grid); each split draws its training and test programs from the pool of in-bound programs of size "
        f">= {m['params']['splits']['min_size']} (pool: {m['params']['splits']['pool']}). The leakage guard "
        f"(`{m['params']['splits']['guard']}`) removes from training every program whose function is a test function; "
        "where it does not run, `function_in_training` marks the test tasks whose function occurs in training. "
        "The code is the synthgen package; STUDY.md gives the decisions.",
        "",
        "## The splits",
        "",
        "Each test set holds each function (semantic class) at most "
        f"{m['params']['splits']['tasks_per_function']} time(s): the unit is the function, not the program. "
        "Report pass@1 per stratum (`kind`: the variables the function depends on, `const` for none; "
        "`commonness`: how many programs of the universe compute it) as well as overall: the giant classes "
        "(constants, `x`, `y` and their variants) are easy, and a mix of them is not a generalization result.",
        "",
        "| split | isolates | train | test functions | regions | test tasks with function in training "
        "| median OOD pq-gram | median OOD semantic |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, s in m["splits"].items():
        lines.append(f"| {name} | {s['isolates']} | {s['train']:,} | {s['test_functions']:,} | {s['regions']} "
                     f"| {s['test_function_in_training']:,} "
                     f"| {s['median_ood']['ood_pqgram']:.3f} | {s['median_ood']['ood_semantics']:.3f} |")
    kinds = sorted({k for s in m["splits"].values() for k in s["test_kind"]})
    commonness = sorted({k for s in m["splits"].values() for k in s["test_commonness"]})
    lines += ["", "Test functions by stratum (shares):", "",
              "| split | " + " | ".join(kinds + commonness) + " |", "|---|" + "---:|" * (len(kinds) + len(commonness))]
    for name, s in m["splits"].items():
        lines.append(f"| {name} | " + " | ".join(f"{s['test_kind'].get(k, 0.0):.3f}" for k in kinds) + " | "
                     + " | ".join(f"{s['test_commonness'].get(k, 0.0):.3f}" for k in commonness) + " |")
    lines += ["", "## Salient variables", "",
              "Means over each part: size and depth in nodes, the share of programs using a constant or a variable, "
              "and operator occurrences per program. A split whose parts differ in these differs in them, not only "
              "in what it was built to isolate.", ""]
    keys = list(next(iter(m["splits"].values()))["salient"]["train"])
    lines.append("| split | part | " + " | ".join(keys) + " |")
    lines.append("|---|---|" + "---:|" * len(keys))
    for name, s in m["splits"].items():
        for part in ("train", "test"):
            row = s["salient"][part]
            lines.append(f"| {name} | {part} | " + " | ".join(
                f"{row[k]:,}" if isinstance(row[k], int) else f"{row[k]:.3f}" for k in keys) + " |")
    lines += ["", "## Uses and limits", "",
              "Made to measure how neural program synthesis generalizes under density and support shift "
              "(arXiv 2604.27551, reproduced and extended). The DSL is small and total: results say nothing direct "
              "about general-purpose languages. Scores on a split are comparable only with the same K, grid and "
              "pass criterion; `python -m synthgen.score` applies them.", ""]
    return "\n".join(lines)


# --- checking -------------------------------------------------------------------------


def manifest_problems(folder: Path) -> list[str]:
    """Differences between ``folder`` and its manifest (files, rows, bytes, hashes)."""
    folder = Path(folder)
    path = folder / MANIFEST_FILE
    if not path.is_file():
        return [f"{path}: no manifest"]
    recorded = json.loads(path.read_text())["files"]
    actual = _file_entries(folder)
    problems = [f"{rel}: listed in the manifest but missing" for rel in sorted(set(recorded) - set(actual))]
    problems += [f"{rel}: present but not in the manifest" for rel in sorted(set(actual) - set(recorded))]
    for rel in sorted(set(recorded) & set(actual)):
        for key in ("rows", "bytes", "sha256"):
            if recorded[rel].get(key) != actual[rel].get(key):
                problems.append(f"{rel}: {key} is {actual[rel].get(key)}, the manifest says {recorded[rel].get(key)}")
    return problems


def dvc_dir_md5(folder: Path) -> str:
    """The hash ``dvc add`` gives a directory (DVC 3): the MD5 of the JSON list of its
    files' MD5s and relative paths, sorted by path, with ``.dir`` appended."""
    entries = []
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        h = hashlib.md5()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        entries.append({"md5": h.hexdigest(), "relpath": path.relative_to(folder).as_posix()})
    entries.sort(key=lambda e: e["relpath"])
    return hashlib.md5(json.dumps(entries, sort_keys=True).encode("utf-8")).hexdigest() + ".dir"


def recorded_md5(dvc_file: Path) -> str:
    """The directory hash a ``.dvc`` file records."""
    import yaml

    outs = yaml.safe_load(Path(dvc_file).read_text()).get("outs") or []
    if len(outs) != 1 or "md5" not in outs[0]:
        raise ValueError(f"{dvc_file}: expected one output with an md5")
    return outs[0]["md5"]


def blas_kernels() -> str:
    """The kernel sets of the BLAS libraries loaded here and their thread counts, as
    threadpoolctl reports them (OpenBLAS picks a kernel set by CPU as it loads, ``Haswell``
    on an AVX2 CPU for example, and a thread per core: both change the spaces' bytes)."""
    from threadpoolctl import threadpool_info

    # threadpoolctl names the kernel set of OpenBLAS and BLIS; MKL's, it does not
    found = sorted({" ".join(filter(None, (i["internal_api"], i.get("architecture"))))
                    + f" on {i['num_threads']} thread{'s' * (i['num_threads'] != 1)}"
                    for i in threadpool_info() if i.get("user_api") == "blas"})
    return ", ".join(found) or "no BLAS loaded"


def check_release(root: Path, params: Params, log=print) -> list[str]:
    """Rebuild the benchmark from ``root/artifacts`` in a temporary folder and compare it
    with ``root/data`` (and that folder with its manifest) if present, and with the hash
    recorded in ``root/data.dvc``.  Returns the problems (none: the reproduction is exact)."""
    root = Path(root)
    problems = []
    with tempfile.TemporaryDirectory(prefix="synthgen-release-") as tmp:
        fresh = Path(tmp) / "data"
        build_release(root / "artifacts", fresh, params, log=lambda *_: None)  # its manifest is of these very files
        fresh_md5 = dvc_dir_md5(fresh)
        log(f"fresh build of the benchmark: {fresh_md5}")
        data = root / "data"
        if data.is_dir():
            problems += [f"data/: {p}" for p in manifest_problems(data)]
            if dvc_dir_md5(data) != fresh_md5:
                problems.append("data/ differs from a fresh build (rebuild it: python -m synthgen.release build)")
        dvc_file = root / "data.dvc"
        if dvc_file.is_file():
            recorded = recorded_md5(dvc_file)
            log(f"data.dvc records:               {recorded}")
            if recorded != fresh_md5:
                # one problem, with its likeliest cause beside it (advice, not a second problem)
                problems.append(f"data.dvc records {recorded}, a fresh build hashes to {fresh_md5}; the spaces "
                                f"and splits are bit for bit only on the BLAS kernels and thread count of the run "
                                f"that recorded data.dvc (this machine's: {blas_kernels()}; docs/results.md, "
                                f"'What reproduces, and how exactly')")
        else:
            problems.append("no data.dvc: the benchmark was never recorded (make repro does it)")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m synthgen.release", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["build", "check"],
                        help="build: write data/ from artifacts/; check: a fresh rebuild matches data/ and data.dvc")
    args = parser.parse_args(argv)
    from synthgen.paths import repo_root

    root = repo_root()
    try:
        params = load_params(root / "params.yaml")
    except ParamsError as err:
        print(f"synthgen: {err}", file=sys.stderr)
        return 2
    try:
        if args.command == "build":
            manifest = build_release(root / "artifacts", root / "data", params)
            print(f"release: data/ holds {len(manifest['files'])} files, {len(manifest['splits'])} splits")
            return 0
        problems = check_release(root, params)
    except FileNotFoundError as err:
        print(f"synthgen: {err}", file=sys.stderr)
        return 2
    for p in problems:
        print(f"release check: {p}", file=sys.stderr)
    print("release check: " + ("FAILED" if problems else "the benchmark reproduces exactly (data/, data.dvc)"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
