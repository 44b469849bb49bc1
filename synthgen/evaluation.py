"""Metrics of the synthesizer (STUDY.md section 5).

A candidate **passes** when its outputs equal the target's on the *whole grid*
(functional equivalence on the domain, not string match); it is **valid** when it parses,
and **consistent** when it reproduces the task's K examples (a consistent candidate
that does not pass found another function that fits the examples).  This module owns
that rule (:func:`judge`, and :func:`judge_programs` for programs of the universe);
evaluation, every search method and the scorer call it.

- :func:`score_candidates`: valid / consistent / passes per candidate;
- :func:`pass_at_k`: the unbiased estimator 1 - C(n-c, k) / C(n, k) from n samples
  with c passing, computed as a product, never with huge binomials;
- :func:`task_table`: one row per task, the columns every summary averages;
- :func:`summarize`, :func:`breakdown`: means with bootstrap intervals over *functions*
  (tasks of one function resampled together, :func:`synthgen.stats.cluster_bootstrap`),
  overall and by group (program size, bins of an OOD distance or any per-task
  covariate), for one model's table; the study's results, over seeds and regions, are
  :mod:`synthgen.results`;
- :func:`consistent_classes`, :func:`ambiguity_ceiling`: how many semantic classes of
  the universe fit each task's examples.  When several do, the examples do not pin
  the target down and no synthesizer can be sure to pass;
- :func:`evaluate`: all of it for a trained model on a list of test programs, the
  one call a stage makes.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from synthgen.decoding import Candidates, synthesize
from synthgen.grammar import Grammar, Program
from synthgen.model import Synthesizer
from synthgen.params import Params
from synthgen.stats import cluster_bootstrap
from synthgen.tasks import Tasks, make_tasks
from synthgen.universe import OUT_OF_BOUND, Universe


def pass_at_k(n, c, k: int) -> np.ndarray:
    """Unbiased pass@k (Chen et al. 2021): ``1 - C(n-c, k) / C(n, k)`` per task.

    Computed as ``1 - prod_{i=n-c+1}^{n} (1 - k/i)``, which is exact and stable for any
    n (no factorials).  It is 0 when c = 0 and 1 when n - c < k.  ``k`` must not exceed
    any ``n``: fewer samples than k say nothing about k tries."""
    n = np.asarray(n, dtype=np.int64)
    c = np.asarray(c, dtype=np.int64)
    if k < 1:
        raise ValueError(f"k must be >= 1; got {k}")
    if n.size and n.min() < k:
        raise ValueError(f"pass@{k} needs at least k = {k} samples per task; got n = {int(n.min())}")
    if c.size and (c.min() < 0 or (c > n).any()):
        raise ValueError("the number of passing samples c must be in 0..n")
    n, c = np.broadcast_arrays(n, c)
    out = np.ones(n.shape, dtype=np.float64)
    sure = n - c < k  # every k-subset holds a passing sample
    # product over i in (n-c, n]: a ragged range per task, done as one masked 2-D product
    width = int(c[~sure].max()) if (~sure).any() else 0
    if width:
        i = (n - c)[..., None] + 1 + np.arange(width)
        factors = np.where(i <= n[..., None], 1.0 - k / np.maximum(i, 1), 1.0)
        out = np.where(sure, 1.0, 1.0 - factors.prod(axis=-1))
    return np.where(c == 0, 0.0, out)


# --- the pass rule ----------------------------------------------------------------------


def judge(outputs: np.ndarray, has_outputs: np.ndarray, points: np.ndarray, examples: np.ndarray,
          targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The study's one rule: ``(consistent, passes)`` of candidates.

    ``outputs``: (T, n, P) each candidate's values on the whole grid; ``has_outputs``:
    (T, n), False for a candidate with none (unparsable, out of bound, not found: it is
    neither); task t's examples are its grid ``points`` (T, K) with values ``examples``
    (T, K), and its target's values on the grid are ``targets`` (T, P).  A candidate is
    consistent when it reproduces the K examples, and passes when it equals the target
    everywhere on the grid."""
    outputs = np.asarray(outputs)
    at_points = np.take_along_axis(outputs, np.asarray(points)[:, None, :], axis=-1)
    consistent = has_outputs & (at_points == np.asarray(examples)[:, None, :]).all(axis=-1)
    passes = has_outputs & (outputs == np.asarray(targets)[:, None, :]).all(axis=-1)
    return consistent, passes


