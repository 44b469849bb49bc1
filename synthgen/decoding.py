"""Writing programs with a trained synthesizer: greedy, sampling and beam search.

    candidates = synthesize(model, universe.grammar, tasks, method="beam", beam_size=10)

Every method can be *grammar-constrained*: at each step, tokens that could not lead to a
well-formed prefix program of at most ``max_size`` nodes get probability zero, so
every finished sequence parses.  The state that decides this is the number of operands
still open (1 before the first token; a symbol of arity a changes it by a - 1) and the
number of symbols written: a symbol may follow only if the open operands after it can
each still be closed by one leaf within ``max_size``, and EOS only when none is open.
Unconstrained, the model may write anything, and what it writes goes through
:func:`synthgen.grammar.parse_prefix` like any text: it is parsed, never evaluated.

No key-value cache: programs are at most ``max_size + 1`` tokens, and the examples are
encoded once per task and reused for every step, sample and beam; recomputing the few
decoder positions is cheaper than the bookkeeping.

Sampling draws with the Gumbel-max trick from noise that is a hash of (seed, task key,
sample index, step, token), so a task's samples do not depend on which batch it is in
or on what ran before.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from synthgen.grammar import Grammar, ParseError, Program, parse_prefix
from synthgen.model import Synthesizer
from synthgen.seeding import random_keys
from synthgen.tasks import Tasks
from synthgen.tokenizer import BOS, EOS, N_SPECIAL, PAD, ExampleTokenizer, ProgramTokenizer

DECODINGS = ("greedy", "sample", "beam")


class GrammarConstraint:
    """Which next tokens keep a partial prefix program completable within ``max_size``."""

    def __init__(self, tokenizer: ProgramTokenizer, grammar: Grammar, device: torch.device | str = "cpu") -> None:
        arity = torch.full((tokenizer.vocab_size,), -1, dtype=torch.long)  # -1: not a symbol
        for i, s in enumerate(tokenizer.symbols):
            arity[N_SPECIAL + i] = grammar.arity(s)
        self.arity, self.max_size = arity.to(device), grammar.max_size

    def start(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(open operands, symbols written) of ``n`` empty programs."""
        device = self.arity.device
        return torch.ones(n, dtype=torch.long, device=device), torch.zeros(n, dtype=torch.long, device=device)

    def allowed(self, open_: torch.Tensor, written: torch.Tensor) -> torch.Tensor:
        """(n, vocab) bool: a symbol of arity a fits if, after it, each of the
        ``open - 1 + a`` open operands can still take one leaf within max_size."""
        a = self.arity[None, :]
        after = open_[:, None] - 1 + a
        symbol_ok = (a >= 0) & (open_[:, None] >= 1) & (written[:, None] + 1 + after <= self.max_size)
        eos = torch.zeros_like(symbol_ok)
        eos[:, EOS] = open_ == 0
        return symbol_ok | eos

    def update(self, open_: torch.Tensor, written: torch.Tensor, token: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a = self.arity[token]
        is_symbol = a >= 0
        return open_ + torch.where(is_symbol, a - 1, 0), written + is_symbol.long()


@dataclass
class Candidates:
    """Programs written for each task: ``programs[i]`` holds task i's candidates (a
    :class:`Program` or, for malformed output, a :class:`ParseError`), ``tokens[i, j]``
    the raw token ids and ``logprob[i, j]`` their total log-probability under the model
    (constrained: under the renormalised, masked distribution)."""

    programs: list[list[Program | ParseError]]
    tokens: np.ndarray
    logprob: np.ndarray


class _Decoder:
    """Shared step logic: next-token log-probabilities for a batch of prefixes."""

    def __init__(self, model: Synthesizer, grammar: Grammar, constrained: bool) -> None:
        self.model = model
        self.device = next(model.parameters()).device
        self.tokenizer = ProgramTokenizer.for_grammar(grammar)
        self.constraint = GrammarConstraint(self.tokenizer, grammar, self.device) if constrained else None
        self.steps = self.tokenizer.max_length - 1  # positions after BOS

    def log_probs(self, memory: torch.Tensor, prefix: torch.Tensor, state, done: torch.Tensor) -> torch.Tensor:
        logits = self.model.decode(memory, prefix)[:, -1].float()
        if self.constraint is not None:
            logits = logits.masked_fill(~self.constraint.allowed(*state), float("-inf"))
        logp = torch.log_softmax(logits, dim=-1)
        # a finished sequence continues with PAD at no cost
        finished = torch.full_like(logp, float("-inf"))
        finished[:, PAD] = 0.0
        return torch.where(done[:, None], finished, logp)

    def start(self, n: int):
        prefix = torch.full((n, 1), BOS, dtype=torch.long, device=self.device)
        state = self.constraint.start(n) if self.constraint is not None else None
        return prefix, state, torch.zeros(n, dtype=torch.bool, device=self.device)

    def advance(self, prefix, state, done, token):
        if self.constraint is not None:
            state = self.constraint.update(*state, token)
        return torch.cat([prefix, token[:, None]], 1), state, done | (token == EOS) | (token == PAD)


@torch.no_grad()
def greedy(model: Synthesizer, grammar: Grammar, examples: torch.Tensor, constrained: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The most likely token at each step: (B, L) tokens (BOS first) and (B,) log-probs."""
    dec = _Decoder(model, grammar, constrained)
    memory = model.encode(examples)
    prefix, state, done = dec.start(len(examples))
    total = torch.zeros(len(examples), device=dec.device)
    for _ in range(dec.steps):
        logp = dec.log_probs(memory, prefix, state, done)
        token = logp.argmax(-1)
        total += logp.gather(1, token[:, None])[:, 0]
        prefix, state, done = dec.advance(prefix, state, done, token)
        if done.all():
            break
    return prefix, total


@torch.no_grad()
def sample(
    model: Synthesizer,
    grammar: Grammar,
    examples: torch.Tensor,
    n: int,
    temperature: float,
    constrained: bool,
    task_keys: np.ndarray,
    seed: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` samples per task at ``temperature``: (B, n, L) tokens and (B, n) log-probs
    (of the untempered model).  ``task_keys`` (e.g. program ids) key the noise."""
    dec = _Decoder(model, grammar, constrained)
    B = len(examples)
    memory = model.encode(examples).repeat_interleave(n, dim=0)
    prefix, state, done = dec.start(B * n)
    total = torch.zeros(B * n, device=dec.device)
    keys = np.repeat(np.asarray(task_keys, dtype=np.int64), n)[:, None]
    index = np.tile(np.arange(n), B)[:, None]
    vocab = np.arange(dec.tokenizer.vocab_size)[None, :]
    for step in range(dec.steps):
        logp = dec.log_probs(memory, prefix, state, done)
        u = (random_keys(seed, "sample", keys, index, step, vocab) >> np.uint64(11)).astype(np.float64)
        gumbel = -torch.log(-torch.log(torch.from_numpy((u + 0.5) / 2.0**53))).to(dec.device)
        token = (logp.double() / temperature + gumbel).argmax(-1)  # -inf stays -inf: masked tokens never win
        total += logp.gather(1, token[:, None])[:, 0]
        prefix, state, done = dec.advance(prefix, state, done, token)
        if done.all():
            break
    return prefix.view(B, n, -1), total.view(B, n)


@torch.no_grad()
def beam_search(
    model: Synthesizer, grammar: Grammar, examples: torch.Tensor, beam_size: int, constrained: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``beam_size`` most likely sequences found by beam search, best first:
    (B, beam, L) tokens and (B, beam) log-probs.  Scores are plain sums of log-probs
    (no length penalty): the ranking is by likelihood.  Where fewer than ``beam_size``
    sequences are possible (constrained, a tiny grammar), the surplus beams score
    -inf and are not programs."""
    dec = _Decoder(model, grammar, constrained)
    B, V = len(examples), dec.tokenizer.vocab_size
    memory = model.encode(examples).repeat_interleave(beam_size, dim=0)
    prefix, state, done = dec.start(B * beam_size)
    score = torch.full((B, beam_size), float("-inf"), device=dec.device)
    score[:, 0] = 0.0  # one live beam to start with: the others are copies of it
    for _ in range(dec.steps):
        logp = dec.log_probs(memory, prefix, state, done).view(B, beam_size, V)
        total = (score[:, :, None] + logp).view(B, beam_size * V)
        score, flat = total.topk(beam_size, dim=1)
        parent = (flat // V + torch.arange(B, device=dec.device)[:, None] * beam_size).view(-1)
        token = (flat % V).view(-1)
        if state is not None:
            state = tuple(s[parent] for s in state)
        prefix, state, done = dec.advance(prefix[parent], state, done[parent], token)
        if done.all():
            break
    return prefix.view(B, beam_size, -1), score


def synthesize(
    model: Synthesizer,
    grammar: Grammar,
    tasks: Tasks,
    method: str = "greedy",
    *,
    constrained: bool = True,
    n: int = 1,
    temperature: float = 1.0,
    beam_size: int = 1,
    seed: int = 0,
    batch_size: int = 256,
) -> Candidates:
    """Candidates for every task: 1 (greedy), ``n`` (sample) or ``beam_size`` (beam,
    best first).  Sample noise is keyed by (seed, program id)."""
    if method not in DECODINGS:
        raise ValueError(f"method must be one of {', '.join(DECODINGS)}; got {method!r}")
    model.eval()
    device = next(model.parameters()).device
    examples_all = torch.from_numpy(ExampleTokenizer.for_grammar(grammar).encode_tasks(tasks)).to(device)
    tokenizer = ProgramTokenizer.for_grammar(grammar)
    tokens, logprob = [], []
    for i in range(0, len(tasks), batch_size):
        examples = examples_all[i : i + batch_size]
        if method == "greedy":
            t, lp = greedy(model, grammar, examples, constrained)
            t, lp = t[:, None], lp[:, None]
        elif method == "sample":
            t, lp = sample(model, grammar, examples, n, temperature, constrained, tasks.targets[i : i + batch_size], seed)
        else:
            t, lp = beam_search(model, grammar, examples, beam_size, constrained)
        padded = torch.full((*t.shape[:2], tokenizer.max_length), PAD, dtype=torch.long)
        padded[:, :, : t.shape[2]] = t.cpu()
        tokens.append(padded.numpy())
        logprob.append(lp.cpu().numpy())
    tokens_arr = np.concatenate(tokens) if tokens else np.zeros((0, 1, tokenizer.max_length), np.int64)
    logprob_arr = np.concatenate(logprob) if logprob else np.zeros((0, 1))
    programs = [[parse_prefix(tokenizer.decode(seq), grammar) for seq in row] for row in tokens_arr]
    return Candidates(programs=programs, tokens=tokens_arr, logprob=logprob_arr)
