"""Scaling fits (STUDY.md section 6): is pass@1 log-linear in training compute?

The grid (:mod:`synthgen.scaling_run`) gives, per split, pass@1 of every test program at
every (size, budget) point, with the compute C of each point.  Here, with x = log10 C:

- :func:`fit_form` / :func:`predict`: the paper's form and two alternatives, by least
  squares on the points' mean pass@1:

  * ``log_linear``:  pass = a + b x  (the paper's claim);
  * ``saturating``:  pass = 1 - A C^(-alpha) = 1 - exp(u - alpha ln(10) x), a power law in
    the failure rate, which bends toward 1 instead of crossing it;
  * ``logistic``:    pass = 1 / (1 + exp(-(c + d x))), bending at both ends.

  All three have two parameters, so AIC ranks them as the residual sum of squares does;
  :func:`compare_forms` adds the error on a budget left out of the fit
  (leave-one-budget-out), which asks what a form is for: predicting points it was not
  fitted on.
- :func:`bootstrap_log_linear`: the log-linear fit with percentile bootstrap intervals
  from the study's hierarchical bootstrap (:func:`synthgen.stats.hierarchical_bootstrap`):
  training seeds, then held-out regions (where the split has several), then test
  functions, with the same resample at every point (every snapshot was evaluated on the
  same functions, and the seeds are paired by index).  Different splits have disjoint test
  sets, so their function resamples are independent, and a difference of slopes has the
  interval of the bootstrap differences (:func:`difference_interval`).
- :func:`compute_to_reach`: the log10 C at which a fitted line reaches a pass@1 (infinite
  when the slope is not positive).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from synthgen.stats import hierarchical_bootstrap
from synthgen.stats import percentile_interval as _percentile_interval

FORMS = ("log_linear", "saturating", "logistic")
_EPS = 1e-3  # keeps the logs of the starting guesses finite at pass@1 of 0 or 1


def predict(form: str, theta, x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    p, q = theta
    if form == "log_linear":
        return p + q * x
    if form == "saturating":
        return 1.0 - np.exp(p - q * np.log(10.0) * x)
    if form == "logistic":
        return 1.0 / (1.0 + np.exp(-(p + q * x)))
    raise ValueError(f"unknown form {form!r}; the forms are {', '.join(FORMS)}")


def log_linear(x, y) -> np.ndarray:
    """Least-squares (a, b) of y = a + b x; ``y`` may be (n_points, n_fits): one fit per column."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    xc = x - x.mean()
    b = np.tensordot(xc, y - y.mean(axis=0), axes=(0, 0)) / (xc @ xc)
    return np.stack([y.mean(axis=0) - b * x.mean(), b])


def fit_form(form: str, x, y) -> np.ndarray:
    """Least-squares parameters of ``form`` (see the module docstring) on points (x, y)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if form == "log_linear":
        return log_linear(x, y)
    clipped = np.clip(y, _EPS, 1 - _EPS)
    # start from the line the form becomes after its linearising transform
    if form == "saturating":
        a, b = log_linear(x, np.log(1 - clipped))
        start = (a, -b / np.log(10.0))
    elif form == "logistic":
        start = tuple(log_linear(x, np.log(clipped / (1 - clipped))))
    else:
        raise ValueError(f"unknown form {form!r}; the forms are {', '.join(FORMS)}")
    return least_squares(lambda t: predict(form, t, x) - y, np.asarray(start, dtype=np.float64)).x


def aic(residuals: np.ndarray, n_params: int = 2) -> float:
    """Akaike's criterion for Gaussian residuals: n ln(RSS / n) + 2 k."""
    n = len(residuals)
    return float(n * np.log(max(np.sum(residuals**2), 1e-300) / n) + 2 * n_params)


def compare_forms(points: pd.DataFrame) -> pd.DataFrame:
    """Per form: RMSE and AIC of the fit to all points, and the RMSE of the points of each
    budget predicted by a fit to the other budgets (``held_out_rmse``; the largest budget
    alone as ``extrapolation_rmse``).  ``points``: one row per (size, budget) with
    ``log10_compute``, ``budget`` and ``pass@1`` (the mean over test programs)."""
    x, y, budget = points["log10_compute"].to_numpy(), points["pass@1"].to_numpy(), points["budget"].to_numpy()
    rows = []
    for form in FORMS:
        residuals = predict(form, fit_form(form, x, y), x) - y
        held_out = np.empty_like(y)
        for b in np.unique(budget):
            out = budget == b
            held_out[out] = predict(form, fit_form(form, x[~out], y[~out]), x[out]) - y[out]
        last = budget == budget.max()
        rows.append({
            "form": form,
            "rmse": float(np.sqrt(np.mean(residuals**2))),
            "aic": aic(residuals),
            "held_out_rmse": float(np.sqrt(np.mean(held_out**2))),
            "extrapolation_rmse": float(np.sqrt(np.mean(held_out[last] ** 2))),
        })
    return pd.DataFrame(rows)


@dataclass
class LogLinearFit:
    """pass@1 = a + b log10 C for one split, with bootstrap replicates of (a, b)."""

    split: str
    a: float
    b: float
    boot_a: np.ndarray  # (n_boot,)
    boot_b: np.ndarray
    x: np.ndarray  # log10 C of the points
    y: np.ndarray  # mean pass@1 of the points
    confidence: float

    def interval(self, which: str) -> tuple[float, float]:
        return percentile_interval(getattr(self, f"boot_{which}"), self.confidence)

    @property
    def residuals(self) -> np.ndarray:
        return self.y - (self.a + self.b * self.x)


