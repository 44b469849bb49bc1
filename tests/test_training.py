import pytest
import torch

from synthgen.decoding import synthesize
from synthgen.evaluation import score_candidates
from synthgen.tasks import make_tasks
from synthgen.training import CURVE_FILE, discard_stale_run, learning_rate, load_model, train
from tests.conftest import smoke_params


def test_learning_rate_warms_up_then_decays_to_min():
    steps, lr, low = 100, 1e-3, 1e-4
    rates = [learning_rate(s, steps, lr, low, warmup=0.1) for s in range(steps + 1)]
    assert rates[0] == pytest.approx(lr / 10) and rates[9] == pytest.approx(lr)
    assert all(a >= b for a, b in zip(rates[9:], rates[10:]))
    assert rates[steps] == pytest.approx(low)


def test_a_tiny_model_overfits_a_handful_of_tasks(universe, valid_ids, tmp_path):
    P = smoke_params(
        model={"encoder_layers": 1, "decoder_layers": 1, "width": 64, "heads": 4},
        training={"tasks": 32 * 300, "batch_size": 32, "lr": 0.003, "min_lr": 0.0003, "checkpoint_every": 300, "log_every": 50},
    )
    ids = valid_ids[[100, 2000, 5000, 9000, 12000, 15000]]  # programs of sizes 3 to 5
    result = train(universe, ids, P, tmp_path, progress=False)
    tasks = make_tasks(universe, ids, P.tasks.n_examples, "test", P.seed)
    scores = score_candidates(universe, tasks, synthesize(result.model, universe.grammar, tasks, "greedy"))
    assert scores["passes"].all()


def _small_run(tmp_path, name):
    P = smoke_params(
        model={"encoder_layers": 1, "decoder_layers": 1, "width": 16, "heads": 2, "dropout": 0.1},
        training={"tasks": 16 * 30, "batch_size": 16, "checkpoint_every": 10, "log_every": 5},
    )
    return P, tmp_path / name


class Killed(Exception):
    pass


def test_resuming_after_a_kill_matches_an_uninterrupted_run(universe, valid_ids, tmp_path):
    ids, val = valid_ids[::50], valid_ids[1::400]
    P, whole_dir = _small_run(tmp_path, "whole")
    whole = train(universe, ids, P, whole_dir, val_ids=val, progress=False)

    P, killed_dir = _small_run(tmp_path, "killed")

    def kill(step):
        if step == 17:  # between checkpoints: steps 11..17 are lost and redone
            raise Killed

    with pytest.raises(Killed):
        train(universe, ids, P, killed_dir, val_ids=val, progress=False, on_step=kill)
    assert torch.load(killed_dir / "checkpoint.pt", weights_only=True)["step"] == 10
    resumed = train(universe, ids, P, killed_dir, val_ids=val, progress=False)

    for (name, a), b in zip(whole.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert (whole_dir / CURVE_FILE).read_bytes() == (killed_dir / CURVE_FILE).read_bytes()
    reloaded = load_model(killed_dir / "model.pt")
    for a, b in zip(whole.model.state_dict().values(), reloaded.state_dict().values()):
        assert torch.equal(a, b)


def test_a_finished_run_that_resumes_rewrites_the_same_bytes(universe, valid_ids, tmp_path):
    """A pipeline stage rerun on a finished run (say after an unrelated code change) must
    leave its files byte-identical, or every stage downstream of it reruns."""
    ids = valid_ids[::50]
    P, run_dir = _small_run(tmp_path, "run")
    train(universe, ids, P, run_dir, progress=False)
    before = {f.name: f.read_bytes() for f in run_dir.iterdir()}
    train(universe, ids, P, run_dir, progress=False)
    assert {f.name: f.read_bytes() for f in run_dir.iterdir()} == before


def test_a_checkpoint_of_another_run_is_refused(universe, valid_ids, tmp_path):
    P, out = _small_run(tmp_path, "run")
    train(universe, valid_ids[::50], P, out, progress=False)
    with pytest.raises(ValueError, match="other params"):
        train(universe, valid_ids[::51], P, out, progress=False)


def test_a_stage_discards_a_stale_run_and_keeps_a_matching_one(universe, valid_ids, tmp_path):
    P, out = _small_run(tmp_path, "run")
    train(universe, valid_ids[::50], P, out, progress=False)
    assert not discard_stale_run(universe, valid_ids[::50], P, out)  # the same run: resumable, kept
    assert (out / "checkpoint.pt").exists()
    ablated = P.model_copy(update={"training": P.training.model_copy(update={"lr": P.training.lr / 2})})
    assert discard_stale_run(universe, valid_ids[::50], ablated, out)
    assert not any(out.iterdir())
    train(universe, valid_ids[::50], ablated, out, progress=False)  # now starts afresh
