"""The neural synthesizer: an encoder-decoder transformer, in the style of nanoGPT.

The encoder reads the K examples of a task, one position per example (the sum of the
example's field-token embeddings, see :mod:`synthgen.tokenizer`) and no positional
embedding, so it treats the examples as the set they are.  The decoder writes the
program's prefix tokens, attending causally to itself and fully to the encoded examples.

Why encoder-decoder rather than decoder-only with the examples as a prefix: at equal
parameters, a decoder-only stack runs every weight over all K + T positions of a task,
while here encoder weights see only the K example positions and decoder weights only
the T program positions.  So a task costs about half the FLOPs: with the default sizes
(N = 0.92M vs 0.98M for 5 decoder-only layers) 50 vs 109 MFLOP per training task, and
1,735 vs 987 tasks/s of fp32 training on two cores (``benchmarks/training.py``).
It also encodes a task's examples once and reuses them for every decoding step, sample
and beam, with no key-value cache to get right, and its encoder is order-free over the
examples without any masking trick.

Pre-LayerNorm blocks without biases, GELU MLPs four times wider than the residual
stream, weights tied between the program-token embedding and the output layer, and
nanoGPT's initialisation (residual projections scaled by 1/sqrt(2 * layers)).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from synthgen.grammar import Grammar
from synthgen.params import ModelParams
from synthgen.tokenizer import PAD, ExampleTokenizer, ProgramTokenizer


@dataclass(frozen=True)
class ModelConfig:
    """Everything that fixes the model's shape."""

    example_vocab: int  # field tokens of the examples
    program_vocab: int  # program tokens, specials included
    max_length: int  # framed program length: BOS + max_size tokens + EOS
    encoder_layers: int
    decoder_layers: int
    width: int
    heads: int
    dropout: float

    @classmethod
    def from_params(cls, model: ModelParams, grammar: Grammar) -> "ModelConfig":
        programs = ProgramTokenizer.for_grammar(grammar)
        return cls(
            example_vocab=ExampleTokenizer.for_grammar(grammar).vocab_size,
            program_vocab=programs.vocab_size,
            max_length=programs.max_length,
            encoder_layers=model.encoder_layers,
            decoder_layers=model.decoder_layers,
            width=model.width,
            heads=model.heads,
            dropout=model.dropout,
        )

    def to_dict(self) -> dict:
        return asdict(self)


class Attention(nn.Module):
    """Multi-head attention of ``x`` over ``context`` (itself for self-attention)."""

    def __init__(self, cfg: ModelConfig, causal: bool) -> None:
        super().__init__()
        self.heads, self.causal, self.dropout = cfg.heads, causal, cfg.dropout
        self.query = nn.Linear(cfg.width, cfg.width, bias=False)
        self.key_value = nn.Linear(cfg.width, 2 * cfg.width, bias=False)
        self.proj = nn.Linear(cfg.width, cfg.width, bias=False)
        self.resid_dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        B, T, W = x.shape
        split = lambda t: t.view(B, t.shape[1], self.heads, W // self.heads).transpose(1, 2)  # noqa: E731
        q = split(self.query(x))
        k, v = (split(t) for t in self.key_value(context).split(W, dim=2))
        dropout = self.dropout if self.training else 0.0
        if x.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
            # Over our ~10 positions, PyTorch's fused CPU kernel is ~2.5x slower under bf16
            # autocast than the plain product (in fp32 and on a GPU the fused one wins).
            scores = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
            if self.causal:
                scores = scores.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
            y = F.dropout(scores.softmax(dim=-1), p=dropout) @ v
        else:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal, dropout_p=dropout)
        return self.resid_dropout(self.proj(y.transpose(1, 2).reshape(B, T, W)))


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.fc = nn.Linear(cfg.width, 4 * cfg.width, bias=False)
        self.proj = nn.Linear(4 * cfg.width, cfg.width, bias=False)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.proj(F.gelu(self.fc(x))))


