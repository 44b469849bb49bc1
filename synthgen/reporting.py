"""Figures and small outputs shared by the notebooks."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import seaborn as sns

from synthgen.atomic import atomic_path
from synthgen.paths import figures_dir


def setup_style() -> None:
    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind")
    plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 120, "figure.autolayout": True})


def save_figure(fig: plt.Figure, stage: str, name: str) -> Path:
    """Save ``fig`` as ``reports/figures/<stage>/<name>.png`` atomically and
    deterministically (no timestamp in the PNG metadata)."""
    target = figures_dir(stage) / f"{name}.png"
    with atomic_path(target) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None}, bbox_inches="tight")
    return target