def percentile_interval(values, confidence: float) -> tuple[float, float]:
    """Percentile interval by order statistics (:func:`synthgen.stats.percentile_interval`),
    so that infinite replicates (a line that never reaches a target) give an infinite bound
    instead of a NaN."""
    return _percentile_interval(values, confidence)


POINT_KEYS = ["size", "budget", "compute"]


def _point_values(items: pd.DataFrame) -> tuple[pd.DataFrame, list[np.ndarray], np.ndarray]:
    """One split's per-program rows -> (points: one row per (size, budget) with its compute;
    per point a (n_seeds, n_functions) matrix of pass@1, functions in the same order at
    every point; the region of each function)."""
    items = items.assign(**{c: items.get(c, 0) for c in ("seed", "region") if c not in items})
    if "semantic_class" not in items:
        items = items.assign(semantic_class=items["program_id"])
    function_region = items.groupby("semantic_class")["region"].first().sort_index()
    points, values = [], []
    for key, part in items.groupby(POINT_KEYS, sort=True):
        wide = part.pivot_table(index="seed", columns="semantic_class", values="pass@1", aggfunc="mean")
        if wide.isna().any().any() or not wide.columns.equals(function_region.index):
            raise ValueError("every (size, budget, seed) point must be evaluated on the same test functions")
        points.append(dict(zip(POINT_KEYS, key)))
        values.append(wide.to_numpy(dtype=np.float64))
    if len({v.shape[0] for v in values}) > 1:
        raise ValueError("every (size, budget) point must have the same training seeds")
    points = pd.DataFrame(points)
    points["log10_compute"] = np.log10(points["compute"])
    points["pass@1"] = [v.mean() for v in values]
    return points, values, function_region.to_numpy()


def outcome_matrix(items: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """One split's per-program rows -> (points: one row per (size, budget) with its
    compute and mean pass@1, and Y: (n_points, n_functions) pass@1 averaged over seeds,
    functions in the same order everywhere)."""
    points, values, _ = _point_values(items)
    return points, np.stack([v.mean(axis=0) for v in values])


def bootstrap_log_linear(items: pd.DataFrame, n_boot: int, confidence: float, seed: int) -> LogLinearFit:
    """The log-linear fit of one split's grid, with seeds, regions and functions resampled
    ``n_boot`` times by the study's hierarchical bootstrap: the same resample at every point
    (one function purpose, named by the split, and the seed purpose shared by every fit)."""
    split = str(items["split"].iloc[0])
    points, values, regions = _point_values(items)
    clusters = regions if len(np.unique(regions)) > 1 else None
    estimates = [hierarchical_bootstrap(v, n_boot, seed, function_purpose=f"scaling:{split}", seed_purpose="seeds",
                                        clusters=clusters) for v in values]
    x = points["log10_compute"].to_numpy()
    y = np.array([e.estimate for e in estimates])
    a, b = log_linear(x, y)
    boot_a, boot_b = log_linear(x, np.stack([e.replicates for e in estimates]))
    return LogLinearFit(split, float(a), float(b), boot_a, boot_b, x, y, confidence)


def band_coverage(fit: LogLinearFit, points: pd.DataFrame) -> float:
    """Share of the points of one split whose pass@1 lies inside the fit's pointwise
    bootstrap band (the interval of a + b log10 C at their compute): whether the band
    covers the scatter of the points, or only the sampling of test functions."""
    lo, hi = band(fit, points["log10_compute"].to_numpy())
    y = points["pass@1"].to_numpy()
    return float(((y >= lo) & (y <= hi)).mean())


def band(fit: LogLinearFit, xs) -> tuple[np.ndarray, np.ndarray]:
    """The fit's pointwise bootstrap band of a + b x at ``xs`` (log10 C)."""
    lines = fit.boot_a[:, None] + fit.boot_b[:, None] * np.asarray(xs, dtype=np.float64)[None, :]
    lo, hi = zip(*(percentile_interval(lines[:, j], fit.confidence) for j in range(lines.shape[1])))
    return np.array(lo), np.array(hi)


def load_points(folder) -> pd.DataFrame:
    """Every item of the scaling grid (``artifacts/scaling/points/*.parquet``) in one table."""
    from pathlib import Path

    files = sorted(Path(folder).glob("*.parquet"))
    if not files:
        raise FileNotFoundError(f"no scaling points in {folder}: run the scaling stages first")
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def fit_splits(items: pd.DataFrame, splits, n_boot: int, confidence: float, seed: int) -> dict[str, LogLinearFit]:
    """The log-linear fit of every split of ``splits`` that the grid holds, in that order."""
    return {s: bootstrap_log_linear(items[items.split == s], n_boot, confidence, seed)
            for s in splits if s in set(items.split)}


def difference_interval(first: np.ndarray, second: np.ndarray, confidence: float) -> tuple[float, float]:
    """Interval of ``first - second`` from independent bootstrap replicates of each."""
    return percentile_interval(np.asarray(first) - np.asarray(second), confidence)


def compute_to_reach(a, b, target) -> np.ndarray:
    """log10 C at which a + b log10 C = target; +inf where the line never gets there."""
    a, b, target = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (a, b, target)))
    with np.errstate(divide="ignore", invalid="ignore"):
        x = (target - a) / b
    return np.where(b > 0, x, np.inf)
