import numpy as np
import pytest

from synthgen.seeding import random_keys
from synthgen.tasks import example_points, make_tasks


def test_examples_are_the_programs_outputs_at_distinct_points(universe, valid_ids):
    ids = valid_ids[::997]
    tasks = make_tasks(universe, ids, 10, "test", seed=3)
    g = universe.grammar
    assert tasks.points.shape == (len(ids), 10)
    for i, pid in enumerate(ids):
        assert len(set(tasks.points[i].tolist())) == 10  # without replacement
        np.testing.assert_array_equal(tasks.outputs[i], g.evaluate(universe.program(pid), g.grid[tasks.points[i]]))


def test_a_task_depends_on_program_seed_and_draw_not_on_the_batch(universe, valid_ids):
    ids = valid_ids[:50]
    whole = make_tasks(universe, ids, 5, "test", seed=1)
    alone = make_tasks(universe, ids[[7]], 5, "test", seed=1)
    shuffled = make_tasks(universe, ids[::-1], 5, "test", seed=1)
    np.testing.assert_array_equal(alone.points[0], whole.points[7])
    np.testing.assert_array_equal(shuffled.points[::-1], whole.points)
    for other in (make_tasks(universe, ids, 5, "test", seed=2), make_tasks(universe, ids, 5, "train", seed=1),
                  make_tasks(universe, ids, 5, "test", seed=1, draw=1)):
        assert (other.points != whole.points).any()


def test_every_point_is_drawn_about_equally_often():
    n_points, k, n = 49, 10, 20000
    points = example_points(n_points, k, np.arange(n), "test", seed=0)
    counts = np.bincount(points.ravel(), minlength=n_points)
    expected = n * k / n_points
    assert np.abs(counts - expected).max() < 6 * np.sqrt(expected)


def test_out_of_bound_programs_and_bad_sizes_are_refused(universe, valid_ids):
    bad = np.flatnonzero(universe.semantic_class < 0)
    if len(bad):
        with pytest.raises(ValueError, match="out of bound"):
            make_tasks(universe, bad[:1], 5, "test", 0)
    with pytest.raises(ValueError, match="n_examples"):
        make_tasks(universe, valid_ids[:1], universe.grammar.n_points + 1, "test", 0)
    with pytest.raises(ValueError, match="program ids"):
        make_tasks(universe, [len(universe)], 5, "test", 0)


def test_random_keys_broadcast_and_differ_by_purpose():
    a = random_keys(0, "a", np.arange(3)[:, None], np.arange(4)[None, :])
    assert a.shape == (3, 4) and a.dtype == np.uint64 and len(np.unique(a)) == 12
    assert (random_keys(0, "b", np.arange(3)[:, None], np.arange(4)[None, :]) != a).all()
    np.testing.assert_array_equal(random_keys(0, "a", 2, 3), a[2, 3])


def test_keys_and_points_on_torch_tensors_are_the_numpy_ones(universe, valid_ids):
    """The training loop draws its tasks on its device: the same rule must give the same bits."""
    torch = pytest.importorskip("torch")
    from synthgen.seeding import key_order

    rows, cols = np.arange(0, 2**40, 2**33)[:, None], np.arange(300)[None, :]  # large indices too
    host = random_keys(5, "a", rows, 7, cols)
    device = random_keys(5, "a", torch.from_numpy(rows), 7, torch.from_numpy(cols))
    assert device.dtype == torch.int64
    np.testing.assert_array_equal(device.numpy().view(np.uint64), host)
    assert (host >= 2**63).any() and (host < 2**63).any()  # both halves: the unsigned order is tested
    np.testing.assert_array_equal(key_order(device, axis=1).numpy(), key_order(host, axis=1))
    ids, draws = valid_ids[::97], np.arange(len(valid_ids[::97])) % 4
    n_points = universe.grammar.n_points
    np.testing.assert_array_equal(
        example_points(n_points, 10, torch.from_numpy(ids), "train", 3, torch.from_numpy(draws)).numpy(),
        example_points(n_points, 10, ids, "train", 3, draws),
    )
    np.testing.assert_array_equal(example_points(n_points, 10, torch.from_numpy(ids), "test", 3, 2).numpy(),
                                  example_points(n_points, 10, ids, "test", 3, 2))
