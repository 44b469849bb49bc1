"""Calibrating the synthesizer on validation functions, never on a test set (notebook 09).

    rows = run_sweep(params)              # every recipe of params.calibration, resumable
    table = recipe_table(rows, params)    # per recipe: validation pass@1, cost, intervals
    choice = select_recipe(table, params.calibration)

A *recipe* is a set of changes to ``params.yaml`` (``calibration.recipes``: dotted keys of
``model``, ``training``, ``splits.train_size`` and ``tasks.n_examples``).  Each recipe is
trained on iid's training candidates, with every one of its training seeds
(``calibration.seeds``), and read on iid's validation functions (the splits stage draws
them: out of every training set, and no test set holds one of their functions).

- **Training programs.** ``splits.train_size`` of them, the first of one seeded order of
  iid's training candidates (the pool less iid's test and validation programs): a larger
  set holds every smaller one, so the data axis changes one thing.
- **Cost.** The CPU time of the training run (``time.process_time``: every thread of the
  process, so it does not count time a busy machine took away), and its wall time.  A
  recipe's *cost* is its CPU time over the base recipe's, measured in the same sweep, so a
  faster or slower machine changes the unit, not the ranking.
- **What is read.** Greedy pass@1 on the validation functions, overall and split by
  whether a training program computes the function (``twin``) or none does
  (``no twin``), and per stratum.  Intervals: the hierarchical bootstrap over training
  seeds and functions (:mod:`synthgen.stats`).
- **The selection rule** (:func:`select_recipe`; docs/calibration.md says when it was
  fixed): among the recipes whose cost is at most ``calibration.max_cost``, take the best
  no-twin pass@1; every eligible recipe within ``calibration.tolerance`` of it ties, and
  the cheapest of the tie is chosen.

Each (recipe, seed) run writes ``reports/calibration/runs/<recipe>_seed<k>.json`` (its
figures and its fingerprint) and ``.parquet`` (one row per validation function); a run
whose files hold the same fingerprint is not run again, so an interrupted sweep resumes,
and a killed training run resumes from its checkpoint (``artifacts/calibration/``).
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from synthgen.atomic import atomic_path, write_json
from synthgen.params import CalibrationParams, Params, recipe_params
from synthgen.paths import artifacts_dir, repo_root, split_path
from synthgen.seeding import rng_for
from synthgen.split_files import read_split, read_validation
from synthgen.stats import hierarchical_bootstrap
from synthgen.strata import task_strata
from synthgen.universe import Universe

SPLIT = "iid"
SUBSETS = ("all", "twin", "no_twin")
"""The validation functions a figure is read on: all of them, those a training program
computes, and those none does (the figure the selection rule reads)."""
AXES = ("training.tasks", "splits.train_size", "model.width", "model.encoder_layers", "model.decoder_layers",
        "training.lr", "training.batch_size", "tasks.n_examples")
"""The effective value of each of these is a column of the sweep's tables."""


def calibration_dir(root: Path | None = None) -> Path:
    return (root or repo_root()) / "reports" / "calibration"


def run_paths(name: str, seed: int, root: Path | None = None) -> tuple[Path, Path]:
    """(summary JSON, per-function table) of one (recipe, seed) run."""
    base = calibration_dir(root) / "runs" / f"{name}_seed{seed}"
    return base.with_suffix(".json"), base.with_suffix(".parquet")


# --- what a run trains and is read on --------------------------------------------------------


def training_candidates(universe: Universe, params: Params, root: Path | None = None) -> np.ndarray:
    """iid's training candidates: the pool less iid's test and validation programs (and,
    with ``splits.guard: all``, less the test functions' twins), sorted."""
    from synthgen.splits import candidate_pool, leakage_guard

    _, test, _ = read_split(split_path(SPLIT, root))
    validation = read_validation(split_path(SPLIT, root))
    pool = candidate_pool(universe, params.splits.pool, params.splits.min_size)
    rest = np.setdiff1d(pool, np.concatenate([test.program_id.to_numpy(), validation]))
    if params.splits.guard == "all":
        rest, _ = leakage_guard(universe, rest, test.program_id.to_numpy())
    return rest


