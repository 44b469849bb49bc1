"""The study's results (STUDY.md sections 5 and 8; notebook 06, the ``results`` stage).

Inputs are the ``evaluate`` stage's tables, one per (split, training seed), joined with
the strata of each task (:func:`load_outcomes`).  The unit is the function: the outcome
of a function for one model is the mean over its tasks (one task per function by
default), and every figure is a mean over functions and training seeds with a
hierarchical bootstrap interval (:mod:`synthgen.stats`): seeds, then held-out regions
(support splits), then functions.

- :func:`estimate`: one split's mean of a metric, raw or post-stratified to a reference
  mix over chosen strata, with its bootstrap replicates.
- :func:`per_stratum`: every split's metric within each stratum.
- :func:`density_comparison`: each diverse sampler against random training, on the
  density family's shared test set: a paired difference (same functions, same seeds).
- :func:`support_comparison`: each support split's relative drop against iid, raw and on
  matched strata (both post-stratified to the reference mix over the strata both hold),
  and against the iid functions without a twin in training.
- :func:`twin_comparison`: every split's mean on its test functions with and without a
  twin in its training set (the floor of section 8 reads iid's without).
- :func:`by_region`, :func:`by_seed`: the spread a single region or seed would hide.
- :func:`generalization_map`: pass@1 over the plane (syntactic OOD distance, semantic
  OOD distance), binned, with the number of functions in each cell.

Pairing is decided by the bootstrap's purposes: every split uses the seed purpose
``"seeds"`` (the same training seeds, resampled alike), and a test set's functions are
resampled under the name of the test set (:func:`synthgen.splits.test_set_of`): the
density samplers share theirs, so they compare function by function; iid and the support
splits hold different functions and resample independently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from synthgen.params import Params
from synthgen.paths import evaluation_path, ood_path, split_path
from synthgen.split_files import DENSITY_SPLITS, SUPPORT_SPLITS, read_ood, read_split, test_set_of
from synthgen.stats import Estimate, difference, hierarchical_bootstrap, ratio_drop
from synthgen.strata import matched_weights, reference_weights, stratum_labels, task_strata
from synthgen.universe import Universe

SEED_PURPOSE = "seeds"


# --- the outcomes ---------------------------------------------------------------------------


def load_outcomes(universe: Universe, params: Params, splits: Sequence[str], seeds: Sequence[int] | None = None,
                  root=None) -> pd.DataFrame:
    """One row per (split, training seed, test task): the evaluation table of the model,
    the task's OOD distances (written by the splits stage), its strata
    (:func:`synthgen.strata.task_strata`) and ``twin`` (its function occurs in the split's
    training set; never for a guarded split)."""
    seeds = params.seeds if seeds is None else seeds
    frames = []
    for split in splits:
        train_ids, _, _ = read_split(split_path(split, root))
        trained = np.unique(universe.semantic_class[train_ids])
        ood = read_ood(ood_path(split, root))
        for seed in seeds:
            table = pd.read_parquet(evaluation_path(split, seed, root)).merge(ood, on="program_id", how="left")
            strata = task_strata(universe, table.program_id.to_numpy(), params.measurement.class_size_edges)
            table = pd.concat([table.reset_index(drop=True), strata.drop(columns=["size", "semantic_class"])], axis=1)
            table["twin"] = np.isin(table.semantic_class, trained)
            frames.append(table)
    return pd.concat(frames, ignore_index=True)


@dataclass(frozen=True)
class Functions:
    """One split's outcomes per (seed, function): ``values[s, f]`` is the mean of the
    metric over function f's tasks for the model of seed ``seeds[s]``; ``meta`` has one row
    per function (``semantic_class``, ``region``, the strata, ``twin`` and the OOD
    distances averaged over its tasks)."""

    split: str
    seeds: np.ndarray
    values: np.ndarray
    meta: pd.DataFrame


def functions_of(outcomes: pd.DataFrame, split: str, metric: str = "pass@1", where=None) -> Functions:
    """Per (seed, function) outcomes of ``split``; ``where``: a boolean mask over
    ``outcomes`` (e.g. ``~outcomes.twin``) restricting the functions."""
    rows = outcomes[(outcomes.split == split) & (True if where is None else where)]
    if rows.empty:
        raise ValueError(f"no outcomes for split {split!r}" + ("" if where is None else " under the condition"))
    wide = rows.pivot_table(index="seed", columns="semantic_class", values=metric, aggfunc="mean")
    if wide.isna().any().any():
        raise ValueError(f"split {split}: every seed's model must be evaluated on the same test functions")
    first = rows[rows.seed == wide.index[0]]
    meta = first.groupby("semantic_class", sort=True).agg(
        region=("region", "first"), kind=("kind", "first"), commonness=("commonness", "first"),
        class_size=("class_size", "first"), min_size=("min_size", "first"), size=("size", "mean"),
        twin=("twin", "first"), ood_pqgram=("ood_pqgram", "mean"), ood_syntax=("ood_syntax", "mean"),
        ood_semantics=("ood_semantics", "mean"),
    ).loc[wide.columns].reset_index()
    return Functions(split, wide.index.to_numpy(), wide.to_numpy(dtype=np.float64), meta)


# --- estimates ---------------------------------------------------------------------------------


def estimate(outcomes: pd.DataFrame, split: str, params: Params, metric: str = "pass@1", weights: dict | None = None,
             where=None, purpose: str | None = None) -> Estimate:
    """The mean of ``metric`` over ``split``'s functions and training seeds, raw or (with
    ``weights``, stratum label -> weight over ``measurement.match_on``) post-stratified,
    with hierarchical bootstrap replicates (seeds, regions when the split has several,
    functions).  ``purpose`` names the resample of the functions; by default the test set's
    name (shared by the density family: paired)."""
    f = functions_of(outcomes, split, metric, where)
    regions = f.meta.region.to_numpy()
    return hierarchical_bootstrap(
        f.values, params.evaluation.bootstrap, params.seed,
        function_purpose=f"functions:{purpose or test_set_of(split)}", seed_purpose=SEED_PURPOSE,
        clusters=regions if len(np.unique(regions)) > 1 else None,
        strata=stratum_labels(f.meta, params.measurement.match_on) if weights is not None else None,
        weights=weights,
    )


def summary(e: Estimate, confidence: float, digits: int = 4) -> dict:
    """``{"estimate", "ci"}`` of an estimate, rounded, NaN as None (JSON has no NaN)."""
    lo, hi = e.interval(confidence)

    def clean(v):
        return None if not np.isfinite(v) else round(float(v), digits)

    return {"estimate": clean(e.estimate), "ci": [clean(lo), clean(hi)]}


def reference_mix(outcomes: pd.DataFrame, params: Params) -> dict[str, float]:
    """The stratum weights every comparison is post-stratified to
    (``measurement.reference_mix``): the iid test set's functions, or uniform over the
    strata found in any split."""
    mix, match_on = params.measurement.reference_mix, params.measurement.match_on
    if mix == "iid":
        iid = functions_of(outcomes, "iid").meta
        return reference_weights("iid", stratum_labels(iid, match_on))
    labels = stratum_labels(outcomes.drop_duplicates(["split", "semantic_class"]), match_on)
    return reference_weights("uniform", labels=list(labels))


def labels_of(outcomes: pd.DataFrame, split: str, params: Params, where=None) -> np.ndarray:
    return stratum_labels(functions_of(outcomes, split, where=where).meta, params.measurement.match_on)


def table_of(estimates: dict, params: Params) -> pd.DataFrame:
    """Rows of ``{key: Estimate}`` as estimate, ci_low, ci_high."""
    rows = []
    for key, e in estimates.items():
        lo, hi = e.interval(params.evaluation.confidence)
        rows.append({**(dict(key) if isinstance(key, tuple) else {"name": key}), "estimate": e.estimate,
                     "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(rows)


def per_split(outcomes: pd.DataFrame, splits: Sequence[str], params: Params, metrics: Sequence[str]) -> pd.DataFrame:
    """Every split's raw mean of each metric over functions and seeds, with its interval."""
    return table_of({(("split", s), ("metric", m)): estimate(outcomes, s, params, m) for s in splits for m in metrics},
                    params)


