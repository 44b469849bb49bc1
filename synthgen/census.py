"""Facts about a universe, as tables for the notebooks: counts per size against the
grammar's analytic count, classes per size, and the heavy tail of class sizes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from synthgen.grammar import analytic_counts
from synthgen.universe import Universe


def counts_by_size(u: Universe) -> pd.DataFrame:
    """Per size: programs enumerated, the analytic count, distinct classes among the
    programs of that size, and new classes (whose smallest program has that size)."""
    sizes = np.arange(1, u.grammar.max_size + 1)
    programs = np.bincount(u.size, minlength=len(sizes) + 1)[1:]
    valid = u.semantic_class >= 0
    distinct = [
        len(np.unique(u.semantic_class[(u.size == s) & valid])) for s in sizes
    ]
    rep_size = u.size[u.representatives()]
    new = np.bincount(rep_size, minlength=len(sizes) + 1)[1:]
    out_of_bound = np.bincount(u.size[~valid], minlength=len(sizes) + 1)[1:]
    return pd.DataFrame(
        {
            "size": sizes,
            "programs": programs,
            "analytic": analytic_counts(u.grammar),
            "classes_present": distinct,
            "new_classes": new,
            "out_of_bound": out_of_bound,
        }
    )


def class_table(u: Universe, top: int | None = None) -> pd.DataFrame:
    """Classes ordered by how many programs they hold, with their smallest program."""
    n = u.class_sizes()
    order = np.argsort(-n, kind="stable")[: top or len(n)]
    reps = u.representatives()[order]
    return pd.DataFrame(
        {
            "semantic_class": order,
            "n_programs": n[order],
            "share": n[order] / n.sum(),
            "smallest_program": [u.program(int(r)).infix() for r in reps],
            "smallest_size": u.size[reps],
        }
    )


def tail_summary(u: Universe) -> dict[str, float]:
    """How unevenly programs fall into classes."""
    n = np.sort(u.class_sizes())[::-1]
    cum = np.cumsum(n) / n.sum()
    return {
        "classes": int(len(n)),
        "singleton_classes": int((n == 1).sum()),
        "top_1pct_share": float(cum[max(int(0.01 * len(n)) - 1, 0)]),
        "classes_for_half_of_programs": int(np.searchsorted(cum, 0.5) + 1),
        "gini": float(_gini(n)),
    }


def _gini(x: np.ndarray) -> float:
    x = np.sort(x.astype(float))
    n = len(x)
    return float((2 * np.arange(1, n + 1) - n - 1) @ x / (n * x.sum())) if n else 0.0


def symbol_counts(u: Universe) -> np.ndarray:
    """(n_programs, n_symbols) count of each symbol's nodes in each program, built bottom
    up from the children's rows (children always have smaller ids)."""
    n_sym = len(u.grammar.symbols)
    counts = np.zeros((len(u), n_sym), dtype=np.uint8)
    offsets = u.size_offsets
    for s in range(1, u.grammar.max_size + 1):
        ids = np.arange(offsets[s - 1], offsets[s])
        block = np.zeros((len(ids), n_sym), dtype=np.uint8)
        block[np.arange(len(ids)), u.op[ids]] = 1
        for child in (u.left[ids], u.right[ids]):
            has = child >= 0
            block[has] += counts[child[has]]
        counts[ids] = block
    return counts


def salient_summary(u: Universe, ids: np.ndarray, counts: np.ndarray | None = None) -> dict[str, float]:
    """Salient variables of a set of programs: size, depth, operator use, constants."""
    counts = symbol_counts(u) if counts is None else counts
    g = u.grammar
    sym = counts[ids].astype(np.int64)
    const_cols = [g.symbols.index(str(c)) for c in g.constants]
    out = {
        "n": int(len(ids)),
        "mean_size": float(u.size[ids].mean()) if len(ids) else float("nan"),
        "mean_depth": float(u.depth[ids].mean()) if len(ids) else float("nan"),
        "share_with_constant": float((sym[:, const_cols].sum(axis=1) > 0).mean()) if const_cols else 0.0,
    }
    for v in g.variables:
        out[f"share_using_{v}"] = float((sym[:, g.symbols.index(v)] > 0).mean())
    for op in g.unary + g.binary:
        out[f"mean_{op}"] = float(sym[:, g.symbols.index(op)].mean())
    return out