def training_programs(candidates: np.ndarray, n: int, seed: int) -> np.ndarray:
    """The first ``n`` of one seeded order of ``candidates``, sorted: nested in ``n``."""
    if n > len(candidates):
        raise ValueError(f"calibration: splits.train_size = {n} but iid has only {len(candidates):,} training "
                         "candidates")
    order = rng_for(seed, "calibration", "training programs").permutation(np.asarray(candidates, dtype=np.int64))
    return np.sort(order[:n])


def validation_programs(params: Params, root: Path | None = None) -> np.ndarray:
    ids = read_validation(split_path(SPLIT, root))
    if not len(ids):
        raise ValueError("calibration: the iid split has no validation functions (splits.validation_size is 0)")
    n = params.calibration.validation_functions if params.calibration else None
    return ids if n is None else ids[:n]


def effective(params: Params) -> dict:
    """The values of :data:`AXES` in ``params``."""
    out = {}
    for key in AXES:
        node = params
        for part in key.split("."):
            node = getattr(node, part)
        out[key] = node
    return out


def fingerprint(params: Params, seed: int, train_ids: np.ndarray, validation: np.ndarray) -> str:
    """What a run's figures are a function of: the params sections it reads (less the run
    settings of ``training``), its seed, its training programs and its validation programs.
    An edit to another section (search, scaling, ...) does not rerun the sweep."""
    from synthgen.training import RUN_SETTINGS

    full = params.model_dump()
    raw = {k: full[k] for k in ("seed", "grammar", "splits", "tasks", "model", "training", "decoding")}
    raw["class_size_edges"] = full["measurement"]["class_size_edges"]
    for key in RUN_SETTINGS:
        raw["training"].pop(key, None)
    h = hashlib.sha256(json.dumps(raw, sort_keys=True).encode())
    h.update(str(seed).encode())
    h.update(np.ascontiguousarray(train_ids, dtype=np.int64).tobytes())
    h.update(np.ascontiguousarray(validation, dtype=np.int64).tobytes())
    return h.hexdigest()[:16]


# --- one run ---------------------------------------------------------------------------------


def read_validation_outcomes(universe: Universe, model, params: Params, validation: np.ndarray,
                             train_ids: np.ndarray) -> pd.DataFrame:
    """One row per validation function: greedy ``pass@1``, ``valid``, ``consistent``, its
    strata and ``twin`` (a training program computes it).  The tasks are drawn from the
    study's root seed (purpose "validation"), the same for every recipe with the same K."""
    from synthgen.decoding import synthesize
    from synthgen.evaluation import score_candidates, task_table
    from synthgen.tasks import make_tasks

    tasks = make_tasks(universe, validation, params.tasks.n_examples, "validation", params.seed)
    greedy = synthesize(model, universe.grammar, tasks, "greedy", constrained=params.decoding.constrained)
    table = task_table(universe, tasks, score_candidates(universe, tasks, greedy), ks=[1])
    strata = task_strata(universe, validation, params.measurement.class_size_edges)
    out = pd.concat([table[["program_id", "valid", "consistent", "pass@1"]].reset_index(drop=True),
                     strata.reset_index(drop=True)], axis=1)
    out["twin"] = np.isin(out.semantic_class, universe.semantic_class[train_ids])
    return out


