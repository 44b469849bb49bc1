"""Training throughput of the synthesizer: the training loop before and after it drew its
batches on the device (issue 15), on this CPU, and the paper model on a GPU if there is one.

    python benchmarks/training.py [--params params.yaml] [--repeats 7] [--steps 10]
                                  [--dtypes fp32,bf16] [--gpu-profile paper] [--gpu-device cuda]
                                  [--json FILE]

**CPU table** (the params' model, batch and threads; a training set of
``splits.train_size`` programs, as a split gives).  Rows:

- ``matmul WxW fp32|bf16``: the machine's peak, a square matmul measured in this run
  (the baseline every MFU is relative to);
- ``model GEMMs fp32|bf16``: the model's own matrix products at the shapes a training
  step uses, alone: the best the model could do with zero overhead around them;
- ``old loop fp32|bf16``: the loop as it was: each step's batch built on the host with
  numpy (:meth:`synthgen.training.Batches.host_at`, whose program encoding has since
  become vectorised, so this baseline is if anything faster than the old loop was),
  per-tensor AdamW, and the loss read after every step;
- ``new loop fp32|bf16``: the loop of :func:`synthgen.training.train`: the batch drawn
  on the device (:meth:`~synthgen.training.Batches.at`), fused AdamW, the loss summed on
  the device and read every ``log_every`` steps;
- ``decoder-only fp32|bf16``: the alternative architecture at about equal parameters
  (examples as a prefix with a prefix-LM mask), trained by the new loop;
- ``batch draw, host|device``: a step's batch alone, by either path.

``--dtypes fp32`` leaves out the bf16 rows: on a CPU without bf16 instructions torch
emulates bf16, and those rows then take most of the script's time.

**GPU table** (when CUDA is available; ``--gpu-device cpu`` dry-runs it on a small
profile): the ``--gpu-profile`` model (the paper's: 6+6 layers, width 512, batch 512,
bf16) trained by the old loop, the new loop, and the new loop compiled; its tasks/s,
model TFLOP/s, and their share of a bf16 matmul peak measured in the same run (target:
35% on an H200-class GPU).

Every figure comes from rounds that each time every row once, in alternating order, so
that a burst of other work on a shared machine disturbs all rows alike: the best round
is shown with the range over rounds, and the new/old ratio both best-to-best and over
the rounds (each round's pair timed back to back).  Training FLOPs are 3x the forward
matmul FLOPs (:func:`synthgen.model.training_flops_per_task`).
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import yaml

from synthgen.enumeration import enumerate_universe
from synthgen.grammar import Grammar
from synthgen.model import EncoderBlock, ModelConfig, Synthesizer, count_parameters, training_flops_per_task
from synthgen.params import Params, TrainingParams, load_params, validate_params
from synthgen.profiles import profile_text
from synthgen.seeding import rng_for
from synthgen.tokenizer import PAD
from synthgen.training import Batches, make_optimizer, optimizer_step
from synthgen.universe import Universe

ROOT = Path(__file__).resolve().parents[1]
GPU_PEAK_SIZE = 8192  # square bf16 matmul: large enough to reach an H200's matrix rate


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (a timer must not stop before it ends)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_rounds(trials: dict[str, Callable[[], None]], repeats: int, device: torch.device) -> dict[str, list[float]]:
    """Seconds of each trial in each of ``repeats`` rounds.  A round times every trial
    once, the order reversed every other round, so that a burst of other work on the
    machine, or a drift of its clock, disturbs all trials alike rather than one."""
    for fn in trials.values():
        fn()  # warm-up: allocations, oneDNN kernel choice, compilation
    synchronize(device)
    times: dict[str, list[float]] = {name: [] for name in trials}
    names = list(trials)
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            t = time.perf_counter()
            trials[name]()
            synchronize(device)
            times[name].append(time.perf_counter() - t)
    return times


def matmul(dtype: torch.dtype, n: int, device: torch.device, calls: int):
    a, b = (torch.randn(n, n, device=device).to(dtype) for _ in range(2))

    def run():
        for _ in range(calls):
            a @ b

    return run


def model_gemm_shapes(cfg: ModelConfig, batch: int, k: int) -> list[tuple[int, int, int]]:
    """(rows, inner, cols) of every weight matmul of one forward pass."""
    W, T = cfg.width, cfg.max_length - 1
    enc = [(batch * k, W, 3 * W), (batch * k, W, W), (batch * k, W, 4 * W), (batch * k, 4 * W, W)]
    dec = [(batch * T, W, W), (batch * T, W, 2 * W), (batch * T, W, W),  # self: q, kv, proj
           (batch * T, W, W), (batch * k, W, 2 * W), (batch * T, W, W),  # cross: q, kv, proj
           (batch * T, W, 4 * W), (batch * T, 4 * W, W)]
    return enc * cfg.encoder_layers + dec * cfg.decoder_layers + [(batch * T, W, cfg.program_vocab)]


def model_gemms(shapes, dtype: torch.dtype, calls: int):
    """The model's matmuls alone: forward and the two backward products of each."""
    mats = [tuple(torch.randn(*shape).to(dtype) for shape in ((m, k), (k, n), (m, n))) for m, k, n in shapes]

    def run():
        for _ in range(calls):
            for x, w, g in mats:
                x @ w
                g @ w.T  # grad of the input
                x.T @ g  # grad of the weight

    return run


