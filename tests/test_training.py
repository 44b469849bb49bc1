import shutil
import warnings

import pytest
import torch
import yaml

from synthgen.decoding import synthesize
from synthgen.evaluation import score_candidates
from synthgen.tasks import make_tasks
from synthgen.params import TrainingParams
from synthgen.training import (CURVE_FILE, MODEL_FILE, RUN_SETTINGS, Batches, discard_stale_run, learning_rate, load_model,
                               make_optimizer, run_fingerprint, train)
from tests.conftest import ROOT, smoke_params

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU"))]


def test_learning_rate_warms_up_then_decays_to_min():
    steps, lr, low = 100, 1e-3, 1e-4
    rates = [learning_rate(s, steps, lr, low, warmup=0.1) for s in range(steps + 1)]
    assert rates[0] == pytest.approx(lr / 10) and rates[9] == pytest.approx(lr)
    assert all(a >= b for a, b in zip(rates[9:], rates[10:]))
    assert rates[steps] == pytest.approx(low)


@pytest.mark.slow(seconds=5)
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


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("every", [50, 3000])  # a batch spans at most two epochs; many epochs
def test_batches_drawn_on_the_device_are_the_host_batches(universe, valid_ids, device, every):
    """The device draws with the host's rules (hashes, orders, encodings), so its batches
    are bit for bit the per-step host batches the loop used to build, at every step,
    in whatever order the steps are asked for (a resumed run starts mid-stream)."""
    ids, batch_size = valid_ids[::every], 16
    batches = Batches(universe, ids, 10, batch_size, seed=4, device=device)
    per_epoch = len(ids) / batch_size
    steps = sorted({0, 1, int(per_epoch), int(per_epoch) + 1, int(3 * per_epoch), int(3 * per_epoch) + 1, 57})
    for step in steps[::-1] + steps:
        examples, programs = batches.at(step)
        assert examples.device.type == programs.device.type == device
        host_examples, host_programs = batches.host_at(step)
        assert torch.equal(examples.cpu(), host_examples), step
        assert torch.equal(programs.cpu(), host_programs), step
    assert not torch.equal(batches.at(1)[0], batches.at(2)[0])


def _small_run(tmp_path, name, **training):
    P = smoke_params(
        model={"encoder_layers": 1, "decoder_layers": 1, "width": 16, "heads": 2, "dropout": 0.1},
        training={"tasks": 16 * 30, "batch_size": 16, "checkpoint_every": 10, "log_every": 5, **training},
    )
    return P, tmp_path / name


class Killed(Exception):
    pass


def _kill_resume_and_compare(universe, ids, val, tmp_path, **training):
    P, whole_dir = _small_run(tmp_path, "whole", **training)
    whole = train(universe, ids, P, whole_dir, val_ids=val, progress=False)

    P, killed_dir = _small_run(tmp_path, "killed", **training)

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
    return whole


def test_resuming_after_a_kill_matches_an_uninterrupted_run(universe, valid_ids, tmp_path):
    # 357 programs, 16 a batch: step 22's batch spans the first epoch's end, in the redone part
    whole = _kill_resume_and_compare(universe, valid_ids[::50], valid_ids[1::400], tmp_path)
    assert whole.curve[-1]["train_loss"] < whole.curve[0]["train_loss"]


def test_resuming_matches_when_every_batch_spans_several_epochs(universe, valid_ids, tmp_path):
    _kill_resume_and_compare(universe, valid_ids[::4000], None, tmp_path)  # 5 programs, 16 a batch


def test_auto_precision_is_bf16_exactly_where_the_device_has_it(universe, valid_ids, tmp_path, monkeypatch):
    """``training.bf16: auto`` trains as the explicit setting that the device's bf16
    instructions give (here faked both ways): the same weights bit for bit and the same
    checkpoint fingerprint, so a run resumes across the two spellings; and the two
    precisions do give different runs."""
    import synthgen.training as training

    ids = valid_ids[::50]
    runs = {}
    for name, setting, native in (("auto_native", "auto", True), ("auto_emulated", "auto", False),
                                  ("bf16", True, False), ("fp32", False, True)):
        monkeypatch.setattr(training, "native_bf16", lambda device, native=native: native)
        P, out = _small_run(tmp_path, name, bf16=setting)
        runs[name] = (train(universe, ids, P, out, progress=False), out)

    def same(a, b):
        return all(torch.equal(x, y) for x, y in zip(runs[a][0].model.state_dict().values(),
                                                     runs[b][0].model.state_dict().values()))

    def fingerprint(name):
        return torch.load(runs[name][1] / "checkpoint.pt", weights_only=True)["fingerprint"]

    assert runs["auto_native"][0].bf16 is True and runs["auto_emulated"][0].bf16 is False
    assert same("auto_native", "bf16") and fingerprint("auto_native") == fingerprint("bf16")
    assert same("auto_emulated", "fp32") and fingerprint("auto_emulated") == fingerprint("fp32")
    assert not same("bf16", "fp32") and fingerprint("bf16") != fingerprint("fp32")


@pytest.mark.slow(seconds=25)
def test_a_compiled_run_resumes_exactly(universe, valid_ids, tmp_path):
    """``training.compile``: the compiled model shares the model's parameters, and its
    dropout draws from the generator a checkpoint restores.  One thread: inductor's
    parallel CPU reductions do not add in a fixed order (two compiled runs on two
    threads differ in the last bits), so only a single-threaded compiled run is exact.
    Scalar kernels (no SIMD): what is checked does not depend on the instruction set, and
    on a fresh machine (an empty inductor cache) g++ builds them in 40 CPU-seconds, not 60."""
    import torch._inductor.config as inductor

    with inductor.patch({"cpp.vec_isa_ok": False}):
        _kill_resume_and_compare(universe, valid_ids[::50], None, tmp_path, compile=True, threads=1)