def run_recipe(universe: Universe, params: Params, name: str, seed: int, *, candidates: np.ndarray,
               root: Path | None = None, progress: bool = True) -> tuple[dict, bool]:
    """Train recipe ``name`` with training ``seed`` and read it on the validation functions;
    or, when its files already hold this run's fingerprint, read them back.  Returns (the
    run's summary, whether it ran)."""
    from synthgen.training import discard_stale_run, train

    rp = recipe_params(params, name)
    train_ids = training_programs(candidates, rp.splits.train_size, params.seed)
    validation = validation_programs(params, root)
    key = fingerprint(rp, seed, train_ids, validation)
    summary_file, table_file = run_paths(name, seed, root)
    if summary_file.is_file() and table_file.is_file():
        done = json.loads(summary_file.read_text())
        if done.get("fingerprint") == key:
            return done, False
    out_dir = artifacts_dir("calibration", root) / name / f"seed{seed}"
    discard_stale_run(universe, train_ids, rp, out_dir, seed=seed)
    resumed = (out_dir / "checkpoint.pt").is_file()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    result = train(universe, train_ids, rp, out_dir, seed=seed, progress=progress)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    outcomes = read_validation_outcomes(universe, result.model, rp, validation, train_ids)
    table_file.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(table_file) as tmp:
        outcomes.to_parquet(tmp, index=False)
    summary = {
        "recipe": name, "seed": seed, "fingerprint": key,
        "changes": params.calibration.recipes[name], **effective(rp),
        "cpu_seconds": round(cpu, 1), "wall_seconds": round(wall, 1),
        "resumed": resumed,  # a resumed run's times cover only its last part
        "threads": rp.training.threads,
        "non_embedding_parameters": int(result.non_embedding_parameters),
        "training_flops": float(result.training_flops),
        "final_train_loss": round(float(result.curve[-1]["train_loss"]), 4) if result.curve else None,
        "functions": int(len(outcomes)), "no_twin_functions": int((~outcomes.twin).sum()),
        **{f"pass@1 {s}": round(float(subset(outcomes, s)["pass@1"].mean()), 4) for s in SUBSETS},
        "valid": round(float(outcomes.valid.mean()), 4),
        "consistent": round(float(outcomes.consistent.mean()), 4),
    }
    write_json(summary_file, summary)
    return summary, True


def subset(outcomes: pd.DataFrame, which: str) -> pd.DataFrame:
    if which not in SUBSETS:
        raise ValueError(f"unknown subset {which!r}; one of {', '.join(SUBSETS)}")
    return outcomes if which == "all" else outcomes[outcomes.twin == (which == "twin")]


def run_sweep(universe: Universe, params: Params, recipes: Sequence[str] | None = None, root: Path | None = None,
              progress: bool = True) -> list[dict]:
    """Every (recipe, seed) of ``params.calibration`` (or of ``recipes``, in that order),
    the base recipe first; runs already done are read back."""
    cal = params.calibration
    if cal is None:
        raise ValueError("params.yaml has no calibration section")
    names = list(cal.recipes) if recipes is None else list(recipes)
    unknown = set(names) - set(cal.recipes)
    if unknown:
        raise ValueError(f"unknown recipes {sorted(unknown)}; params.yaml names {', '.join(cal.recipes)}")
    names = [cal.base] + [n for n in names if n != cal.base]  # costs are relative to the base
    for name in names:  # every recipe valid before any work (one line naming the recipe and key)
        recipe_params(params, name)
    candidates = training_candidates(universe, params, root)
    rows, todo = [], [(n, s) for n in names for s in cal.seeds]
    _warm_up(universe, recipe_params(params, cal.base), candidates)
    for i, (name, seed) in enumerate(todo, 1):
        started = time.perf_counter()
        row, ran = run_recipe(universe, params, name, seed, candidates=candidates, root=root, progress=progress)
        status = f"{(time.perf_counter() - started) / 60:.1f} min" if ran else "done before: read back"
        print(f"[{i}/{len(todo)}] {name} seed {seed}: no-twin pass@1 {row['pass@1 no_twin']:.3f}, "
              f"all {row['pass@1 all']:.3f}, {row['cpu_seconds'] / 60:.1f} CPU min ({status})", flush=True)
        rows.append(row)
    return rows


