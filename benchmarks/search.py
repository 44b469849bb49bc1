"""Benchmark: search methods on the default universe, K = 10 random examples per task.

Prints one table, one row per method: tasks, how many it solved (returned a consistent
program) and how many of those pass, the programs it examined per task, wall time, and
the rates, with the ratio to a per-candidate Python baseline measured in the same run.
The neural-guided methods (sample-and-filter, best-first) use the pipeline's iid model
when it exists; their "programs examined" are the candidates they checked, and their
rate includes the model's time, which dominates it.

    python benchmarks/search.py [--tasks 300] [--repeats 3] [--baseline-tasks 30] [--baseline-budget 3000]
                                [--neural-tasks 100] [--samples 64] [--expansions 1024]

"Programs examined" counts candidates in plain enumeration order, what a bottom-up
enumerator that checks programs in id order would have checked to reach its answer.  The
baseline does exactly that, one program at a time (rebuild the tree, evaluate it at the
example inputs with ``Grammar.evaluate``, compare), under a budget per task because it
would take minutes per task otherwise; its answers are checked against the vectorised
search under the same budget.  Walking from program 0, it meets the smallest trees, the
cheapest to evaluate: its rate flatters it, so the ratio is a lower bound.  The vectorised
search reaches the same answers through its index, so its programs/s is the enumeration it
stands in for, per second of wall time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synthgen.enumeration import enumerate_universe  # noqa: E402
from synthgen.grammar import Grammar  # noqa: E402
from synthgen.params import load_params  # noqa: E402
from synthgen.evaluation import same_function as passes  # noqa: E402
from synthgen.search import EnumerativeSearch, SearchResults  # noqa: E402
from synthgen.tasks import Tasks  # noqa: E402
from synthgen.tasks import make_tasks  # noqa: E402
from synthgen.seeding import rng_for  # noqa: E402
from synthgen.universe import Universe  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
K = 10


@dataclass
class Row:
    """One method's line of the table."""

    method: str
    tasks: int
    solved: int  # returned a consistent program (within its budget)
    passed: int  # ... in the target's semantic class
    programs_examined: int  # summed over tasks, in enumeration order
    seconds: float  # wall time for all its tasks
    tasks_per_second: float | None = None  # None: from tasks / seconds
    note: str = ""


def enumerative(search: EnumerativeSearch, tasks: Tasks, repeats: int, method: str) -> tuple[Row, SearchResults]:
    runs = [search.search_batch(tasks.points, tasks.outputs) for _ in range(repeats)]
    r = runs[0]
    row = Row(
        method=method,
        tasks=len(tasks),
        solved=int(r.found.sum()),
        passed=int(passes(search.universe, r.program, tasks.targets).sum()),
        programs_examined=int(r.programs_examined.sum()),
        seconds=statistics.median(run.seconds for run in runs),
        note=f"median of {repeats}; {r.candidates_compared.sum() / len(tasks):,.0f} classes compared per task by the index",
    )
    return row, r


def per_candidate_python(universe: Universe, tasks: Tasks, budget: int) -> tuple[Row, np.ndarray]:
    """Walk programs in id order, evaluating each at the example inputs, up to ``budget``
    programs per task.  Returns the row and each task's answer (-1: none in budget)."""
    g = universe.grammar
    answers = np.full(len(tasks), -1, dtype=np.int64)
    examined = 0
    start = time.perf_counter()
    for t in range(len(tasks)):
        inputs, outputs = g.grid[tasks.points[t]], tasks.outputs[t]
        for i in range(min(budget, len(universe))):
            examined += 1
            if universe.semantic_class[i] < 0:  # out of bound on the grid: never an answer
                continue
            out = g.evaluate(universe.program(i), inputs)
            if out is not None and np.array_equal(out, outputs):
                answers[t] = i
                break
    seconds = time.perf_counter() - start
    row = Row(
        method="per-candidate Python (baseline)",
        tasks=len(tasks),
        solved=int((answers >= 0).sum()),
        passed=int(passes(universe, answers, tasks.targets).sum()),
        programs_examined=examined,
        seconds=seconds,
        note=f"at most {budget:,} programs per task",
    )
    return row, answers


def neural(universe: Universe, tasks: Tasks, method: str, budget: int, model, model_note: str) -> Row:
    """Sample-and-filter or best-first search at one budget; "programs examined" are the
    candidates it checked against the examples (model time included in its rate)."""
    from synthgen.search.neural import ProgramIndex, best_first, sample_and_filter

    index = ProgramIndex(universe)
    start = time.perf_counter()
    if method == "sample_and_filter":
        rows = sample_and_filter(model, universe, tasks, [budget], index=index)
        what = f"{budget} samples per task"
    else:
        rows = best_first(model, universe, tasks, [budget], index=index)
        what = f"at most {budget} expansions per task"
    seconds = time.perf_counter() - start
    return Row(
        method=method.replace("_", "-"),
        tasks=len(tasks),
        solved=int(rows.solved.sum()),
        passed=int(rows.passed.sum()),
        programs_examined=int(rows.candidates.sum()),
        seconds=seconds,
        note=f"{what}; {model_note}; {rows.model_calls.mean():,.0f} decoder calls and {rows.flops.mean():.2e} "
             f"model FLOPs per task",
    )


