"""Training throughput of the synthesizer and its model FLOP utilisation (MFU) on this CPU.

    python benchmarks/training.py [--params params.yaml] [--repeats 5]

Prints one table.  Rows:

- ``matmul WxW fp32|bf16``: the machine's peak, a square matmul measured in this run
  (the baseline every MFU is relative to);
- ``model GEMMs fp32|bf16``: the model's own matrix products at the shapes a training
  step uses, alone: the best the model could do with zero overhead around them;
- ``train fp32|bf16``: full optimiser steps (forward, backward, clipping, AdamW) of the
  params' model on real batches;
- ``decoder-only fp32|bf16``: the alternative architecture at about equal parameters
  (examples as a prefix with a prefix-LM mask), trained the same way.

Every time is the best of ``--repeats`` rounds, each timing every row once: on a shared
machine the fastest trial is the one least disturbed by other work.  MFU = achieved training FLOP/s
(3x the forward matmul FLOPs, :func:`synthgen.model.training_flops_per_task`) over the
same-dtype peak.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from synthgen.enumeration import enumerate_universe
from synthgen.grammar import Grammar
from synthgen.model import EncoderBlock, ModelConfig, Synthesizer, count_parameters, training_flops_per_task
from synthgen.params import load_params
from synthgen.tokenizer import PAD
from synthgen.training import Batches, make_optimizer


def best_times(trials: dict[str, tuple], repeats: int) -> dict[str, float]:
    """Seconds per call of each ``fn`` in ``trials`` (name -> (fn, calls per trial)): the
    best over ``repeats`` rounds, each round timing every fn once, so that a burst of
    other work on the machine disturbs all of them alike rather than one row."""
    for fn, _ in trials.values():
        fn()  # warm-up (allocations, oneDNN kernel choice)
    best = {name: float("inf") for name in trials}
    for _ in range(repeats):
        for name, (fn, inner) in trials.items():
            t = time.perf_counter()
            for _ in range(inner):
                fn()
            best[name] = min(best[name], (time.perf_counter() - t) / inner)
    return best


def matmul(dtype: torch.dtype, n: int):
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    return lambda: a @ b


def model_gemm_shapes(cfg: ModelConfig, batch: int, k: int) -> list[tuple[int, int, int]]:
    """(rows, inner, cols) of every weight matmul of one forward pass."""
    W, T = cfg.width, cfg.max_length - 1
    enc = [(batch * k, W, 3 * W), (batch * k, W, W), (batch * k, W, 4 * W), (batch * k, 4 * W, W)]
    dec = [(batch * T, W, W), (batch * T, W, 2 * W), (batch * T, W, W),  # self: q, kv, proj
           (batch * T, W, W), (batch * k, W, 2 * W), (batch * T, W, W),  # cross: q, kv, proj
           (batch * T, W, 4 * W), (batch * T, 4 * W, W)]
    return enc * cfg.encoder_layers + dec * cfg.decoder_layers + [(batch * T, W, cfg.program_vocab)]


def model_gemms(shapes, dtype: torch.dtype):
    """The model's matmuls alone: forward and the two backward products of each."""
    mats = [tuple(torch.randn(*shape).to(dtype) for shape in ((m, k), (k, n), (m, n))) for m, k, n in shapes]

    def run():
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


def training_step(model, batches, bf16: bool):
    optimizer = make_optimizer(model, 1e-3, 0.1)
    data = [batches.at(s) for s in range(4)]
    i = iter(range(10**9))

    def step():
        examples, programs = data[next(i) % len(data)]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            _, loss = model(examples, programs)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    P = load_params(args.params)
    torch.set_num_threads(P.training.threads)
    torch.manual_seed(0)
    universe = enumerate_universe(Grammar.from_params(P.grammar))
    ids = np.flatnonzero(universe.semantic_class >= 0)
    K, B = P.tasks.n_examples, P.training.batch_size
    batches = Batches(universe, ids, K, B, P.seed)
    cfg = ModelConfig.from_params(P.model, universe.grammar)
    flops_task = training_flops_per_task(cfg, K)
    positions = K + cfg.max_length - 1
    model = Synthesizer(cfg)
    # decoder-only layers for about equal non-embedding parameters: an encoder-decoder
    # layer pair holds 12 + 16 = 28 W^2, a decoder-only layer 12 W^2
    alt_layers = max(1, round(28 * (cfg.encoder_layers + cfg.decoder_layers) / 2 / 12))
    alt = DecoderOnly(cfg, alt_layers, K)

    n = 1024
    shapes = model_gemm_shapes(cfg, B, K)
    gemm_flops = sum(3 * 2 * m * k * n for m, k, n in shapes)
    alt_flops_task = 3 * alt.forward_flops_per_task(cfg)
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}
    arch = {"train": (model, f"{cfg.encoder_layers}+{cfg.decoder_layers}", flops_task),
            "decoder-only": (alt, f"{alt_layers}", alt_flops_task)}
    trials = {}
    for d, dtype in dtypes.items():
        trials[("peak", d)] = (matmul(dtype, n), 10)
        trials[("gemms", d)] = (model_gemms(shapes, dtype), 3)
        for label, (net, _, _) in arch.items():
            trials[(label, d)] = (training_step(net, batches, d == "bf16"), 5)
    t = best_times(trials, args.repeats)

    rows = []
    peaks = {d: 2 * n**3 / t[("peak", d)] for d in dtypes}
    for d in dtypes:
        rows.append((f"matmul {n}x{n} {d}", "", "", peaks[d] / 1e9, 1.0))
    for d in dtypes:
        rate = gemm_flops / t[("gemms", d)]
        rows.append((f"model GEMMs {d}", "", "", rate / 1e9, rate / peaks[d]))
    for label, (net, layers, flops) in arch.items():
        for d in dtypes:
            tasks_s = B / t[(label, d)]
            rate = flops * tasks_s
            rows.append((f"{label} {d} (N={count_parameters(net) / 1e6:.2f}M, layers {layers})",
                         f"{tasks_s:,.0f}", f"{tasks_s * positions:,.0f}", rate / 1e9, rate / peaks[d]))

    print(f"model: width {cfg.width}, layers {cfg.encoder_layers}+{cfg.decoder_layers}, heads {cfg.heads}; "
          f"batch {B}, K={K}, {positions} positions per task; {flops_task / 1e6:.1f} MFLOP per training task; "
          f"{torch.get_num_threads()} threads; decoder-only: {alt_flops_task / 1e6:.1f} MFLOP per training task")
    print(f"{'what':<48} {'tasks/s':>9} {'tokens/s':>10} {'GFLOP/s':>9} {'MFU':>6}")
    for what, tasks_s, tok_s, gflops, mfu in rows:
        print(f"{what:<48} {tasks_s:>9} {tok_s:>10} {gflops:>9.1f} {mfu:>6.0%}")
    # Where a step's time goes: its matmuls alone vs everything else (norms, GELU, softmax
    # over a handful of positions, autocast's casts, AdamW, the loss), which bf16 does not speed up.
    for d in dtypes:
        step, gemms = t[("train", d)], t[("gemms", d)]
        print(f"train {d}: {step * 1e3:.0f} ms per step, of which the model's GEMMs alone take "
              f"{gemms * 1e3:.0f} ms ({gemms / step:.0%}); the rest is non-matmul work")


if __name__ == "__main__":
    main()