def _warm_up(universe: Universe, params: Params, candidates: np.ndarray) -> None:
    """A few untimed steps of the base recipe, so that the process's one-off costs (torch's
    thread pool, kernel selection: several CPU seconds) are not charged to the first run."""
    import tempfile

    from synthgen.params import apply_overrides, validate_params
    from synthgen.training import train

    raw = apply_overrides(params.model_dump(), {"training.tasks": 4 * params.training.batch_size})
    with tempfile.TemporaryDirectory() as tmp:
        train(universe, candidates[: params.training.batch_size], validate_params(raw), tmp, progress=False)


# --- reading the sweep --------------------------------------------------------------------------


def read_runs(rows: Iterable[dict], root: Path | None = None) -> pd.DataFrame:
    """The per-function validation tables of the runs ``rows`` (what :func:`run_sweep`
    returns), read once into one frame with ``recipe`` and ``seed``: what
    :func:`recipe_table` and :func:`per_stratum` read."""
    return pd.concat([pd.read_parquet(run_paths(r["recipe"], r["seed"], root)[1]).assign(recipe=r["recipe"], seed=r["seed"])
                      for r in rows], ignore_index=True)


def _estimate(outcomes: pd.DataFrame, params: Params, purpose: str) -> tuple[float, float, float]:
    """Mean pass@1 over seeds and functions, with the hierarchical bootstrap's interval."""
    if outcomes.empty:
        return float("nan"), float("nan"), float("nan")
    values = outcomes.pivot(index="seed", columns="program_id", values="pass@1").to_numpy()
    e = hierarchical_bootstrap(values, params.evaluation.bootstrap, params.seed, function_purpose=purpose)
    lo, hi = e.interval(params.evaluation.confidence)
    return e.estimate, lo, hi


def recipe_table(rows: Sequence[dict], outcomes: pd.DataFrame, params: Params) -> pd.DataFrame:
    """One row per recipe of the runs ``rows``: its effective settings, CPU minutes (mean
    over seeds), cost (over the base recipe's), and validation pass@1 on each subset with
    its interval, from ``outcomes`` (:func:`read_runs`)."""
    cal = params.calibration
    runs = pd.DataFrame(list(rows))
    base_cpu = runs.loc[runs.recipe == cal.base, "cpu_seconds"].mean()
    if not base_cpu > 0:
        raise ValueError(f"calibration: the base recipe {cal.base!r} has not run: costs are relative to it")
    out = []
    for name, group in runs.groupby("recipe", sort=False):
        row = {"recipe": name, **{k: group[k].iloc[0] for k in AXES},
               "seeds": len(group), "cpu_minutes": group.cpu_seconds.mean() / 60,
               "wall_minutes": group.wall_seconds.mean() / 60, "cost": group.cpu_seconds.mean() / base_cpu,
               "functions": int(group.functions.iloc[0]), "no_twin_functions": int(group.no_twin_functions.iloc[0]),
               "final_train_loss": group.final_train_loss.mean()}
        mine = outcomes[outcomes.recipe == name]
        for s in SUBSETS:
            est, lo, hi = _estimate(subset(mine, s), params, f"calibration:{s}")
            row[f"pass@1 {s}"], row[f"pass@1 {s} lo"], row[f"pass@1 {s} hi"] = est, lo, hi
        row["no_twin per CPU minute"] = row["pass@1 no_twin"] / row["cpu_minutes"]
        out.append(row)
    return pd.DataFrame(out)


def per_stratum(outcomes: pd.DataFrame, by: str) -> pd.DataFrame:
    """Validation pass@1 per recipe and stratum (``kind``, ``commonness`` or ``size``) of
    ``outcomes`` (:func:`read_runs`): recipe rows, stratum columns."""
    means = outcomes.groupby(["recipe", by], sort=False)["pass@1"].mean().unstack(by)
    return means[sorted(means.columns, key=str)]