class DecoderOnly(nn.Module):
    """The alternative: one stack over [examples; program], examples attended freely,
    program tokens causally (a prefix-LM mask)."""

    def __init__(self, cfg: ModelConfig, layers: int, k: int) -> None:
        super().__init__()
        self.example_embedding = nn.Embedding(cfg.example_vocab, cfg.width)
        self.token_embedding = nn.Embedding(cfg.program_vocab, cfg.width)
        self.position_embedding = nn.Embedding(cfg.max_length, cfg.width)
        self.blocks = nn.ModuleList(MaskedBlock(cfg) for _ in range(layers))
        self.ln_out = nn.LayerNorm(cfg.width, bias=False)
        self.head = nn.Linear(cfg.width, cfg.program_vocab, bias=False)
        self.head.weight = self.token_embedding.weight
        T = cfg.max_length - 1
        mask = torch.ones(k + T, k + T, dtype=torch.bool).tril()
        mask[:, :k] = True  # everything sees every example; examples see no program token
        self.register_buffer("mask", mask)
        self.k = k

    def forward_flops_per_task(self, cfg: ModelConfig) -> int:
        """As :func:`synthgen.model.forward_flops_per_task`: every layer sees all K + T positions."""
        n, W, T = self.k + cfg.max_length - 1, cfg.width, cfg.max_length - 1
        return len(self.blocks) * n * (24 * W * W + 4 * n * W) + T * 2 * W * cfg.program_vocab

    def forward(self, examples, programs):
        tokens = programs[:, :-1]
        positions = torch.arange(tokens.shape[1])
        x = torch.cat([self.example_embedding(examples).sum(2), self.token_embedding(tokens) + self.position_embedding(positions)], 1)
        for block in self.blocks:
            x = block(x, self.mask)
        logits = self.head(self.ln_out(x[:, self.k :]))
        return logits, F.cross_entropy(logits.flatten(0, 1).float(), programs[:, 1:].flatten(), ignore_index=PAD)


