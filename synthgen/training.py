"""Training the synthesizer: a plain loop, nanoGPT-style, that can be killed and resumed.

    result = train(universe, train_ids, params, out_dir, val_ids=val_ids)

What is fixed by what:

- **Budget.** ``training.tasks`` tasks, i.e. ``ceil(tasks / batch_size)`` optimiser steps.
- **Data.** Step ``s`` trains on positions ``s*B .. (s+1)*B - 1`` of an endless stream:
  epoch ``e`` is a permutation of ``train_ids`` keyed by a hash of ("train-order", seed,
  e), and each program's K examples are drawn afresh each epoch (purpose "train", draw
  ``e``).  So the batch of a step is a pure function of (seed, step): the data-order
  position a checkpoint needs is the step, and nothing depends on call order.  The
  batch is drawn on the training device (:class:`Batches`): the training programs'
  tokens and class outputs live there, and the same hashes give the same bits as the
  host's numpy.
- **Optimiser.** AdamW (decay on matrices only; fused where the device has the kernel),
  linear warm-up over ``warmup`` of the steps, then cosine decay from ``lr`` to
  ``min_lr``; the schedule is a pure function of the step, so it has no state beyond the
  step either.
- **The device is kept busy.** Nothing in a step makes the host wait for the device:
  the batch is drawn there, and the loss is summed there and read every ``log_every``
  steps; the host waits only at a log row, a checkpoint, or in ``on_step``.  ``training.compile``
  runs the model through ``torch.compile``: a faster step after a slow first one.
- **Checkpoints.** Every ``checkpoint_every`` steps and at the end, ``checkpoint.pt``
  (model, optimiser, step, torch RNG state, the curve so far) and ``curve.tsv`` are
  written atomically.  A killed run, restarted with the same arguments, resumes from the
  last checkpoint and loses at most one interval; the result is bit-identical to an
  uninterrupted run (tests/test_training.py).  A checkpoint made with other params,
  seed or training programs, or by a loop that computed differently
  (``TRAINING_LOOP_VERSION``), is refused, not silently resumed.
- **Device.** ``training.device``: ``cpu`` (the default profile), ``cuda`` (the paper
  profile) or ``cuda:N``, one GPU of several (each worker of a DVC queue its own:
  docs/scaling-out.md); :func:`load_model` puts a trained model there for evaluation
  and search.  On a GPU, or compiled on more than one CPU thread, resuming is exact only
  as far as the kernels are deterministic.  Device, threads, compilation and the
  checkpoint interval (:data:`RUN_SETTINGS`) may change when a run resumes; the rest of
  ``training`` may not.
- **Outputs** in ``out_dir``: ``model.pt`` (config and weights of the finished run, for
  evaluation) and ``curve.tsv`` (step, tasks, lr, train_loss and, given ``val_ids``,
  val_loss: ``dvc plots`` reads it), written when the run ends.  ``checkpoint.pt`` (and
  the curve so far) goes to ``checkpoint_dir``, by default ``out_dir``; the train stage
  keeps it apart, so that its output is the finished model only and DVC's run-cache can
  restore it (docs/scaling-out.md).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from synthgen.atomic import atomic_path, write_text
from synthgen.params import Params, TrainingParams
from synthgen.model import ModelConfig, Synthesizer, count_parameters, training_flops_per_task
from synthgen.seeding import derive_seed, key_order, random_keys
from synthgen.tasks import check_program_ids, example_points, make_tasks
from synthgen.tokenizer import PAD, ExampleTokenizer, ProgramTokenizer
from synthgen.universe import Universe

CHECKPOINT_FILE = "checkpoint.pt"
MODEL_FILE = "model.pt"
CURVE_FILE = "curve.tsv"
CURVE_COLUMNS = ("step", "tasks", "lr", "train_loss", "val_loss")
ADAM_BETAS = (0.9, 0.95)  # nanoGPT's: a shorter second-moment memory suits short, noisy runs
VAL_TASKS_DRAW = 0
FUSED_ADAMW_DEVICES = ("cpu", "cuda")  # torch 2.13 has a fused AdamW kernel for these
# Part of every checkpoint's fingerprint: bumped when the code changes the numbers a run
# gives, so that a persisted checkpoint of the older code is started afresh (a pipeline
# stage discards it) instead of being resumed, or re-emitted as this code's model.
# 2: fused AdamW, batches drawn on the device.
TRAINING_LOOP_VERSION = 2
# The keys of ``training`` that say how and where a run computes, not what: a checkpoint
# may resume under other values (they stay out of its fingerprint), and dvc.yaml's train
# stage leaves them out of its params (a test checks), so a model trained on cuda:1 by one
# worker of a DVC queue is the same stage, in DVC's run-cache, as one trained on the CPU.
RUN_SETTINGS = ("checkpoint_every", "device", "threads", "compile")


@dataclass
class TrainResult:
    model: Synthesizer
    config: ModelConfig
    steps: int
    tasks_seen: int
    non_embedding_parameters: int
    training_flops: float  # matmul FLOPs of the whole run: 3x forward per task seen
    curve: list[dict]
    bf16: bool  # whether it trained under bf16 autocast (``training.bf16``, resolved: :func:`uses_bf16`)


class Batches:
    """The training stream: the tensors of step ``s`` are a pure function of (seed, s).

    :meth:`at` draws a step's batch on ``device``: the training programs' tokens and
    their classes' outputs are put there once, and the epoch orders, example points and
    example tokens are hashed, sorted and encoded there with the rules of
    :mod:`synthgen.tasks` and :mod:`synthgen.tokenizer`, so the host only queues work
    and never waits for the device.  :meth:`host_at` builds the same batch on the host
    with numpy, as the loop did before: the reference the device stream is tested
    against (tests/test_training.py) and the baseline of ``benchmarks/training.py``."""

    def __init__(self, universe: Universe, train_ids, n_examples: int, batch_size: int, seed: int,
                 device: str | torch.device = "cpu") -> None:
        self.universe, self.n_examples, self.batch_size, self.seed = universe, n_examples, batch_size, seed
        self.train_ids = check_program_ids(universe, train_ids)  # fail now, not at some later step
        if not len(self.train_ids):
            raise ValueError("no training programs")
        self.examples = ExampleTokenizer.for_grammar(universe.grammar)
        self.programs = ProgramTokenizer.for_grammar(universe.grammar)
        self._orders: dict[int, np.ndarray] = {}
        # resident on the device: what any batch can need, indexed by position in train_ids
        self.device = torch.device(device)
        classes, class_row = np.unique(universe.semantic_class[self.train_ids], return_inverse=True)
        # a copy: the universe's arrays may be read-only views (torch warns about those)
        put = lambda a: torch.tensor(np.asarray(a, dtype=np.int64), device=self.device)  # noqa: E731
        self._ids = put(self.train_ids)
        self._program_tokens = put(self.programs.encode_universe(universe, self.train_ids))
        self._class_row = put(class_row.reshape(-1))
        self._class_outputs = put(universe.class_outputs[classes])  # only the training programs' classes
        self._batch_positions = torch.arange(batch_size, device=self.device)
        self._device_orders: dict[int, torch.Tensor] = {}

    def epochs_of(self, step: int) -> range:
        """The epochs a step's batch draws from: one, or a few where it spans an epoch's end."""
        n, start = len(self.train_ids), step * self.batch_size
        return range(start // n, (start + self.batch_size - 1) // n + 1)

    def order(self, epoch: int) -> np.ndarray:
        """The permutation of the training programs in ``epoch``."""
        if epoch not in self._orders:
            n = len(self.train_ids)
            # keep only the epochs a batch can still touch
            self._orders = {e: o for e, o in self._orders.items() if e >= epoch - 1}
            self._orders[epoch] = key_order(random_keys(self.seed, "train-order", epoch, np.arange(n)))
        return self._orders[epoch]

    def device_orders(self, epochs: range) -> torch.Tensor:
        """:meth:`order` of each of ``epochs`` (consecutive), computed on the device: (len(epochs), n)."""
        missing = [e for e in epochs if e not in self._device_orders]
        if missing:
            n = len(self.train_ids)
            self._device_orders = {e: o for e, o in self._device_orders.items() if e >= epochs.start}
            new = torch.arange(missing[0], missing[-1] + 1, device=self.device)
            keys = random_keys(self.seed, "train-order", new[:, None], torch.arange(n, device=self.device)[None, :])
            self._device_orders.update(zip(range(missing[0], missing[-1] + 1), key_order(keys, axis=1)))
        if len(epochs) == 1:
            return self._device_orders[epochs.start][None]
        return torch.stack([self._device_orders[e] for e in epochs])

    def at(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Examples (B, K, n_fields) and programs (B, max_length) of ``step``, on the device."""
        n, epochs = len(self.train_ids), self.epochs_of(step)
        positions = self._batch_positions + step * self.batch_size
        epoch = positions // n
        index = self.device_orders(epochs)[epoch - epochs.start, positions % n]
        points = example_points(self.universe.grammar.n_points, self.n_examples, self._ids[index], "train", self.seed, epoch)
        outputs = self._class_outputs[self._class_row[index][:, None], points]
        return self.examples.encode(self.examples.grid_inputs(points), outputs), self._program_tokens[index]

    def ids_at(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """Program ids of a step's batch and the epoch each comes from (on the host)."""
        n = len(self.train_ids)
        positions = step * self.batch_size + np.arange(self.batch_size)
        epochs = positions // n
        index = np.empty(self.batch_size, dtype=np.int64)
        for e in self.epochs_of(step):
            at = epochs == e
            index[at] = self.order(e)[positions[at] % n]
        return self.train_ids[index], epochs

    def tensors(self, program_ids: np.ndarray, purpose: str, draw) -> tuple[torch.Tensor, torch.Tensor]:
        """Tasks of ``program_ids`` built on the host (CPU tensors), e.g. fixed validation tasks."""
        tasks = make_tasks(self.universe, program_ids, self.n_examples, purpose, self.seed, draw)
        return (
            torch.from_numpy(self.examples.encode_tasks(tasks)),
            torch.from_numpy(self.programs.encode_universe(self.universe, program_ids)),
        )

    def host_at(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`at`, built on the host with numpy (CPU tensors): the former per-step path."""
        ids, epochs = self.ids_at(step)
        return self.tensors(ids, "train", epochs)


def learning_rate(step: int, steps: int, lr: float, min_lr: float, warmup: float) -> float:
    """Linear warm-up over the first ``warmup`` share of the steps, then cosine decay."""
    warmup_steps = int(warmup * steps)
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, steps - warmup_steps)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (lr - min_lr)


def make_optimizer(model: Synthesizer, lr: float, weight_decay: float, fused: bool | None = None) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only: decaying gains and embeddings only
    shrinks them toward zero for no regularising benefit (nanoGPT's grouping).

    ``fused`` (default: where the parameters' device has the kernel) updates every
    parameter in one kernel instead of a dozen per tensor; it is deterministic, but its
    rounding differs from the per-tensor loop's in the last bits."""
    embeddings = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    params = list(model.parameters())
    decay = [p for p in params if p.dim() >= 2 and id(p) not in embeddings]
    no_decay = [p for p in params if p.dim() < 2 or id(p) in embeddings]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if fused is None:
        fused = params[0].device.type in FUSED_ADAMW_DEVICES
    return torch.optim.AdamW(groups, lr=lr, betas=ADAM_BETAS, fused=fused)


def optimizer_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, examples: torch.Tensor,
                   programs: torch.Tensor, lr: float, tp: TrainingParams) -> torch.Tensor:
    """One step on one batch: forward (under bf16 autocast if ``tp.bf16``, resolved by
    :func:`uses_bf16`), backward,
    gradient clipping, AdamW at ``lr``.  Returns the loss still on the device: reading
    it would make the host wait for the device, so the loop reads its sum every
    ``log_every`` steps instead."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    with torch.autocast(examples.device.type, dtype=torch.bfloat16, enabled=uses_bf16(tp.bf16, examples.device)):
        _, loss = model(examples, programs)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), tp.grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss.detach()


def run_fingerprint(params: Params, seed: int, train_ids: np.ndarray, grammar_symbols: tuple[str, ...]) -> str:
    """What a checkpoint must match to be resumed: everything that shapes the run."""
    h = hashlib.sha256()
    h.update(json.dumps(
        {
            "tasks": params.tasks.model_dump(),
            "model": params.model.model_dump(),
            # how often checkpoints are written, on which device and threads, compiled or
            # not, may change on resume (exact only as far as the kernels agree bit for bit)
            "training": params.training.model_dump(exclude=set(RUN_SETTINGS)),
            "seed": seed,
            "loop": TRAINING_LOOP_VERSION,
            "symbols": grammar_symbols,
        },
        sort_keys=True,
    ).encode())
    h.update(np.ascontiguousarray(train_ids, dtype=np.int64).tobytes())
    return h.hexdigest()


def _torch_seed(purpose: str, seed: int) -> int:
    return derive_seed(seed, "torch", purpose)


def write_curve(path: Path, rows: list[dict]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CURVE_COLUMNS, delimiter="\t", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in CURVE_COLUMNS})
    write_text(path, buf.getvalue())


def save_state(obj: dict, path: str | Path) -> None:
    """``torch.save``, atomically and with reproducible bytes.  Saved through an open file,
    the archive's inner folder is torch's fixed ``archive``; saved to a path it would be
    named after the random temporary file, so equal states gave different bytes (and a
    finished run that resumed rewrote its model file, rerunning every stage downstream)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        torch.save(obj, fh)


def training_device(name: str) -> torch.device:
    """The device ``training.device`` names, made the current CUDA device where it is one
    GPU of several (``cuda:N``), so that nothing lands on GPU 0 by default."""
    device = torch.device(name)
    if device.type == "cuda" and device.index is not None:
        torch.cuda.set_device(device)
    return device


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` has bf16 instructions: a GPU that supports bf16, or a CPU with
    AVX512_BF16 or AMX. Elsewhere bf16 is emulated, and slower than fp32 (2.6 times on an
    Intel CPU with AVX-512 but neither: docs/performance.md)."""
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def uses_bf16(setting: bool | str, device: torch.device) -> bool:
    """``training.bf16`` resolved on ``device``: true and false as they are; ``auto``: bf16
    autocast where the device has bf16 instructions (:func:`native_bf16`), fp32 elsewhere."""
    return native_bf16(device) if setting == "auto" else bool(setting)


def resolved_precision(params: Params, device: torch.device) -> Params:
    """``params`` with ``training.bf16`` resolved on ``device`` (:func:`uses_bf16`): the
    precision a run trains in, and what its checkpoint's fingerprint records, so that
    ``auto`` and the explicit setting it resolves to resume each other's runs."""
    tp = params.training
    return params.model_copy(update={"training": tp.model_copy(update={"bf16": uses_bf16(tp.bf16, device)})})


def load_model(path: str | Path, device: str = "cpu") -> Synthesizer:
    """A trained model from ``model.pt`` (or ``checkpoint.pt``), on ``device`` (e.g.
    ``params.training.device``), in eval mode."""
    # weights_only: a checkpoint is data (tensors, numbers, strings); loading runs no pickled code
    state = torch.load(Path(path), map_location="cpu", weights_only=True)
    model = Synthesizer(ModelConfig(**state["config"]))
    model.load_state_dict(state["model"])
    return model.to(training_device(device)).eval()


def discard_stale_run(universe: Universe, train_ids, params: Params, out_dir: str | Path, seed: int | None = None) -> bool:
    """Empty ``out_dir`` if its checkpoint belongs to another run (other params, seed or
    training programs) and say so; return whether it did.

    What a pipeline stage calls before :func:`train`: its run directory persists across
    ``dvc repro`` so that a killed run resumes, and after an ablation changes the run the
    old checkpoint is stale (the old run's results stay in DVC's cache).  :func:`train`
    itself refuses a stale checkpoint rather than delete anything."""
    out_dir = Path(out_dir)
    checkpoint = out_dir / CHECKPOINT_FILE
    if not checkpoint.exists():
        return False
    seed = params.seed if seed is None else seed
    params = resolved_precision(params, torch.device(params.training.device))
    fingerprint = run_fingerprint(params, seed, np.asarray(train_ids, dtype=np.int64), universe.grammar.symbols)
    if torch.load(checkpoint, map_location="cpu", weights_only=True)["fingerprint"] == fingerprint:
        return False
    print(f"{out_dir}: the checkpoint there belongs to a run with other params; starting afresh")
    for path in out_dir.iterdir():
        if path.is_file():
            path.unlink()
    return True


def train(
    universe: Universe,
    train_ids,
    params: Params,
    out_dir: str | Path,
    *,
    checkpoint_dir: str | Path | None = None,
    val_ids=None,
    seed: int | None = None,
    progress: bool = True,
    on_step: Callable[[int], None] | None = None,
) -> TrainResult:
    """Train a synthesizer on the tasks of ``train_ids`` (universe program ids) for the
    budget in ``params.training``, resuming from ``checkpoint_dir/checkpoint.pt`` if
    present (``checkpoint_dir`` defaults to ``out_dir``).

    ``val_ids``: programs whose loss (on fixed tasks, purpose "validation") joins the
    curve at every log row.  ``seed`` defaults to ``params.seed``.  ``on_step(step)`` is
    called after every optimiser step (tests interrupt a run with it)."""
    tp = params.training
    seed = params.seed if seed is None else seed
    out_dir = Path(out_dir)
    checkpoint_dir = out_dir if checkpoint_dir is None else Path(checkpoint_dir)
    for folder in (out_dir, checkpoint_dir):
        folder.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(tp.threads)
    train_ids = np.asarray(train_ids, dtype=np.int64)
    device = training_device(tp.device)
    params = resolved_precision(params, device)  # tp.bf16 a bool from here: what this run trains in
    tp = params.training
    batches = Batches(universe, train_ids, params.tasks.n_examples, tp.batch_size, seed, device)
    val = None
    if val_ids is not None and len(val_ids):
        val = tuple(t.to(device) for t in batches.tensors(np.asarray(val_ids, dtype=np.int64), "validation", VAL_TASKS_DRAW))

    config = ModelConfig.from_params(params.model, universe.grammar)
    torch.manual_seed(_torch_seed("model-init", seed))  # seeds CUDA too
    model = Synthesizer(config).to(device)
    # the compiled module shares the model's parameters; checkpoints save the model's own names
    step_model = torch.compile(model) if tp.compile else model
    optimizer = make_optimizer(model, tp.lr, tp.weight_decay)
    fingerprint = run_fingerprint(params, seed, train_ids, universe.grammar.symbols)
    step, curve = 0, []
    checkpoint = checkpoint_dir / CHECKPOINT_FILE
    if checkpoint.exists():
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        if state["fingerprint"] != fingerprint:
            raise ValueError(
                f"{checkpoint} belongs to a run with other params, seed or training programs; "
                "delete it (or use another out_dir) to start afresh"
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])  # moves its state to the parameters' device
        torch.set_rng_state(state["torch_rng"])
        if device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"], device)
        step, curve = state["step"], state["curve"]
    else:
        torch.manual_seed(_torch_seed("dropout", seed))

    def save_checkpoint() -> None:
        save_state(
            {
                "fingerprint": fingerprint,
                "config": config.to_dict(),
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
                "step": step,
                "curve": curve,
            },
            checkpoint,
        )
        write_curve(checkpoint_dir / CURVE_FILE, curve)

    positions_per_task = params.tasks.n_examples + config.max_length - 1  # encoder + decoder positions
    bar = tqdm(total=tp.steps, initial=step, desc=f"train {out_dir.name}", unit="step", disable=not progress)
    # the interval's losses are summed on the device, in float64 like a sum of Python floats
    loss_sum, loss_n = torch.zeros((), dtype=torch.float64, device=device), 0
    t_last, step_last = time.perf_counter(), step
    model.train()
    while step < tp.steps:
        lr = learning_rate(step, tp.steps, tp.lr, tp.min_lr, tp.warmup)
        loss_sum += optimizer_step(step_model, optimizer, *batches.at(step), lr, tp)
        step, loss_n = step + 1, loss_n + 1
        if step % tp.log_every == 0 or step == tp.steps:
            row = {"step": step, "tasks": step * tp.batch_size, "lr": lr, "train_loss": loss_sum.item() / loss_n, "val_loss": None}
            if val is not None:
                row["val_loss"] = validation_loss(model, *val, tp.batch_size, tp.bf16)
            curve.append(row)
            loss_sum.zero_()
            loss_n = 0
            now = time.perf_counter()
            rate = (step - step_last) * tp.batch_size / max(now - t_last, 1e-9)
            t_last, step_last = now, step
            bar.set_postfix(loss=f"{row['train_loss']:.3f}", tasks_s=f"{rate:.0f}", tok_s=f"{rate * positions_per_task:.0f}")
        if step % tp.checkpoint_every == 0 or step == tp.steps:
            save_checkpoint()
        bar.update(1)
        if on_step is not None:
            on_step(step)
    bar.close()
    save_state({"config": config.to_dict(), "model": {k: v.cpu() for k, v in model.state_dict().items()}, "step": step}, out_dir / MODEL_FILE)
    if checkpoint_dir != out_dir:
        write_curve(out_dir / CURVE_FILE, curve)
    model.eval()
    return TrainResult(
        model=model,
        config=config,
        steps=step,
        tasks_seen=step * tp.batch_size,
        non_embedding_parameters=count_parameters(model),
        training_flops=float(training_flops_per_task(config, params.tasks.n_examples)) * step * tp.batch_size,
        curve=curve,
        bf16=tp.bf16,
    )


@torch.no_grad()
def validation_loss(model: Synthesizer, examples: torch.Tensor, programs: torch.Tensor, batch_size: int, bf16: bool) -> float:
    """Mean per-token loss over fixed tasks; touches no random state (no dropout)."""
    was_training = model.training
    model.eval()
    total, tokens = 0.0, 0
    for i in range(0, len(examples), batch_size):
        p = programs[i : i + batch_size]
        with torch.autocast(examples.device.type, dtype=torch.bfloat16, enabled=bf16):
            _, loss = model(examples[i : i + batch_size], p)
        n = int((p[:, 1:] != PAD).sum())
        total, tokens = total + loss.item() * n, tokens + n
    model.train(was_training)
    return total / tokens
