"""Scaling fits (STUDY.md section 6): is pass@1 log-linear in training compute?

The grid (:mod:`synthgen.scaling_grid`) gives, per split, pass@1 of every test program at
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
- :func:`bootstrap_log_linear`: the log-linear fit with percentile bootstrap intervals,
  resampling the split's *test programs* (the same resample at every point, since every
  snapshot was evaluated on the same programs), from a seeded stream.  Different splits
  have disjoint test sets, so their resamples are independent and a difference of
  slopes has the interval of the bootstrap differences (:func:`difference_interval`).
- :func:`compute_to_reach`: the log10 C at which a fitted line reaches a pass@1 (infinite
  when the slope is not positive).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from synthgen.seeding import random_keys

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
    """Percentile interval by order statistics, so that infinite replicates (a line that
    never reaches a target) give an infinite bound instead of a NaN."""
    v = np.sort(np.asarray(values, dtype=np.float64))
    alpha = (1.0 - confidence) / 2.0
    lo = int(np.floor(alpha * (len(v) - 1)))
    hi = int(np.ceil((1.0 - alpha) * (len(v) - 1)))
    return float(v[lo]), float(v[hi])


def outcome_matrix(items: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """One split's per-program rows -> (points: one row per (size, budget) with its
    compute, and Y: (n_points, n_programs) pass@1, programs in the same order everywhere)."""
    wide = items.pivot_table(index=["size", "budget", "compute"], columns="program_id", values="pass@1")
    if wide.isna().any().any():
        raise ValueError("every (size, budget) point must be evaluated on the same test programs")
    points = wide.index.to_frame(index=False)
    points["log10_compute"] = np.log10(points["compute"])
    points["pass@1"] = wide.to_numpy().mean(axis=1)
    return points, wide.to_numpy()


def bootstrap_log_linear(items: pd.DataFrame, n_boot: int, confidence: float, seed: int) -> LogLinearFit:
    """The log-linear fit of one split's grid, with test programs resampled ``n_boot``
    times (the same resample at every point) from a stream named by the split."""
    split = str(items["split"].iloc[0])
    points, Y = outcome_matrix(items)
    x = points["log10_compute"].to_numpy()
    n = Y.shape[1]
    keys = random_keys(seed, f"scaling-bootstrap:{split}", np.arange(n_boot)[:, None], np.arange(n)[None, :])
    idx = (keys % np.uint64(n)).astype(np.int64)  # (n_boot, n)
    means = Y[:, idx].mean(axis=2)  # (n_points, n_boot)
    a, b = log_linear(x, Y.mean(axis=1))
    boot_a, boot_b = log_linear(x, means)
    return LogLinearFit(split, float(a), float(b), boot_a, boot_b, x, Y.mean(axis=1), confidence)


def difference_interval(first: np.ndarray, second: np.ndarray, confidence: float) -> tuple[float, float]:
    """Interval of ``first - second`` from independent bootstrap replicates of each."""
    return percentile_interval(np.asarray(first) - np.asarray(second), confidence)


def compute_to_reach(a, b, target) -> np.ndarray:
    """log10 C at which a + b log10 C = target; +inf where the line never gets there."""
    a, b, target = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (a, b, target)))
    with np.errstate(divide="ignore", invalid="ignore"):
        x = (target - a) / b
    return np.where(b > 0, x, np.inf)