class MaskedBlock(EncoderBlock):
    def forward(self, x, mask):
        h = self.ln_attn(x)
        B, T, W = h.shape
        a = self.attn
        split = lambda t: t.view(B, T, a.heads, W // a.heads).transpose(1, 2)  # noqa: E731
        q = split(a.query(h))
        k, v = (split(t) for t in a.key_value(h).split(W, dim=2))
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = x + a.proj(y.transpose(1, 2).reshape(B, T, W))
        return x + self.mlp(self.ln_mlp(x))


def training_loop(model: nn.Module, batches: Batches, tp: TrainingParams, steps: int, old: bool,
                  compile: bool = False) -> Callable[[], None]:
    """``steps`` further steps of the old loop or the new one (see the module docstring),
    continuing the stream where the last call stopped, at the constant rate ``tp.lr``."""
    optimizer = make_optimizer(model, tp.lr, tp.weight_decay, fused=False if old else None)
    step_model = torch.compile(model) if compile else model
    device = batches.device
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    at = [0]

    def run():
        for step in range(at[0], at[0] + steps):
            if old:
                examples, programs = (t.to(device) for t in batches.host_at(step))
                optimizer_step(model, optimizer, examples, programs, tp.lr, tp).item()
            else:
                loss_sum.add_(optimizer_step(step_model, optimizer, *batches.at(step), tp.lr, tp))
                if (step + 1) % tp.log_every == 0:
                    loss_sum.item()
        at[0] += steps

    return run


def draws(batches: Batches, steps: int, host: bool) -> Callable[[], None]:
    at = [0]

    def run():
        for step in range(at[0], at[0] + steps):
            batches.host_at(step) if host else batches.at(step)
        at[0] += steps

    return run


def training_programs(universe: Universe, P: Params) -> np.ndarray:
    """A seeded sample of ``splits.train_size`` in-bound programs: the size of a split's
    training set, so that epochs turn over as often as in the pipeline's runs."""
    valid = np.flatnonzero(universe.semantic_class >= 0)
    n = min(P.splits.train_size, len(valid))
    return np.sort(rng_for(P.seed, "benchmark", "training").choice(valid, size=n, replace=False))


def ratio_line(label: str, new: list[float], old: list[float]) -> str:
    paired = [o / n for n, o in zip(new, old)]
    return (f"new loop / old loop, {label}: {min(old) / min(new):.2f}x best to best; "
            f"{min(paired):.2f}-{max(paired):.2f}x over the rounds (median {np.median(paired):.2f}x)")


DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def cpu_table(P: Params, repeats: int, steps: int, peak_size: int, dtype_names=tuple(DTYPES)) -> dict:
    torch.set_num_threads(P.training.threads)
    device = torch.device("cpu")
    universe = enumerate_universe(Grammar.from_params(P.grammar))
    ids = training_programs(universe, P)
    K, B, tp = P.tasks.n_examples, P.training.batch_size, P.training
    batches = Batches(universe, ids, K, B, P.seed, device)
    cfg = ModelConfig.from_params(P.model, universe.grammar)
    flops_task = training_flops_per_task(cfg, K)
    positions = K + cfg.max_length - 1
    torch.manual_seed(0)
    model = Synthesizer(cfg)
    # decoder-only layers for about equal non-embedding parameters: an encoder-decoder
    # layer pair holds 12 + 16 = 28 W^2, a decoder-only layer 12 W^2
    alt_layers = max(1, round(28 * (cfg.encoder_layers + cfg.decoder_layers) / 2 / 12))
    alt = DecoderOnly(cfg, alt_layers, K)
    shapes = model_gemm_shapes(cfg, B, K)
    gemm_flops = sum(3 * 2 * m * k * n for m, k, n in shapes)
    alt_flops_task = 3 * alt.forward_flops_per_task(cfg)

    dtypes = {d: DTYPES[d] for d in dtype_names}
    peak = {d: f"matmul {peak_size}x{peak_size} {d}" for d in dtypes}
    trials, tasks_per_trial, flops_per_trial = {}, {}, {}
    for d, dtype in dtypes.items():
        tpd = tp.model_copy(update={"bf16": d == "bf16"})
        trials[peak[d]], flops_per_trial[peak[d]] = matmul(dtype, peak_size, device, 10), 10 * 2 * peak_size**3
        trials[f"model GEMMs {d}"], flops_per_trial[f"model GEMMs {d}"] = model_gemms(shapes, dtype, 2), 2 * gemm_flops
        for label, net, old, flops in (("old loop", model, True, flops_task), ("new loop", model, False, flops_task),
                                       ("decoder-only", alt, False, alt_flops_task)):
            name = f"{label} {d}"
            trials[name] = training_loop(copy.deepcopy(net), batches, tpd, steps, old)
            tasks_per_trial[name], flops_per_trial[name] = steps * B, steps * B * flops
    for where, host in (("host", True), ("device", False)):
        trials[f"batch draw, {where}"], tasks_per_trial[f"batch draw, {where}"] = draws(batches, steps, host), steps * B
    times = timed_rounds(trials, repeats, device)

    peaks = {d: flops_per_trial[peak[d]] / min(times[peak[d]]) for d in dtypes}
    print(f"CPU: {torch.get_num_threads()} threads; model: width {cfg.width}, layers {cfg.encoder_layers}+"
          f"{cfg.decoder_layers}, heads {cfg.heads}, N={count_parameters(model) / 1e6:.2f}M; batch {B}, K={K}, "
          f"{positions} positions per task, {flops_task / 1e6:.1f} MFLOP per training task; {len(ids):,} training "
          f"programs; decoder-only: {alt_layers} layers, N={count_parameters(alt) / 1e6:.2f}M, "
          f"{alt_flops_task / 1e6:.1f} MFLOP per task; best of {repeats} rounds of {steps} steps (range)")
    print(f"{'what':<26} {'tasks/s':>9} {'range':>15} {'tokens/s':>10} {'GFLOP/s':>9} {'MFU':>6}")
    rows = {}
    for name, seconds in times.items():
        row, cells = {}, ["", "", ""]
        if name in tasks_per_trial:
            rates = [tasks_per_trial[name] / t for t in seconds]
            row.update(tasks_s=max(rates), worst=min(rates), median=float(np.median(rates)))
            cells = [f"{max(rates):,.0f}", f"{min(rates):,.0f}-{max(rates):,.0f}", f"{max(rates) * positions:,.0f}"]
        gflops, mfu = "", ""
        if name in flops_per_trial:
            row["gflop_s"] = flops_per_trial[name] / min(seconds) / 1e9
            row["mfu"] = row["gflop_s"] * 1e9 / peaks[name.rsplit(" ", 1)[-1]]
            gflops, mfu = f"{row['gflop_s']:.1f}", f"{row['mfu']:.0%}"
        rows[name] = row
        print(f"{name:<26} {cells[0]:>9} {cells[1]:>15} {cells[2]:>10} {gflops:>9} {mfu:>6}")
    ratios = {}
    for d in dtypes:
        new, old = times[f"new loop {d}"], times[f"old loop {d}"]
        print(ratio_line(d, new, old))
        ratios[d] = {"best_to_best": min(old) / min(new), "rounds": [o / n for n, o in zip(new, old)]}
    draw_host, draw_device = (min(times[f"batch draw, {w}"]) / steps * 1e3 for w in ("host", "device"))
    print(f"a step's batch alone: {draw_host:.2f} ms on the host (numpy), {draw_device:.2f} ms drawn on the device")
    return {"rows": rows, "ratios": ratios, "threads": torch.get_num_threads()}


def profile_params(name: str) -> Params:
    return validate_params(yaml.safe_load(profile_text(ROOT, name)), source=f"profiles/{name}.yaml")


def gpu_table(profile: str, device: torch.device, repeats: int, steps: int, peak_size: int, compile: bool) -> dict:
    """The profile's model on ``device``: old loop, new loop, new loop compiled, against
    the bf16 matmul peak measured in the same run."""
    P = profile_params(profile)
    tp = P.training
    torch.set_num_threads(tp.threads)
    t0 = time.perf_counter()
    universe = enumerate_universe(Grammar.from_params(P.grammar))
    ids = training_programs(universe, P)
    K, B = P.tasks.n_examples, tp.batch_size
    batches = Batches(universe, ids, K, B, P.seed, device)
    cfg = ModelConfig.from_params(P.model, universe.grammar)
    flops_task = training_flops_per_task(cfg, K)
    print(f"{profile} universe ({len(universe):,} programs) and {len(ids):,} training programs on {device} "
          f"in {time.perf_counter() - t0:.0f} s", flush=True)
    torch.manual_seed(0)
    model = Synthesizer(cfg).to(device)
    peak = f"matmul {peak_size}x{peak_size} bf16"
    trials = {peak: matmul(torch.bfloat16, peak_size, device, 20),
              "old loop": training_loop(copy.deepcopy(model), batches, tp, steps, old=True),
              "new loop": training_loop(copy.deepcopy(model), batches, tp, steps, old=False)}
    if compile:
        trials["new loop, compiled"] = training_loop(copy.deepcopy(model), batches, tp, steps, old=False, compile=True)
    times = timed_rounds(trials, repeats, device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    peak_flops = 20 * 2 * peak_size**3 / min(times[peak])
    print(f"{name}: {profile} model, width {cfg.width}, layers {cfg.encoder_layers}+{cfg.decoder_layers}, "
          f"N={count_parameters(model) / 1e6:.1f}M; batch {B}, bf16 {tp.bf16}; {flops_task / 1e9:.2f} GFLOP per "
          f"training task; best of {repeats} rounds of {steps} steps (range)")
    print(f"{'what':<26} {'tasks/s':>9} {'range':>17} {'TFLOP/s':>8} {'of peak':>8}")
    print(f"{peak:<26} {'':>9} {'':>17} {peak_flops / 1e12:>8.1f} {'100%':>8}")
    rows = {peak: {"tflop_s": peak_flops / 1e12}}
    for label in trials:
        if label == peak:
            continue
        rates = [steps * B / t for t in times[label]]
        best, worst, median = max(rates), min(rates), float(np.median(rates))
        tflops = best * flops_task / 1e12
        share = best * flops_task / peak_flops
        rows[label] = {"best": best, "worst": worst, "median": median, "tflop_s": tflops, "share_of_peak": share}
        print(f"{label:<26} {best:>9,.0f} {f'{worst:,.0f}-{best:,.0f}':>17} {tflops:>8.1f} {share:>8.1%}")
    print(ratio_line(name, times["new loop"], times["old loop"]))
    best_label = max((k for k in rows if k != peak), key=lambda k: rows[k]["best"])
    verdict = "met" if rows[best_label]["share_of_peak"] >= 0.35 else "not met"
    print(f"best: {best_label}, {rows[best_label]['share_of_peak']:.1%} of the measured bf16 peak "
          f"(target >= 35% on an H200-class GPU: {verdict})")
    return {"device": name, "profile": profile, "rows": rows, "flops_per_task": flops_task}


def _dtype_list(text: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))
    unknown = [n for n in names if n not in DTYPES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"{text!r}: a comma-separated list of {', '.join(DTYPES)}")
    return names


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--params", default="params.yaml", help="the CPU table's params")
    ap.add_argument("--repeats", type=int, default=7, help="timed rounds")
    ap.add_argument("--steps", type=int, default=10, help="training steps per trial")
    ap.add_argument("--peak-size", type=int, default=1024, help="the CPU peak's square matmul")
    ap.add_argument("--dtypes", type=_dtype_list, default=tuple(DTYPES),
                    help="the CPU table's precisions, comma-separated (default: fp32,bf16)")
    ap.add_argument("--skip-cpu", action="store_true", help="only the GPU table")
    ap.add_argument("--gpu-profile", default="paper", help="profile of the GPU table's model and universe")
    ap.add_argument("--gpu-device", default="cuda" if torch.cuda.is_available() else None,
                    help="device of the GPU table (default: cuda if available, else no GPU table); cpu dry-runs it")
    ap.add_argument("--gpu-steps", type=int, default=50)
    ap.add_argument("--gpu-peak-size", type=int, default=GPU_PEAK_SIZE)
    ap.add_argument("--no-compile", action="store_true", help="leave out the GPU table's compiled row")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args()
    report = {"torch": torch.__version__}
    if not args.skip_cpu:
        report["cpu"] = cpu_table(load_params(args.params), args.repeats, args.steps, args.peak_size, args.dtypes)
    if args.gpu_device is not None:
        print()
        report["gpu"] = gpu_table(args.gpu_profile, torch.device(args.gpu_device), args.repeats, args.gpu_steps,
                                  args.gpu_peak_size, not args.no_compile)
    else:
        print("\nno GPU here: the GPU table (the paper model against the bf16 peak) was not measured")
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