def load_search_model(params):
    """The iid model of the pipeline if it has run, else an untrained one of the default size."""
    import torch

    from synthgen.model import ModelConfig, Synthesizer
    from synthgen.training import MODEL_FILE, load_model

    torch.set_num_threads(params.training.threads)
    path = ROOT / "artifacts" / "models" / "iid" / MODEL_FILE
    if path.is_file():
        return load_model(path), "the pipeline's trained iid model"
    torch.manual_seed(0)
    config = ModelConfig.from_params(params.model, Grammar.from_params(params.grammar))
    return Synthesizer(config).eval(), "an UNTRAINED model of the default size (run the pipeline for the trained one)"


def print_table(rows: list[Row], base_rate: float) -> None:
    header = ("method", "tasks", "solved", "passed", "programs/task", "wall s", "tasks/s", "programs/s", "vs baseline")
    table = []
    for r in rows:
        rate = r.programs_examined / r.seconds
        tps = r.tasks_per_second if r.tasks_per_second is not None else r.tasks / r.seconds
        table.append((
            r.method, f"{r.tasks:,}", f"{r.solved:,}", f"{r.passed:,}", f"{r.programs_examined / r.tasks:,.0f}",
            f"{r.seconds:.3f}", f"{tps:,.2f}", f"{rate:,.0f}", f"{rate / base_rate:,.0f}x" if rate >= 10 * base_rate else f"{rate / base_rate:.3f}x",
        ))
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(header)]
    print("  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(header, widths))))
    print("  ".join("-" * w for w in widths))
    for row in table:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
    print()
    for r in rows:
        print(f"{r.method}: {r.note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline-tasks", type=int, default=30)
    parser.add_argument("--baseline-budget", type=int, default=3000, help="programs per task for the baseline")
    parser.add_argument("--neural-tasks", type=int, default=100, help="tasks for the neural-guided methods")
    parser.add_argument("--samples", type=int, default=64, help="samples per task (sample-and-filter)")
    parser.add_argument("--expansions", type=int, default=1024, help="expansions per task (best-first)")
    args = parser.parse_args()

    params = load_params(ROOT / "profiles" / "default.yaml")
    universe = enumerate_universe(Grammar.from_params(params.grammar))
    start = time.perf_counter()
    search = EnumerativeSearch(universe)
    index_seconds = time.perf_counter() - start

    rng = rng_for(params.seed, "benchmark", "search")
    targets = rng.choice(np.flatnonzero(universe.semantic_class >= 0), size=args.tasks, replace=False)
    tasks = make_tasks(universe, targets, K, "benchmark-search", params.seed)
    # The same targets, all with the example inputs of the first task.
    shared_points = np.tile(tasks.points[0], (len(tasks), 1))
    shared_outputs = universe.class_outputs[universe.semantic_class[targets][:, None], shared_points]
    shared = Tasks(targets, shared_points, shared_outputs)

    vectorised, results = enumerative(search, tasks, args.repeats, "enumerative (vectorised)")
    rows = [vectorised, enumerative(search, shared, args.repeats, "enumerative, shared example inputs")[0]]
    mean_to_answer = vectorised.programs_examined / vectorised.tasks
    few = Tasks(*(a[: args.baseline_tasks] for a in (tasks.targets, tasks.points, tasks.outputs)))
    baseline, answers = per_candidate_python(universe, few, args.baseline_budget)
    base_rate = baseline.programs_examined / baseline.seconds
    # The baseline cannot finish its tasks: its tasks/s is its rate over the programs a
    # plain enumeration needs per task, known exactly from the enumerative search.
    baseline.tasks_per_second = base_rate / mean_to_answer
    baseline.note += "; tasks/s extrapolated from the enumerative search's programs/task"
    rows.append(baseline)
    model, model_note = load_search_model(params)
    some = Tasks(*(a[: args.neural_tasks] for a in (tasks.targets, tasks.points, tasks.outputs)))
    rows.append(neural(universe, some, "sample_and_filter", args.samples, model, model_note))
    rows.append(neural(universe, some, "best_first", args.expansions, model, model_note))

    print(f"default universe: {len(universe):,} programs, {universe.n_classes:,} classes; K = {K} examples per task")
    print(f"index build (once per universe): {index_seconds:.3f} s\n")
    print_table(rows, base_rate)

    same_budget = search.search_batch(few.points, few.outputs, budget=args.baseline_budget)
    agree = int((same_budget.program == answers).sum())
    print(f"\nagreement with the baseline under its budget: {agree}/{len(few)} tasks")
    ambiguity = results.consistent_classes
    print(f"ambiguity at K = {K}: median {np.median(ambiguity):.0f} consistent classes per task, "
          f"{(ambiguity == 1).mean():.0%} of tasks unambiguous; "
          f"the smallest consistent program passes on {vectorised.passed / vectorised.tasks:.0%}")
    if agree != len(few):
        sys.exit("the vectorised search and the baseline disagree")


if __name__ == "__main__":
    main()
