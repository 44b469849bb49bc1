"""Point labels that do not overlap: notebook 09 labels each recipe's point, and recipes
of about the same cost sit on top of each other."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt


def label_points(ax: plt.Axes, xs: Sequence[float], ys: Sequence[float], labels: Sequence[str], *,
                 gap: float = 0.05, window: float = 0.25, fontsize: float = 8) -> list:
    """Label each point (data coordinates) just to its right. Where two labels would
    overlap (their points less than ``window`` apart across, less than ``gap`` apart up
    and down, both as shares of the axes), the upper one moves up, and a thin line joins a
    moved label to its point. Call it once the axes' scales and limits are set. Returns
    the text objects, lowest point first."""
    to_axes = ax.transAxes.inverted()
    points = [tuple(to_axes.transform(ax.transData.transform((x, y)))) for x, y in zip(xs, ys)]
    placed: list[tuple[float, float]] = []  # (x, label y) of the labels placed so far, lowest points first
    texts = []
    for i in sorted(range(len(points)), key=lambda i: (points[i][1], points[i][0])):
        x, y = points[i]
        label_y = y
        moved = True
        while moved:  # up past every placed label it would overlap, until none
            moved = False
            for px, py in placed:
                if abs(px - x) < window and abs(py - label_y) < gap * (1 - 1e-6):  # (a label just moved to
                    label_y, moved = py + gap, True                                 # py + gap clears py)
        placed.append((x, label_y))
        shifted = label_y - y > 1e-9
        texts.append(ax.annotate(
            labels[i], xy=(xs[i], ys[i]), xycoords="data", xytext=(x + 0.012, label_y + 0.012),
            textcoords="axes fraction", fontsize=fontsize, annotation_clip=False,
            arrowprops=dict(arrowstyle="-", lw=0.5, color="grey", shrinkA=0, shrinkB=3) if shifted else None,
        ))
    return texts