def select_recipe(table: pd.DataFrame, cal: CalibrationParams) -> dict:
    """The selection rule (fixed before the sweep ran; docs/calibration.md): among the
    recipes costing at most ``max_cost`` times the base, the best no-twin validation
    pass@1; every eligible recipe within ``tolerance`` of it ties; the cheapest of the tie
    wins (then the first listed)."""
    eligible = table[table.cost <= cal.max_cost]
    best = eligible["pass@1 no_twin"].max()
    tied = eligible[eligible["pass@1 no_twin"] >= best - cal.tolerance]
    chosen = tied.sort_values("cost", kind="stable").iloc[0]
    return {
        "chosen": str(chosen.recipe),
        "changes": cal.recipes[str(chosen.recipe)],
        "rule": (f"among recipes costing <= {cal.max_cost}x the base recipe ({cal.base}), the best no-twin "
                 f"validation pass@1; recipes within {cal.tolerance} of it tie; the cheapest of the tie wins"),
        "best_no_twin": round(float(best), 4),
        "eligible": eligible.recipe.tolist(),
        "tied": tied.recipe.tolist(),
        "not_eligible": table.loc[table.cost > cal.max_cost, "recipe"].tolist(),
        "chosen_no_twin": round(float(chosen["pass@1 no_twin"]), 4),
        "chosen_all": round(float(chosen["pass@1 all"]), 4),
        "chosen_cost": round(float(chosen.cost), 3),
        "chosen_cpu_minutes": round(float(chosen.cpu_minutes), 2),
        "recipes_run": table.recipe.tolist(),
        "recipes_listed": list(cal.recipes),
    }


def axis(table: pd.DataFrame, vary: str, params: Params) -> pd.DataFrame:
    """The recipes that differ from the base recipe's settings only in ``vary`` and in
    ``training.tasks`` (compute): the rows of one curve per compute budget, e.g.
    ``vary="splits.train_size"`` gives the data-diversity axis at fixed compute."""
    base = table[table.recipe == params.calibration.base].iloc[0]
    fixed = [k for k in AXES if k not in (vary, "training.tasks")]
    same = np.logical_and.reduce([table[k] == base[k] for k in fixed])
    return table[same].sort_values(["training.tasks", vary])


def extrapolate(table: pd.DataFrame, params: Params, target: float, subset_name: str = "no_twin") -> dict:
    """Where the compute axis (the recipes differing from the base only in training tasks,
    at the base's data) would reach ``target`` validation pass@1, by a least-squares line
    ``pass@1 = a + b log10(tasks)``: an *extrapolation*, labelled so wherever it is shown.
    ``tasks`` is None when the line does not rise or fewer than two points lie on it."""
    line = axis(table, "training.tasks", params)
    line = line[line["splits.train_size"] == params.splits.train_size]
    x, y = np.log10(line["training.tasks"].to_numpy(float)), line[f"pass@1 {subset_name}"].to_numpy(float)
    out = {"target": target, "subset": subset_name, "points": int(len(line)), "tasks": None, "cpu_minutes": None}
    if len(line) < 2:
        return out
    b, a = np.polyfit(x, y, 1)
    out.update(a=round(float(a), 4), b_per_decade=round(float(b), 4))
    if b > 1e-6:  # a line that rises (not float noise on a flat one)
        log_tasks = (target - a) / b
        minutes_per_task = (line.cpu_minutes / line["training.tasks"]).mean()
        out.update(tasks=float(10**log_tasks), cpu_minutes=float(10**log_tasks * minutes_per_task))
    return out


def write_selection(choice: dict, table: pd.DataFrame, root: Path | None = None) -> Path:
    """``reports/calibration/selection.json`` and ``recipes.csv`` (the recipe table)."""
    folder = calibration_dir(root)
    with atomic_path(folder / "recipes.csv") as tmp:
        table.round(5).to_csv(tmp, index=False)
    return write_json(folder / "selection.json", choice)
