"""Every search method on the same tasks, and what they reach per unit of compute
(STUDY.md section 7; notebook 08).

    results = search_split(universe, model, test_ids, params)   # one row per (method, budget, task)
    table = accuracy_by_budget(results, n_boot, confidence, seed)   # pass@1 with intervals

The tasks are the evaluation's (:func:`synthgen.tasks.make_tasks` with purpose "test"),
so greedy pass@1 of notebook 06 and these numbers face the same examples.  A method's
pass@1 is the share of tasks whose answer is in the target's semantic class; a task
without an answer within the budget counts as a failure.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
import pandas as pd

from synthgen.evaluation import judge_programs
from synthgen.model import Synthesizer
from synthgen.params import Params
from synthgen.scaling_fit import compute_to_reach
from synthgen.search.enumerative import EnumerativeSearch
from synthgen.search.neural import RESULT_COLUMNS, ProgramIndex, best_first, greedy_rows, sample_and_filter
from synthgen.stats import hierarchical_bootstrap
from synthgen.tasks import Tasks, make_tasks
from synthgen.universe import Universe

METHODS = ("greedy", "enumerative", "sample_and_filter", "best_first")
"""``greedy`` is the pure transformer of notebook 06 (one program, unchecked): the reference."""
BUDGET_UNITS = {"greedy": "program", "enumerative": "programs examined", "sample_and_filter": "samples",
                "best_first": "expansions"}


def enumerative_rows(search: EnumerativeSearch, tasks: Tasks, budgets) -> pd.DataFrame:
    """Enumerative search at each budget of programs examined, in :data:`RESULT_COLUMNS`
    (no model: zero model calls and FLOPs)."""
    universe = search.universe
    frames = []
    for b in budgets:
        r = search.search_batch(tasks.points, tasks.outputs, budget=int(b), unit="programs")
        answer = np.where(r.found, r.program, -1)[:, None]
        frames.append(pd.DataFrame({
            "program_id": tasks.targets,
            "budget": int(b),
            "answer": r.program,
            "solved": r.found,
            "passed": judge_programs(universe, tasks, answer)[1][:, 0],
            "candidates": r.programs_examined,
            "model_calls": np.int64(0),
            "flops": 0.0,
        }))
    return pd.concat(frames, ignore_index=True)[list(RESULT_COLUMNS)]


def search_tasks(universe: Universe, test_ids, params: Params) -> Tasks:
    """The first ``search.tasks`` test programs' tasks, as the evaluation draws them."""
    ids = np.asarray(test_ids, dtype=np.int64)[: params.search.tasks]
    return make_tasks(universe, ids, params.tasks.n_examples, "test", params.seed)


def search_split(
    universe: Universe,
    model: Synthesizer | None,
    test_ids,
    params: Params,
    *,
    methods=METHODS,
    sample_seed: int | None = None,
    enumerative: EnumerativeSearch | None = None,
    index: ProgramIndex | None = None,
    log: Callable[[str], None] = print,
) -> pd.DataFrame:
    """The ``methods`` of :data:`METHODS` at every budget of ``params.search`` on one split's
    test tasks: one row per (method, budget, task) with :data:`RESULT_COLUMNS` and the
    method's wall time for its whole run (``seconds``).  The neural methods search with
    ``model`` (samples drawn from ``sample_seed``, default the root seed); the enumerative
    search needs no model, so it runs once per split, not once per training seed."""
    sp = params.search
    tasks = search_tasks(universe, test_ids, params)
    sample_seed = params.seed if sample_seed is None else sample_seed
    enumerative = enumerative or EnumerativeSearch(universe)
    index = index or ProgramIndex(universe)
    runs = {
        "greedy": lambda: greedy_rows(model, universe, tasks, constrained=params.decoding.constrained, index=index),
        "enumerative": lambda: enumerative_rows(enumerative, tasks, sp.programs),
        "sample_and_filter": lambda: sample_and_filter(
            model, universe, tasks, sp.samples, temperature=params.decoding.temperature,
            constrained=params.decoding.constrained, seed=sample_seed, index=index),
        "best_first": lambda: best_first(model, universe, tasks, sp.expansions, index=index),
    }
    frames = []
    for method in methods:
        start = time.perf_counter()
        rows = runs[method]()
        seconds = time.perf_counter() - start
        top = rows[rows.budget == rows.budget.max()]
        log(f"  {method:<18} {len(tasks)} tasks in {seconds:6.1f} s; pass@1 at the largest budget {top.passed.mean():.3f}")
        frames.append(rows.assign(method=method, seconds=seconds))
    return pd.concat(frames, ignore_index=True)


