"""The study's comparisons, from per-task evaluation tables (notebook 06).

- :func:`relative_drop`: how much lower a split's pass@1 is than the reference's, as a
  share of the reference, with a bootstrap interval that resamples both test sets.
- :func:`paired_difference`: the difference in pass@1 of two models on the *same* test
  tasks, with a bootstrap interval that resamples the tasks jointly (the density family
  shares one test set, so its samplers compare task by task).
- :func:`generalization_map`: pass@1 over the plane (syntactic OOD distance, semantic
  OOD distance), binned, with the number of tasks in each cell.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from synthgen.seeding import random_keys


def _resampled_means(values: np.ndarray, n_boot: int, seed: int, purpose: str) -> np.ndarray:
    keys = random_keys(seed, purpose, np.arange(n_boot)[:, None], np.arange(len(values))[None, :])
    return values[(keys % np.uint64(len(values))).astype(np.int64)].mean(axis=1)


def relative_drop(
    reference: np.ndarray, shifted: np.ndarray, n_boot: int, confidence: float, seed: int, purpose: str = "drop"
) -> dict[str, float]:
    """``1 - mean(shifted) / mean(reference)`` with a percentile bootstrap interval
    (independent resamples of the two test sets).  Positive = the shifted split is worse."""
    ref, sh = np.asarray(reference, float), np.asarray(shifted, float)
    if ref.mean() == 0:
        return {"drop": float("nan"), "ci_low": float("nan"), "ci_high": float("nan")}
    r = _resampled_means(ref, n_boot, seed, f"{purpose}:reference")
    s = _resampled_means(sh, n_boot, seed, f"{purpose}:shifted")
    with np.errstate(divide="ignore", invalid="ignore"):
        drops = 1.0 - s / r
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.nanquantile(drops, [alpha, 1.0 - alpha])
    return {"drop": float(1.0 - sh.mean() / ref.mean()), "ci_low": float(lo), "ci_high": float(hi)}


def paired_difference(
    first: np.ndarray, second: np.ndarray, n_boot: int, confidence: float, seed: int, purpose: str = "paired"
) -> dict[str, float]:
    """``mean(first) - mean(second)`` over the same tasks (row i of both is task i), with a
    percentile bootstrap interval that resamples tasks, keeping each task's pair."""
    a, b = np.asarray(first, float), np.asarray(second, float)
    if a.shape != b.shape or a.ndim != 1 or not len(a):
        raise ValueError(f"need two equal-length, non-empty 1-D arrays of per-task values; got {a.shape} and {b.shape}")
    boots = _resampled_means(a - b, n_boot, seed, purpose)
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(boots, [alpha, 1.0 - alpha])
    return {"difference": float(a.mean() - b.mean()), "ci_low": float(lo), "ci_high": float(hi)}


def generalization_map(
    table: pd.DataFrame, x: str, y: str, metric: str = "pass@1", bins: int = 6
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(mean ``metric``, task count) per cell of a ``bins`` x ``bins`` grid over the
    columns ``x`` and ``y``; cells are quantile bins of each axis over all tasks, so that
    each row and column of the map holds about the same number of tasks."""
    data = table[[x, y, metric]].dropna()
    xb = pd.qcut(data[x], q=bins, duplicates="drop")
    yb = pd.qcut(data[y], q=bins, duplicates="drop")
    grouped = data.groupby([yb, xb], observed=False)[metric]
    mean = grouped.mean().unstack()
    count = grouped.size().unstack().fillna(0).astype(int)
    # rows from far (top) to near (bottom), as on a map with the origin at the lower left
    return mean.iloc[::-1], count.iloc[::-1]