def test_the_curve_reads_the_mean_loss_of_each_interval(universe, valid_ids, tmp_path):
    """The loss is summed on the device and read every ``log_every`` steps: a row is the
    mean of its interval's step losses, and reading less often changes nothing else."""
    ids = valid_ids[::50]
    P1, dir1 = _small_run(tmp_path, "every_step", log_every=1)
    P5, dir5 = _small_run(tmp_path, "every_5", log_every=5)
    every_step = train(universe, ids, P1, dir1, progress=False)
    every_5 = train(universe, ids, P5, dir5, progress=False)
    assert len(every_step.curve) == 30 and len(every_5.curve) == 6
    for i, row in enumerate(every_5.curve):
        interval = every_step.curve[5 * i : 5 * i + 5]
        assert row["step"] == interval[-1]["step"]
        assert row["train_loss"] == sum(r["train_loss"] for r in interval) / 5
    for a, b in zip(every_step.model.state_dict().values(), every_5.model.state_dict().values()):
        assert torch.equal(a, b)


def test_adamw_is_fused_on_cpu_and_cuda():
    model = torch.nn.Linear(4, 4)
    assert make_optimizer(model, 1e-3, 0.1).defaults["fused"]
    assert not make_optimizer(model, 1e-3, 0.1, fused=False).defaults["fused"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU: the host cannot wait for a CPU")
def test_a_training_step_does_not_wait_for_the_gpu(universe, valid_ids, tmp_path):
    """Between log rows nothing makes the host wait for the GPU: CUDA's sync debug mode
    warns at every synchronising call, and no warning may fall in a step that neither
    logs nor checkpoints."""
    P, out = _small_run(tmp_path, "run", device="cuda", log_every=10, checkpoint_every=10)
    warned_by_step = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            train(universe, valid_ids[::50], P, out, progress=False, on_step=lambda s: warned_by_step.update({s: len(caught)}))
        finally:
            torch.cuda.set_sync_debug_mode("default")
    quiet = [s for s in range(2, 31) if s % 10]  # step 1 may set up; steps 10, 20, 30 log
    waited = [s for s in quiet if warned_by_step[s] > warned_by_step[s - 1]]
    assert not waited, f"steps {waited} waited for the GPU"


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


def test_a_checkpoint_kept_apart_resumes_into_an_emptied_output(universe, valid_ids, tmp_path):
    """The train stage keeps its checkpoint out of its output, which DVC empties before it
    runs the stage: a killed run still resumes, and a finished one rewrites the same model
    and curve, byte for byte, as an uninterrupted run in one folder."""
    ids = valid_ids[::50]
    P, whole_dir = _small_run(tmp_path, "whole")
    train(universe, ids, P, whole_dir, progress=False)
    out, checkpoints = tmp_path / "out", tmp_path / "checkpoints"

    def kill(step):
        if step == 17:
            raise Killed

    with pytest.raises(Killed):
        train(universe, ids, P, out, checkpoint_dir=checkpoints, progress=False, on_step=kill)
    assert not (out / "checkpoint.pt").exists() and (checkpoints / "checkpoint.pt").exists()
    for again in range(2):  # resumed after the kill, then rerun on the finished checkpoint
        shutil.rmtree(out)
        train(universe, ids, P, out, checkpoint_dir=checkpoints, progress=False)
        assert sorted(f.name for f in out.iterdir()) == sorted([CURVE_FILE, MODEL_FILE])
        for name in (CURVE_FILE, MODEL_FILE):
            assert (out / name).read_bytes() == (whole_dir / name).read_bytes(), (again, name)


def test_the_device_is_a_run_setting_not_part_of_the_run(universe, valid_ids):
    P = smoke_params()
    on_gpu = P.model_copy(update={"training": P.training.model_copy(update={"device": "cuda:1", "threads": 1})})
    ids = valid_ids[::50]
    assert run_fingerprint(P, 0, ids, universe.grammar.symbols) == run_fingerprint(on_gpu, 0, ids, universe.grammar.symbols)


def test_the_train_stage_reads_every_training_key_but_the_run_settings_and_no_stage_reads_those():
    """dvc.yaml's train stage: a key that shapes the run is a param (changing it reruns the
    stage); a run setting is not, so that a model trained on cuda:1 by a queued experiment
    is the same stage, in DVC's run-cache, as one trained here (docs/scaling-out.md)."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    keys = {p.removeprefix("training.") for p in stages["train"]["params"] if p.startswith("training")}
    assert keys == set(TrainingParams.model_fields) - set(RUN_SETTINGS)
    assert set(RUN_SETTINGS) <= set(TrainingParams.model_fields)
    for name, stage in stages.items():  # and no stage reads a run setting (or the whole section)
        assert not {"training", *(f"training.{k}" for k in RUN_SETTINGS)} & set(stage.get("params", [])), name


@pytest.mark.parametrize("name", ["train", "evaluate", "scaling_run"])
def test_the_grid_stages_can_be_restored_from_dvc_run_cache(name):
    """DVC's run-cache skips a stage with a persistent output, and one with an uncached
    output other than a metric or plot; an uncached metric or plot is not pushed to a
    remote with the run-cache, so another machine could not restore it either."""
    stage = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"][name]
    for kind in ("outs", "metrics", "plots"):
        for out in stage.get(kind, []):
            options = next(iter(out.values())) if isinstance(out, dict) else {}
            assert not options.get("persist", False) and options.get("cache", True), (name, out)
