"""Where things live in the repository, found from any working directory.

Notebooks run with their own folder as working directory in JupyterLab and with the
repository root under papermill; both resolve paths through :func:`repo_root`.
"""

from __future__ import annotations

import os
from pathlib import Path


def repo_root(start: str | Path | None = None) -> Path:
    """The nearest folder at or above ``start`` (default: cwd) holding ``dvc.yaml``."""
    env = os.environ.get("SYNTHGEN_ROOT")
    if env:
        return Path(env).resolve()
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "dvc.yaml").is_file() and (folder / "params.yaml").is_file():
            return folder
    raise FileNotFoundError(f"no synthgen repository (dvc.yaml + params.yaml) at or above {here}")


def artifacts_dir(name: str, root: Path | None = None) -> Path:
    return (root or repo_root()) / "artifacts" / name


def figures_dir(stage: str, root: Path | None = None) -> Path:
    path = (root or repo_root()) / "reports" / "figures" / stage
    path.mkdir(parents=True, exist_ok=True)
    return path


def metrics_path(name: str, root: Path | None = None) -> Path:
    path = (root or repo_root()) / "reports" / "metrics" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def split_path(split: str, root: Path | None = None) -> Path:
    """The split file of ``split`` (the splits stage writes it)."""
    return artifacts_dir("splits", root) / f"{split}.parquet"


def ood_path(split: str, root: Path | None = None) -> Path:
    """The OOD distances of ``split``'s test items (the splits stage writes them)."""
    return artifacts_dir("ood", root) / f"{split}.parquet"


def model_dir(split: str, seed: int, root: Path | None = None) -> Path:
    """The run directory of the model trained on ``split`` with training ``seed``."""
    return artifacts_dir("models", root) / split / f"seed{seed}"


def checkpoint_dir(split: str, seed: int, root: Path | None = None) -> Path:
    """Where the run of (``split``, ``seed``) keeps its checkpoint: beside the train stage's
    output, not in it, so that a killed run resumes while the output (the finished model)
    stays one that DVC's run-cache can restore (docs/scaling-out.md)."""
    return artifacts_dir("checkpoints", root) / split / f"seed{seed}"


def evaluation_path(split: str, seed: int, root: Path | None = None) -> Path:
    """The per-task evaluation table of the model of (``split``, ``seed``)."""
    return artifacts_dir("evaluation", root) / split / f"seed{seed}.parquet"