def per_stratum(outcomes: pd.DataFrame, splits: Sequence[str], params: Params, by: str | Sequence[str],
                metric: str = "pass@1") -> pd.DataFrame:
    """Every split's mean of ``metric`` within each stratum of ``by`` (one of
    :data:`synthgen.strata.STRATA`, or several), with the number of functions."""
    by = [by] if isinstance(by, str) else list(by)
    rows = []
    for split in splits:
        meta = functions_of(outcomes, split).meta
        labels = stratum_labels(meta, by)
        for label in sorted(set(labels)):
            classes = meta.semantic_class[labels == label]
            e = estimate(outcomes, split, params, metric, where=outcomes.semantic_class.isin(classes),
                         purpose=f"{test_set_of(split)}:{'|'.join(by)}={label}")
            lo, hi = e.interval(params.evaluation.confidence)
            rows.append({"split": split, "stratum": label, "functions": int(len(classes)), "estimate": e.estimate,
                         "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(rows)


# --- the comparisons ----------------------------------------------------------------------------


def density_comparison(outcomes: pd.DataFrame, params: Params, metric: str = "pass@1") -> pd.DataFrame:
    """Each diverse sampler minus random training, on the density family's shared test set:
    paired over functions and seeds.  ``raw``: over all test functions; ``matched``:
    post-stratified to the reference mix (the samplers share their functions, so matching
    only re-weighs the strata)."""
    base = "density_random"
    weights = matched_weights(reference_mix(outcomes, params), labels_of(outcomes, base, params))
    rows = []
    for split in DENSITY_SPLITS[1:]:
        for how, w in (("raw", None), ("matched", weights)):
            d = difference(estimate(outcomes, split, params, metric, w), estimate(outcomes, base, params, metric, w))
            lo, hi = d.interval(params.evaluation.confidence)
            rows.append({"split": split, "estimate": how, "difference": d.estimate, "ci_low": lo, "ci_high": hi,
                         "replicates": d})
    return pd.DataFrame(rows)


def support_comparison(outcomes: pd.DataFrame, params: Params, metric: str = "pass@1") -> pd.DataFrame:
    """Each support split's relative drop ``1 - pass(split) / pass(reference)``:

    - ``raw``: against all iid functions, each side its own mix;
    - ``matched``: both post-stratified to the reference mix, over the strata both hold
      (``coverage``: the reference weight of those strata);
    - ``matched, no twin``: against the iid functions whose function is not in iid's
      training set (like every held-out test function), matched the same way.

    The support splits and iid share no functions: their resamples are independent."""
    ref = reference_mix(outcomes, params)
    iid_labels = labels_of(outcomes, "iid", params)
    no_twin = ~outcomes.twin
    rows = []
    for split in SUPPORT_SPLITS:
        if split not in set(outcomes.split):
            continue
        labels = labels_of(outcomes, split, params)
        cases = [("raw", None, None, "iid"), ("matched", matched_weights(ref, labels, iid_labels), None, "iid")]
        if no_twin[outcomes.split == "iid"].any():
            nt_labels = labels_of(outcomes, "iid", params, where=no_twin)
            cases.append(("matched, no twin", matched_weights(ref, labels, nt_labels), no_twin, "iid:no-twin"))
        for how, w, where, purpose in cases:
            if w is not None and not w:
                continue  # no stratum in common
            drop = ratio_drop(estimate(outcomes, split, params, metric, w),
                              estimate(outcomes, "iid", params, metric, w, where=where, purpose=purpose))
            lo, hi = drop.interval(params.evaluation.confidence)
            rows.append({"split": split, "estimate": how, "drop": drop.estimate, "ci_low": lo, "ci_high": hi,
                         "coverage": 1.0 if w is None else sum(ref.get(h, 0.0) for h in w),
                         "replicates": drop})
    return pd.DataFrame(rows)


def twin_comparison(outcomes: pd.DataFrame, params: Params, splits: Sequence[str] | None = None,
                    metric: str = "pass@1") -> pd.DataFrame:
    """Every split's mean of ``metric`` on its test functions ``"no twin"`` (no program of
    the split's training set computes the function) and ``"with twin"``, raw, with the
    number of functions (0, and NaN figures, where a split has none: the guarded support
    splits have no twin).  iid's ``"no twin"`` figure is the instrument's floor test
    (STUDY.md section 8, :mod:`synthgen.verdicts`); it resamples the functions as
    :func:`support_comparison`'s no-twin reference does."""
    splits = list(dict.fromkeys(outcomes.split)) if splits is None else splits
    rows = []
    for split in splits:
        for how, where in (("no twin", ~outcomes.twin), ("with twin", outcomes.twin)):
            n = int(outcomes[(outcomes.split == split) & where].semantic_class.nunique())
            row = {"split": split, "twin": how, "functions": n, "estimate": np.nan, "ci_low": np.nan,
                   "ci_high": np.nan, "replicates": None}
            if n:
                e = estimate(outcomes, split, params, metric, where=where,
                             purpose=f"{test_set_of(split)}:{'no-twin' if how == 'no twin' else 'twin'}")
                lo, hi = e.interval(params.evaluation.confidence)
                row |= {"estimate": e.estimate, "ci_low": lo, "ci_high": hi, "replicates": e}
            rows.append(row)
    return pd.DataFrame(rows)


def by_region(outcomes: pd.DataFrame, split: str, params: Params, metric: str = "pass@1") -> pd.DataFrame:
    """A support split's mean per held-out region (over its functions and the seeds)."""
    meta = functions_of(outcomes, split).meta
    rows = []
    for r in sorted(meta.region.unique()):
        classes = meta.semantic_class[meta.region == r]
        e = estimate(outcomes, split, params, metric, where=outcomes.semantic_class.isin(classes),
                     purpose=f"{split}:region={r}")
        lo, hi = e.interval(params.evaluation.confidence)
        rows.append({"split": split, "region": int(r), "functions": int(len(classes)), "estimate": e.estimate,
                     "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(rows)


def by_seed(outcomes: pd.DataFrame, splits: Sequence[str], metric: str = "pass@1") -> pd.DataFrame:
    """Every split's mean over its functions, per training seed (rows: splits)."""
    return pd.DataFrame({s: dict(zip(f.seeds.tolist(), f.values.mean(axis=1)))
                         for s in splits for f in [functions_of(outcomes, s, metric)]}).T.rename_axis("split")


def generalization_map(
    table: pd.DataFrame, x: str, y: str, metric: str = "pass@1", bins: int = 6
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(mean ``metric``, count) per cell of a ``bins`` x ``bins`` grid over the columns
    ``x`` and ``y`` (one row per function, its metric averaged over seeds); cells are
    quantile bins of each axis, so that each row and column of the map holds about the same
    number of functions."""
    data = table[[x, y, metric]].dropna()
    xb = pd.qcut(data[x], q=bins, duplicates="drop")
    yb = pd.qcut(data[y], q=bins, duplicates="drop")
    grouped = data.groupby([yb, xb], observed=False)[metric]
    mean = grouped.mean().unstack()
    count = grouped.size().unstack().fillna(0).astype(int)
    # rows from far (top) to near (bottom), as on a map with the origin at the lower left
    return mean.iloc[::-1], count.iloc[::-1]


def per_function(outcomes: pd.DataFrame, splits: Sequence[str], metric: str = "pass@1") -> pd.DataFrame:
    """One row per (split, function): its strata and OOD distances and ``metric``
    averaged over its tasks and the seeds (what the generalization map bins)."""
    frames = []
    for s in splits:
        f = functions_of(outcomes, s, metric)
        frames.append(f.meta.assign(split=s, **{metric: f.values.mean(axis=0)}))
    return pd.concat(frames, ignore_index=True)
