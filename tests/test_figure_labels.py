import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from synthgen.figure_labels import label_points  # noqa: E402


def _overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


@pytest.mark.parametrize("xscale", ["linear", "log"])
def test_labels_of_points_on_top_of_each_other_do_not_overlap(xscale):
    """Notebook 09's case: recipes of about the same cost and score. The clustered labels
    are moved apart and joined to their points; a label with room keeps its place."""
    xs = [28.2, 28.3, 28.5, 28.6, 7.2, 13.7]
    ys = [0.024, 0.0241, 0.015, 0.013, 0.0, 0.004]
    names = ["decoder_heavy_800k", "batch_128_800k", "tasks_800k", "data_100k_800k", "tasks_200k", "base"]
    fig, ax = plt.subplots(figsize=(8, 5))
    ax.plot(xs, ys, "o")
    ax.set(xscale=xscale, ylim=(-0.002, 0.04))
    texts = label_points(ax, xs, ys, names)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [Text.get_window_extent(t, renderer) for t in texts]  # the text alone, without its line
    assert [t.get_text() for t in texts] == ["tasks_200k", "base", "data_100k_800k", "tasks_800k",
                                             "decoder_heavy_800k", "batch_128_800k"]  # lowest point first
    for i in range(len(boxes)):
        for j in range(i):
            assert not _overlap(boxes[i], boxes[j]), (texts[i].get_text(), texts[j].get_text())
    moved = {t.get_text() for t in texts if t.arrow_patch is not None}
    assert moved == {"tasks_800k", "batch_128_800k"}  # each a share of the axes under `gap` above a label
    plt.close(fig)


def test_without_a_move_every_label_sits_beside_its_point():
    fig, ax = plt.subplots()
    ax.plot([1, 2, 3], [1, 2, 3], "o")
    texts = label_points(ax, [1, 2, 3], [1, 2, 3], ["a", "b", "c"])
    assert all(t.arrow_patch is None for t in texts)
    to_axes = ax.transAxes.inverted()
    for t, (x, y) in zip(texts, [(1, 1), (2, 2), (3, 3)]):
        px, py = to_axes.transform(ax.transData.transform((x, y)))
        assert t.get_position() == pytest.approx((px + 0.012, py + 0.012))
    plt.close(fig)