class EncoderBlock(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.ln_attn = nn.LayerNorm(cfg.width, bias=False)
        self.attn = Attention(cfg, causal=False)
        self.ln_mlp = nn.LayerNorm(cfg.width, bias=False)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.ln_attn(x)
        x = x + self.attn(h, h)
        return x + self.mlp(self.ln_mlp(x))


class DecoderBlock(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.ln_self = nn.LayerNorm(cfg.width, bias=False)
        self.self_attn = Attention(cfg, causal=True)
        self.ln_cross = nn.LayerNorm(cfg.width, bias=False)
        self.cross_attn = Attention(cfg, causal=False)
        self.ln_mlp = nn.LayerNorm(cfg.width, bias=False)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        h = self.ln_self(x)
        x = x + self.self_attn(h, h)
        x = x + self.cross_attn(self.ln_cross(x), memory)
        return x + self.mlp(self.ln_mlp(x))


class Synthesizer(nn.Module):
    """Examples (B, K, n_fields) and program tokens (B, T) in, next-token logits out."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.example_embedding = nn.Embedding(cfg.example_vocab, cfg.width)
        self.encoder = nn.ModuleList(EncoderBlock(cfg) for _ in range(cfg.encoder_layers))
        self.ln_memory = nn.LayerNorm(cfg.width, bias=False)
        self.token_embedding = nn.Embedding(cfg.program_vocab, cfg.width)
        self.position_embedding = nn.Embedding(cfg.max_length, cfg.width)
        self.embedding_dropout = nn.Dropout(cfg.dropout)
        self.decoder = nn.ModuleList(DecoderBlock(cfg) for _ in range(cfg.decoder_layers))
        self.ln_out = nn.LayerNorm(cfg.width, bias=False)
        self.head = nn.Linear(cfg.width, cfg.program_vocab, bias=False)
        self.head.weight = self.token_embedding.weight  # weight tying
        self.apply(self._init_weights)
        # residual projections: scaled so the residual stream's variance does not grow with depth
        layers = cfg.encoder_layers + cfg.decoder_layers
        for name, p in self.named_parameters():
            if name.endswith("proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * layers))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def encode(self, examples: torch.Tensor) -> torch.Tensor:
        """(B, K, n_fields) field tokens -> (B, K, width) memory."""
        x = self.embedding_dropout(self.example_embedding(examples).sum(dim=2))
        for block in self.encoder:
            x = block(x)
        return self.ln_memory(x)

    def decode(self, memory: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Memory (B, K, width) and program tokens (B, T) -> logits (B, T, vocab)."""
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        x = self.embedding_dropout(self.token_embedding(tokens) + self.position_embedding(positions))
        for block in self.decoder:
            x = block(x, memory)
        return self.head(self.ln_out(x))

    def forward(self, examples: torch.Tensor, programs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher forcing on framed programs (B, max_length): predict ``programs[:, 1:]``
        from ``programs[:, :-1]``.  The loss is on program tokens (and EOS) only: the
        examples are never predicted and PAD positions are ignored."""
        logits = self.decode(self.encode(examples), programs[:, :-1])
        loss = F.cross_entropy(logits.flatten(0, 1).float(), programs[:, 1:].flatten(), ignore_index=PAD)
        return logits, loss


# --- size and compute ----------------------------------------------------------------


def count_parameters(model: nn.Module, non_embedding: bool = True) -> int:
    """Parameters, by default without the embedding tables (Kaplan et al.'s N: the
    tied output layer shares the token embedding and is not counted either)."""
    embeddings = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    return sum(p.numel() for p in model.parameters() if not (non_embedding and id(p) in embeddings))


def forward_flops_per_task(cfg: ModelConfig, n_examples: int, target_length: int | None = None) -> int:
    """Matmul FLOPs of one forward pass over one task (2 per multiply-add), counting
    attention scores as well as weights; a training step costs about three times this.

    Encoder, per layer and example position: q, k, v and output projections (2*4 W^2),
    MLP (2*8 W^2), scores and weighted sum over K positions (2*2*K*W).  Decoder, per layer
    and program position: self-attention (2*4 W^2 + 2*2*T*W), cross-attention query and
    projection (2*2 W^2) with keys and values of the K memory positions (2*2 W^2 each,
    once per task) and scores (2*2*K*W), MLP (2*8 W^2).  Output layer: 2*W*V per
    program position.  T defaults to the padded length a training step computes."""
    W, K = cfg.width, n_examples
    T = cfg.max_length - 1 if target_length is None else target_length
    encoder = cfg.encoder_layers * K * (24 * W * W + 4 * K * W)
    decoder = cfg.decoder_layers * (T * (28 * W * W + 4 * T * W + 4 * K * W) + K * 4 * W * W)
    head = T * 2 * W * cfg.program_vocab
    return encoder + decoder + head


def training_flops_per_task(cfg: ModelConfig, n_examples: int, target_length: int | None = None) -> int:
    """Forward plus backward (twice the forward): ``3 * forward_flops_per_task``; this
    is the exact counterpart of the rule of thumb C = 6 N tokens."""
    return 3 * forward_flops_per_task(cfg, n_examples, target_length)