def target_outputs(universe: Universe, tasks: Tasks) -> np.ndarray:
    """(T, P) the targets' values on the whole grid."""
    return universe.class_outputs[universe.semantic_class[tasks.targets]]


def judge_programs(universe: Universe, tasks: Tasks, program_ids) -> tuple[np.ndarray, np.ndarray]:
    """:func:`judge` for candidates that are programs of the universe, ids of shape
    ``(T, n)`` (-1: no program); a program's values are its semantic class's."""
    ids = np.asarray(program_ids, dtype=np.int64)
    cls = np.where(ids >= 0, universe.semantic_class[np.maximum(ids, 0)], OUT_OF_BOUND).astype(np.int64)
    outputs = universe.class_outputs[np.maximum(cls, 0)]  # (T, n, P)
    return judge(outputs, cls != OUT_OF_BOUND, tasks.points, tasks.outputs, target_outputs(universe, tasks))


def same_function(universe: Universe, programs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Per task: the returned program (``-1``: none) passes, i.e. it is in bound and
    computes the target's function on the whole grid (the rule of
    :func:`synthgen.evaluation.judge`)."""
    programs = np.asarray(programs, dtype=np.int64).reshape(-1)
    targets = np.asarray(targets, dtype=np.int64).reshape(-1)
    cls = np.where(programs >= 0, universe.semantic_class[np.maximum(programs, 0)], OUT_OF_BOUND)
    outputs = universe.class_outputs[np.maximum(cls, 0)][:, None, :]
    no_examples = np.zeros((len(targets), 0), dtype=np.int64)
    target_outputs = universe.class_outputs[universe.semantic_class[targets]]
    return judge(outputs, (cls != OUT_OF_BOUND)[:, None], no_examples, no_examples, target_outputs)[1][:, 0]


def score_candidates(universe: Universe, tasks: Tasks, candidates: Candidates) -> dict[str, np.ndarray]:
    """Per candidate, (n_tasks, n_candidates) bool arrays ``valid``, ``consistent`` and
    ``passes``.  Each distinct program is evaluated once on the grid; one that leaves
    the value bound fits nothing."""
    g: Grammar = universe.grammar
    shape = (len(tasks), max((len(row) for row in candidates.programs), default=0))
    valid, has = np.zeros(shape, dtype=bool), np.zeros(shape, dtype=bool)
    outputs = np.zeros((*shape, g.n_points), dtype=np.int64)
    outputs_of: dict[str, np.ndarray | None] = {}
    for i, row in enumerate(candidates.programs):
        for j, program in enumerate(row):
            if not isinstance(program, Program):
                continue
            valid[i, j] = True
            key = program.prefix()
            if key not in outputs_of:
                outputs_of[key] = g.evaluate(program)
            if outputs_of[key] is not None:
                outputs[i, j], has[i, j] = outputs_of[key], True
    consistent, passes = judge(outputs, has, tasks.points, tasks.outputs, target_outputs(universe, tasks))
    return {"valid": valid, "consistent": consistent, "passes": passes}


def task_table(
    universe: Universe, tasks: Tasks, scores: dict[str, np.ndarray], ks: Sequence[int] = (1,), ranked: bool = False
) -> pd.DataFrame:
    """One row per task: program_id, size, the share of its candidates that are valid
    and consistent, and pass@k for each k.

    Candidates are samples by default: pass@k is the unbiased estimator over all of
    them (with one greedy candidate per task, ``pass@1`` is greedy pass@1).  ``ranked``
    candidates (beam search, best first): pass@k is whether one of the first k passes."""
    passes = scores["passes"]
    n = passes.shape[1]
    c = passes.sum(axis=1)
    table = pd.DataFrame(
        {
            "program_id": tasks.targets,
            "semantic_class": universe.semantic_class[tasks.targets].astype(np.int64),
            "size": universe.size[tasks.targets].astype(np.int64),
            "valid": scores["valid"].mean(axis=1),
            "consistent": scores["consistent"].mean(axis=1),
        }
    )
    for k in ks:
        if ranked:
            if k > n:
                raise ValueError(f"pass@{k} needs at least k = {k} ranked candidates per task; got {n}")
            table[f"pass@{k}"] = passes[:, :k].any(axis=1).astype(np.float64)
        else:
            table[f"pass@{k}"] = pass_at_k(np.full(len(tasks), n), c, k)
    return table


def function_interval(values, functions, n_boot: int, confidence: float, seed: int,
                      purpose: str = "bootstrap") -> tuple[float, float]:
    """Percentile interval of the mean of per-task ``values`` whose tasks belong to
    ``functions`` (one label per task, e.g. the semantic class): the functions are
    resampled with their tasks, never the tasks alone (STUDY.md section 8)."""
    v = np.asarray(values, dtype=np.float64)
    if not len(v):
        return float("nan"), float("nan")
    return cluster_bootstrap(v, np.asarray(functions), n_boot, seed, purpose).interval(confidence)


def summarize(table: pd.DataFrame, metrics: Sequence[str], n_boot: int, confidence: float, seed: int) -> pd.DataFrame:
    """Mean of each metric column with its interval over functions (``semantic_class``):
    one row per metric."""
    rows = []
    for m in metrics:
        lo, hi = function_interval(table[m], table["semantic_class"], n_boot, confidence, seed, purpose=f"bootstrap:{m}")
        rows.append({"metric": m, "n": len(table), "functions": int(table["semantic_class"].nunique()),
                     "mean": float(table[m].mean()), "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(rows)


def breakdown(
    table: pd.DataFrame, by, metrics: Sequence[str], n_boot: int, confidence: float, seed: int, bins=None
) -> pd.DataFrame:
    """Means and intervals (over functions) of ``metrics`` per group.  ``by`` is a column of
    ``table`` (e.g. ``"size"``) or a per-task array (e.g. OOD distances).  ``bins``:
    ``None`` groups by value; an int cuts the covariate into that many quantile bins; a
    sequence gives the bin edges."""
    key = table[by].to_numpy() if isinstance(by, str) else np.asarray(by)
    if len(key) != len(table):
        raise ValueError(f"the covariate has {len(key)} values for {len(table)} tasks")
    name = by if isinstance(by, str) else "covariate"
    if bins is None:
        groups = pd.Series(key, name=name)
    elif isinstance(bins, int):
        groups = pd.qcut(key, q=bins, duplicates="drop")
    else:
        groups = pd.cut(key, bins=np.asarray(bins), include_lowest=True)
    rows = []
    for group, index in table.groupby(np.asarray(groups), observed=True, sort=True).groups.items():
        part = table.loc[index]
        for m in metrics:
            lo, hi = function_interval(part[m], part["semantic_class"], n_boot, confidence, seed,
                                       purpose=f"bootstrap:{m}:{group}")
            rows.append({name: group, "metric": m, "n": len(part), "mean": float(part[m].mean()), "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(rows)


def consistent_classes(universe: Universe, tasks: Tasks, chunk: int = 64) -> np.ndarray:
    """Per task, the number of semantic classes of the universe whose outputs at the
    task's K example inputs equal the examples (at least 1: the target's own class).

    Vectorised: for a chunk of tasks, a (chunk, n_classes) mask from the first two
    examples, read from the class outputs transposed so that one grid point's values
    over all classes are contiguous; the few (task, class) pairs left are then checked
    against the remaining examples together."""
    by_point = np.ascontiguousarray(universe.class_outputs.T.astype(np.int32))  # in-bound values fit int32
    out = np.empty(len(tasks), dtype=np.int64)
    first = min(2, tasks.n_examples)
    for s in range(0, len(tasks), chunk):
        points, outputs = tasks.points[s : s + chunk], tasks.outputs[s : s + chunk]
        fits = np.ones((len(points), universe.n_classes), dtype=bool)
        for j in range(first):
            fits &= by_point[points[:, j]] == outputs[:, j : j + 1]
        t, c = np.nonzero(fits)
        for j in range(first, tasks.n_examples):
            keep = by_point[points[t, j], c] == outputs[t, j]
            t, c = t[keep], c[keep]
        out[s : s + chunk] = np.bincount(t, minlength=len(points))
    return out


def ambiguity_ceiling(universe: Universe, tasks: Tasks) -> dict[str, float]:
    """How far K examples pin the target's semantic class down, over the given tasks.

    ``ambiguous`` (the ambiguity ceiling): share of tasks whose examples fit more than
    one class of the universe; only on the other ``1 - ambiguous`` does finding a
    consistent program guarantee a pass.  ``uniform_guess``: the expected pass@1 of a
    synthesizer that finds a consistent program and picks uniformly among the consistent
    classes (mean of 1/m); a reference point, not a bound: a model that prefers the
    likelier classes (e.g. simpler programs) can beat it.  ``mean_consistent_classes``:
    the mean m."""
    m = consistent_classes(universe, tasks)
    if not len(m):
        return {"ambiguous": float("nan"), "uniform_guess": float("nan"), "mean_consistent_classes": float("nan")}
    return {
        "ambiguous": float((m > 1).mean()),
        "uniform_guess": float((1.0 / m).mean()),
        "mean_consistent_classes": float(m.mean()),
    }


def evaluate(universe: Universe, model: Synthesizer, test_ids, params: Params, sample_seed: int | None = None) -> pd.DataFrame:
    """One row per test program: the tasks (purpose "test", from the study's root
    ``params.seed``, so every model of a split faces the same examples), greedy decoding
    (``valid``, ``consistent``, ``pass@1``), ``params.evaluation.n_samples`` samples at
    ``params.decoding.temperature`` (``sample_valid``, ``sample_consistent`` shares,
    ``sample@1`` the share that passes, and ``pass@k`` for each k > 1; drawn from ``sample_seed``, default the root seed), the top
    beam of ``params.decoding.beam_size`` (``beam@1``) and ``consistent_classes``.

    Why ``beam@1`` beside greedy ``pass@1``: greedy commits to one token at a time, and
    most tasks fit many functions; on the default budget, runs differing only in seed
    reached equal loss (1.50 to 1.52) and sampled pass@10 (0.40 to 0.41), but greedy pass@1
    from 0.26 to 0.36, while the top beam stayed within 0.35 to 0.39."""
    sample_seed = params.seed if sample_seed is None else sample_seed
    g, ev, dec = universe.grammar, params.evaluation, params.decoding
    tasks = make_tasks(universe, test_ids, params.tasks.n_examples, "test", params.seed)
    greedy = score_candidates(universe, tasks, synthesize(model, g, tasks, "greedy", constrained=dec.constrained))
    table = task_table(universe, tasks, greedy, ks=[1])
    samples = synthesize(
        model, g, tasks, "sample", constrained=dec.constrained, n=ev.n_samples, temperature=dec.temperature,
        seed=sample_seed,
    )
    sampled = task_table(universe, tasks, score_candidates(universe, tasks, samples), ks=sorted({1, *ev.k}))
    table["sample_valid"], table["sample_consistent"] = sampled["valid"], sampled["consistent"]
    table["sample@1"] = sampled["pass@1"]  # the share of the samples that pass: pass@1 of sampling
    for k in ev.k:
        if k > 1:
            table[f"pass@{k}"] = sampled[f"pass@{k}"]
    beams = synthesize(model, g, tasks, "beam", constrained=dec.constrained, beam_size=dec.beam_size)
    table["beam@1"] = task_table(universe, tasks, score_candidates(universe, tasks, beams), ks=[1], ranked=True)["pass@1"]
    table["consistent_classes"] = consistent_classes(universe, tasks)
    return table
