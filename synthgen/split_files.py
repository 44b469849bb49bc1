"""The split files and the names of the splits: what every stage after the splits reads.

    train_ids, test, facts = read_split(split_path("iid"))     # test: program_id, region
    ood = read_ood(ood_path("iid"))                            # the test items' OOD distances

Kept apart from :mod:`synthgen.splits` (which draws the splits and needs the spaces,
k-means and the pq-gram machinery), so that a stage that only reads a split depends on
this small module alone: an edit to how splits are drawn reruns the splits stage, and the
stages after it only if the split files it writes change.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from synthgen.atomic import atomic_path

DENSITY_SAMPLERS = ("random", "diverse_syntax", "diverse_semantics", "diverse_both")
SPLIT_NAMES = ("iid", *(f"density_{s}" for s in DENSITY_SAMPLERS), "support_syntax", "support_semantics")
"""Every split, in the order the study reports them: the one list that dvc.yaml's matrices,
the notebooks and the release follow (tests/test_pipeline.py checks dvc.yaml against it)."""
DENSITY_SPLITS = SPLIT_NAMES[1:5]
SUPPORT_SPLITS = SPLIT_NAMES[5:]


def test_set_of(split: str) -> str:
    """The name of the test set a split is evaluated on: the density family shares one, so
    its samplers compare function by function (a paired comparison); every other split has
    its own."""
    return "density" if split in DENSITY_SPLITS else split


def _write_table(frame: pd.DataFrame, meta: dict, target: Path) -> Path:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata({b"synthgen.split": json.dumps(meta, sort_keys=True).encode()})
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return target


def write_split(s, folder: str | Path) -> Path:
    """``<folder>/<name>.parquet`` of a :class:`synthgen.splits.Split` ``s``: one row per
    program, ``part`` = train, test or (iid only) validation, the
    held-out ``region`` of each test program (0 for splits with one test set; -1 on
    training rows), and the split's facts in the file's metadata.  Deterministic bytes.

    The strata of the test tasks (:mod:`synthgen.strata`) and their OOD distances
    (:func:`write_ood`) are not stored here: measuring them another way must not change
    the split files, nor rerun the training and evaluation that read them."""
    parts = [
        pd.DataFrame({"program_id": s.train, "region": np.full(len(s.train), -1, dtype=np.int64)}).assign(part="train"),
        pd.DataFrame({"program_id": s.test, "region": s.region.astype(np.int64)}).assign(part="test"),
    ]
    if s.validation is not None and len(s.validation):
        parts.append(pd.DataFrame({"program_id": s.validation, "region": np.full(len(s.validation), -1, dtype=np.int64)})
                     .assign(part="validation"))
    frame = pd.concat(parts, ignore_index=True)
    meta = {"name": s.name, "family": s.family, "guarded": s.guarded, "guard_removed": s.guard_removed,
            "filter_removed": s.filter_removed, "notes": s.notes}
    return _write_table(frame, meta, Path(folder) / f"{s.name}.parquet")


def write_ood(s, frame: pd.DataFrame, folder: str | Path) -> Path:
    """``<folder>/<name>.parquet``: the test items' OOD distances (:func:`ood_frame`)."""
    return _write_table(frame, {"name": s.name}, Path(folder) / f"{s.name}.parquet")


def read_split(path: str | Path) -> tuple[np.ndarray, pd.DataFrame, dict]:
    """(training ids, test frame: ``program_id`` and ``region``, the split's facts) of a
    split file."""
    table = pq.read_table(path)
    frame = table.to_pandas()
    train = frame.loc[frame.part == "train", "program_id"].to_numpy()
    test = frame.loc[frame.part == "test"].drop(columns="part").reset_index(drop=True)
    return train, test, json.loads(table.schema.metadata[b"synthgen.split"])


def read_validation(path: str | Path) -> np.ndarray:
    """The validation program ids of a split file (iid's; empty for the others): one per
    function, out of every training and test set, for choosing the synthesizer's recipe
    (:mod:`synthgen.calibration`) without looking at a test set."""
    frame = pq.read_table(path, columns=["program_id", "part"]).to_pandas()
    return frame.loc[frame.part == "validation", "program_id"].to_numpy()


def read_ood(path: str | Path) -> pd.DataFrame:
    """The OOD distances of a split's test items, as :func:`write_ood` wrote them."""
    return pq.read_table(path).to_pandas()
