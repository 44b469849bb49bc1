"""How to show the examples to the encoder: one position per example, or a flat string.

    python benchmarks/example_encoding.py [--params params.yaml] [--tasks 100000]

Both variants read the same field tokens (:class:`synthgen.tokenizer.ExampleTokenizer`)
and share everything else (decoder, sizes, optimiser, data, budget in tasks):

- ``set``: the package's encoding: an example's field embeddings are summed into one
  position; K positions, no positional embedding;
- ``flat``: the classic string: every field token is a position of its own (inputs,
  sign, digits; leading digit places that no output of the universe uses are dropped),
  with a learned position embedding over the K * fields positions.

Prints training throughput, final validation loss and greedy pass@1 on held-out
random programs of the universe (with bootstrap intervals), one row per variant.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn as nn

from synthgen.decoding import synthesize
from synthgen.enumeration import enumerate_universe
from synthgen.evaluation import score_candidates, summarize, task_table
from synthgen.grammar import Grammar
from synthgen.model import ModelConfig, Synthesizer
from synthgen.params import load_params
from synthgen.tasks import make_tasks
from synthgen.tokenizer import ExampleTokenizer
from synthgen.training import Batches, learning_rate, make_optimizer, uses_bf16, validation_loss


class FlatSynthesizer(Synthesizer):
    """The same model, its encoder reading one position per field token."""

    def __init__(self, cfg: ModelConfig, n_examples: int, keep_fields: np.ndarray) -> None:
        super().__init__(cfg)
        self.register_buffer("keep", torch.as_tensor(keep_fields))
        self.flat_position = nn.Embedding(n_examples * len(keep_fields), cfg.width)
        nn.init.normal_(self.flat_position.weight, std=0.02)

    def encode(self, examples: torch.Tensor) -> torch.Tensor:
        tokens = examples[:, :, self.keep].flatten(1)
        x = self.example_embedding(tokens) + self.flat_position(torch.arange(tokens.shape[1]))
        for block in self.encoder:
            x = block(x)
        return self.ln_memory(x)


def train_for(model, batches: Batches, P) -> float:
    """The package's training step (see synthgen/training.py) for ``P.training.steps``
    steps; returns tasks per second."""
    tp = P.training
    optimizer = make_optimizer(model, tp.lr, tp.weight_decay)
    model.train()
    t = time.perf_counter()
    for step in range(tp.steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, tp.steps, tp.lr, tp.min_lr, tp.warmup)
        examples, programs = batches.at(step)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=uses_bf16(tp.bf16, torch.device("cpu"))):
            _, loss = model(examples, programs)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), tp.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return tp.steps * tp.batch_size / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--tasks", type=int, default=100_000, help="training budget of each variant")
    ap.add_argument("--test", type=int, default=1000, help="held-out programs to evaluate on")
    args = ap.parse_args()
    P = load_params(args.params, {"training.tasks": args.tasks})
    torch.set_num_threads(P.training.threads)
    universe = enumerate_universe(Grammar.from_params(P.grammar))
    ids = np.random.default_rng(P.seed).permutation(np.flatnonzero(universe.semantic_class >= 0))
    test, val, train = ids[: args.test], ids[args.test : args.test + 512], ids[args.test + 512 :]
    K = P.tasks.n_examples
    batches = Batches(universe, train, K, P.training.batch_size, P.seed)
    val_tensors = batches.tensors(val, "validation", 0)
    tasks = make_tasks(universe, test, K, "test", P.seed)
    cfg = ModelConfig.from_params(P.model, universe.grammar)

    tok = ExampleTokenizer.for_grammar(universe.grammar)
    used_digits = len(str(int(np.abs(universe.class_outputs).max())))
    keep = np.arange(tok.n_fields)
    keep = keep[(keep <= tok.n_variables) | (keep >= tok.n_fields - used_digits)]  # inputs, sign, used places
    variants = {"set": lambda: Synthesizer(cfg), "flat": lambda: FlatSynthesizer(cfg, K, keep)}
    print(f"{args.tasks:,} training tasks each; {len(test)} held-out programs; width {cfg.width}, "
          f"layers {cfg.encoder_layers}+{cfg.decoder_layers}; flat: {K * len(keep)} encoder positions")
    print(f"{'encoding':<8} {'positions':>9} {'tasks/s':>8} {'val loss':>9} {'pass@1':>7} {'95% CI':>16}")
    for name, build in variants.items():
        torch.manual_seed(P.seed)
        model = build()
        rate = train_for(model, batches, P)
        loss = validation_loss(model, *val_tensors, P.training.batch_size, uses_bf16(P.training.bf16, torch.device("cpu")))
        scores = score_candidates(universe, tasks, synthesize(model, universe.grammar, tasks, "greedy"))
        s = summarize(task_table(universe, tasks, scores), ["pass@1"], P.evaluation.bootstrap, 0.95, P.seed).iloc[0]
        positions = K if name == "set" else K * len(keep)
        print(f"{name:<8} {positions:>9} {rate:>8,.0f} {loss:>9.3f} {s['mean']:>7.3f} [{s['ci_low']:.3f}, {s['ci_high']:.3f}]")


if __name__ == "__main__":
    main()