def search_study(universe: Universe, splits, params: Params, log: Callable[[str], None] = print) -> pd.DataFrame:
    """Every method on the first ``search.tasks`` test tasks of every split, the neural
    ones with the model of every training seed (``params.seeds``): one row per (split,
    seed, method, budget, task), with the task's ``semantic_class`` and held-out ``region``
    and each run's wall time (``seconds``).  The enumerative index and the program index
    are built once for all splits.  torch uses ``training.threads`` threads."""
    import torch

    from synthgen.paths import model_dir, split_path
    from synthgen.split_files import read_split
    from synthgen.training import MODEL_FILE, load_model

    # the run setting every model stage honours: with more threads than free cores, the
    # small batched calls of best-first spend most of their time waiting on each other
    torch.set_num_threads(params.training.threads)
    enumerative, index = EnumerativeSearch(universe), ProgramIndex(universe)
    neural = [m for m in METHODS if m != "enumerative"]
    frames = []
    for split in splits:
        _, test, _ = read_split(split_path(split))
        ids = test.program_id.to_numpy()
        region = pd.Series(test.region.to_numpy(), index=ids)
        log(f"{split}:")
        plain = search_split(universe, None, ids, params, methods=("enumerative",), enumerative=enumerative,
                             index=index, log=log)
        for seed in params.seeds:
            log(f" seed {seed}:")
            model = load_model(model_dir(split, seed) / MODEL_FILE, params.training.device)
            guided = search_split(universe, model, ids, params, methods=neural, sample_seed=seed,
                                  enumerative=enumerative, index=index, log=log)
            rows = pd.concat([guided, plain], ignore_index=True)
            frames.append(rows.assign(split=split, seed=seed, region=region.loc[rows.program_id].to_numpy()))
    out = pd.concat(frames, ignore_index=True)
    out["semantic_class"] = universe.semantic_class[out.program_id.to_numpy()].astype(np.int64)
    return out


def accuracy_by_budget(results: pd.DataFrame, n_boot: int, confidence: float, seed: int) -> pd.DataFrame:
    """pass@1 with its interval, the share solved (a consistent answer) and the mean costs,
    per (split, method, budget) of ``results``.

    ``results`` has one row per (split, training seed, method, budget, task) with the
    task's ``semantic_class`` and held-out ``region``.  pass@1 is the mean over functions
    and seeds, and its interval is the study's hierarchical bootstrap (seeds, regions,
    functions); every method and budget of a split resamples the same functions and seeds,
    so they compare paired.  A method that uses no model (enumerative) has the same rows
    under every seed."""
    keys = [k for k in ("split", "method", "budget") if k in results.columns]
    rows = []
    for key, part in results.groupby(keys, sort=True):
        labels = dict(zip(keys, key))
        wide = part.pivot_table(index="seed", columns="semantic_class", values="passed", aggfunc="mean")
        regions = part.groupby("semantic_class")["region"].first().loc[wide.columns].to_numpy()
        e = hierarchical_bootstrap(wide.to_numpy(dtype=np.float64), n_boot, seed,
                                   function_purpose=f"search:{labels.get('split', '')}", seed_purpose="seeds",
                                   clusters=regions if len(np.unique(regions)) > 1 else None)
        lo, hi = e.interval(confidence)
        rows.append({
            **labels,
            "tasks": int(part.program_id.nunique()),
            "seeds": int(wide.shape[0]),
            "pass@1": e.estimate,
            "ci_low": lo,
            "ci_high": hi,
            "solved": float(part.solved.mean()),
            "candidates": float(part.candidates.mean()),
            "model_calls": float(part.model_calls.mean()),
            "flops": float(part.flops.mean()),
        })
    return pd.DataFrame(rows)


def training_compute_for(accuracy: pd.DataFrame, fits: pd.DataFrame) -> pd.DataFrame:
    """For each (split, method) at its largest budget: pass@1 and the log10 training
    compute at which the split's log-linear scaling fit (columns ``split, a, b`` as in
    notebook 07) reaches the same pass@1 (``inf`` where the fitted line never does)."""
    best = accuracy.sort_values("budget").groupby(["split", "method"], sort=True).tail(1)
    out = best.merge(fits[["split", "a", "b"]], on="split", how="inner")
    out["log10_training_compute_needed"] = compute_to_reach(out["a"], out["b"], out["pass@1"])
    return out[["split", "method", "budget", "pass@1", "ci_low", "ci_high", "candidates", "flops",
                "log10_training_compute_needed"]].reset_index(drop=True)
