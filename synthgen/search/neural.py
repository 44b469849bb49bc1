"""Neural-guided search: the trained synthesizer proposes, the examples dispose
(STUDY.md section 7).

- :func:`sample_and_filter`: draw ``n`` programs per task from the model, keep those
  consistent with the ``K`` examples, answer with the most likely of them.
- :func:`best_first`: best-first search over partial prefix programs, ordered by the
  model's log-probability, under a budget of *expanded nodes* (model calls).  Nodes are
  well-formed partial programs (the grammar constraint of :mod:`synthgen.decoding`);
  expanding one scores every allowed next token with one decoder call.  A child that
  closes the program is a complete candidate (EOS, the only token the constraint then
  allows, has probability 1 and costs no call): when it reaches the top of the queue it
  is checked against the examples, and the first consistent one is the answer.  Scores only fall
  along a path, so candidates come out in exactly decreasing probability: the answer is
  the model's most likely consistent program, if the budget reaches it.

Each method runs once with its largest budget; every smaller budget is a prefix of that
run (the first ``n`` samples; the search up to its ``b``-th expansion), so the results
for all budgets come from one run and equal separate runs exactly (tested).

Costs come in the units of :mod:`synthgen.search.enumerative`, so that methods compare:
``candidates`` = complete programs checked against the examples, plus for the neural
methods ``model_calls`` (decoder steps; one per expansion) and ``flops``, the matmul
count of the model's work for the task (encoding its examples once, and each decoder
call over its prefix, computed without a key-value cache as :mod:`synthgen.decoding` does;
see :func:`decoder_call_flops`).  A sample costs the decoder calls of its own length, as
if it were decoded alone.

Candidates are checked through :class:`ProgramIndex`, which maps token sequences to
universe programs, so a check is an array lookup: model output is looked up, never
evaluated as Python.  A sequence that is not a program of the universe (malformed
unconstrained output) is never consistent.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from synthgen.decoding import GrammarConstraint, sample
from synthgen.evaluation import judge_programs
from synthgen.model import ModelConfig, Synthesizer, forward_flops_per_task
from synthgen.tasks import Tasks
from synthgen.tokenizer import BOS, EOS, N_SPECIAL, PAD, ExampleTokenizer, ProgramTokenizer
from synthgen.universe import Universe

RESULT_COLUMNS = ("program_id", "budget", "answer", "solved", "passed", "candidates", "model_calls", "flops")
"""One row per (task, budget): the target, the budget, the program returned (-1: none),
whether it is consistent with the examples (``solved``) and in the target's class
(``passed``), and the costs."""


# --- looking programs up ------------------------------------------------------------


class ProgramIndex:
    """Token sequences to universe program ids, by a vectorised lookup.

    A program's key is its prefix symbols read as digits ``1..S`` in base ``S + 1``
    (no digit is zero, so sequences of different lengths never share a key).  Keys are
    built bottom-up over the universe, whose children always precede their parents."""

    def __init__(self, universe: Universe) -> None:
        self.universe = universe
        n_symbols = len(universe.grammar.symbols)
        self.base = n_symbols + 1
        if self.base ** universe.grammar.max_size >= 2**63:
            raise ValueError("programs of this grammar are too long for 64-bit keys")
        op = universe.op.astype(np.int64) + 1
        left, right = universe.left.astype(np.int64), universe.right.astype(np.int64)
        size = universe.size.astype(np.int64)
        key = np.zeros(len(universe), dtype=np.int64)
        offsets = universe.size_offsets
        for s in range(1, universe.grammar.max_size + 1):
            rows = np.arange(offsets[s - 1], offsets[s])
            if not len(rows):
                continue
            l, r = left[rows], right[rows]
            size_l = np.where(l >= 0, size[np.maximum(l, 0)], 0)
            size_r = np.where(r >= 0, size[np.maximum(r, 0)], 0)
            key_l = np.where(l >= 0, key[np.maximum(l, 0)], 0)
            key_r = np.where(r >= 0, key[np.maximum(r, 0)], 0)
            key[rows] = (op[rows] * self.base ** (size_l + size_r) + key_l * self.base**size_r + key_r)
        order = np.argsort(key, kind="stable")
        self._keys, self._ids = key[order], order.astype(np.int64)
        if len(key) > 1 and (self._keys[1:] == self._keys[:-1]).any():
            raise AssertionError("two programs share a token key: the universe table is corrupt")

    def lookup(self, tokens: np.ndarray) -> np.ndarray:
        """Program id of each framed token sequence (``BOS`` symbols ``EOS`` then
        ``PAD``, shape ``(..., L)``); -1 where it is not a program of the universe."""
        tokens = np.asarray(tokens, dtype=np.int64)
        shape = tokens.shape[:-1]
        t = tokens.reshape(-1, tokens.shape[-1])
        if t.shape[1] and (t[:, 0] == BOS).all():
            t = t[:, 1:]
        is_eos = t == EOS
        has_eos = is_eos.any(axis=1)
        length = np.where(has_eos, is_eos.argmax(axis=1), t.shape[1])
        within = np.arange(t.shape[1])[None, :] < length[:, None]
        digit = t - N_SPECIAL + 1
        ok = has_eos & (length >= 1) & ~(within & ((digit < 1) | (digit >= self.base))).any(axis=1)
        key = np.zeros(len(t), dtype=np.int64)
        for j in range(t.shape[1]):  # Horner's rule over the symbols before EOS
            key = np.where(within[:, j], key * self.base + np.where(within[:, j], digit[:, j], 0), key)
        at = np.minimum(np.searchsorted(self._keys, key), len(self._keys) - 1)
        found = ok & (self._keys[at] == key)
        return np.where(found, self._ids[at], -1).reshape(shape)


def check(universe: Universe, tasks: Tasks, program_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(consistent, passes)`` for candidate ids of shape ``(T, n)``: the study's rule
    (:func:`synthgen.evaluation.judge_programs`).  -1 and out-of-bound programs are neither."""
    return judge_programs(universe, tasks, program_ids)


# --- compute ---------------------------------------------------------------------


def memory_flops(cfg: ModelConfig, n_examples: int) -> int:
    """Matmul FLOPs of encoding one task's examples (with the cross-attention keys and
    values of every decoder layer): :func:`forward_flops_per_task` with no program."""
    return forward_flops_per_task(cfg, n_examples, target_length=0)


def decoder_call_flops(cfg: ModelConfig, n_examples: int, prefix_length: int) -> int:
    """Matmul FLOPs of one decoder call over a prefix of ``prefix_length`` tokens (BOS
    included), every position recomputed as :mod:`synthgen.decoding` does."""
    return forward_flops_per_task(cfg, n_examples, prefix_length) - memory_flops(cfg, n_examples)


# --- sample and filter -------------------------------------------------------------


def decoder_calls(tokens: np.ndarray) -> np.ndarray:
    """Decoder calls a written program needs on its own (tokens along the last axis): one
    per token after BOS, up to its EOS or the end."""
    eos = tokens[..., 1:] == EOS
    return np.where(eos.any(axis=-1), eos.argmax(axis=-1) + 1, tokens.shape[-1] - 1)


def calls_flops(cfg: ModelConfig, n_examples: int) -> np.ndarray:
    """Entry ``L``: the FLOPs of decoder calls over prefixes of length 1..L (0 for L = 0)."""
    per_call = [0] + [decoder_call_flops(cfg, n_examples, t) for t in range(1, cfg.max_length + 1)]
    return np.cumsum(np.array(per_call, dtype=np.float64))


def _check_budgets(budgets) -> list[int]:
    budgets = [int(b) for b in budgets]
    if not budgets or budgets[0] < 1 or any(a >= b for a, b in zip(budgets, budgets[1:])):
        raise ValueError(f"budgets must be strictly increasing integers >= 1, got {budgets}")
    return budgets


@torch.no_grad()
def sample_and_filter(
    model: Synthesizer,
    universe: Universe,
    tasks: Tasks,
    budgets,
    *,
    temperature: float = 1.0,
    constrained: bool = True,
    seed: int = 0,
    index: ProgramIndex | None = None,
    batch_size: int = 64,
) -> pd.DataFrame:
    """For each budget ``n`` and task: draw its first ``n`` samples, keep those consistent
    with the examples and answer with the most likely (ties: the earlier sample).  One row
    per (task, budget), columns :data:`RESULT_COLUMNS`.  Samples are keyed by (seed,
    target program id, sample index) as in :func:`synthgen.decoding.synthesize`."""
    budgets = _check_budgets(budgets)
    n = budgets[-1]
    index = index or ProgramIndex(universe)
    model.eval()
    device = next(model.parameters()).device
    grammar = universe.grammar
    examples = torch.from_numpy(ExampleTokenizer.for_grammar(grammar).encode_tasks(tasks)).to(device)
    ids, logprob, lengths = [], [], []
    for i in range(0, len(tasks), batch_size):
        t, lp = sample(model, grammar, examples[i : i + batch_size], n, temperature, constrained,
                       tasks.targets[i : i + batch_size], seed)
        t = t.cpu().numpy()
        ids.append(index.lookup(t))
        logprob.append(lp.cpu().double().numpy())
        lengths.append(decoder_calls(t))
    ids = np.concatenate(ids) if ids else np.zeros((0, n), np.int64)
    logprob = np.concatenate(logprob) if logprob else np.zeros((0, n))
    lengths = np.concatenate(lengths) if lengths else np.zeros((0, n), np.int64)
    consistent, passes = check(universe, tasks, ids)

    cfg, K = model.cfg, tasks.n_examples
    sample_flops = calls_flops(cfg, K)[lengths]
    rows = []
    for b in budgets:
        score = np.where(consistent[:, :b], logprob[:, :b], -np.inf)
        top = score.argmax(axis=1)  # the first of equal maxima
        solved = consistent[:, :b].any(axis=1)
        rows.append(pd.DataFrame({
            "program_id": tasks.targets,
            "budget": b,
            "answer": np.where(solved, ids[np.arange(len(tasks)), top], -1),
            "solved": solved,
            "passed": solved & passes[np.arange(len(tasks)), top],
            "candidates": np.int64(b),
            "model_calls": lengths[:, :b].sum(axis=1).astype(np.int64),
            "flops": memory_flops(cfg, K) + sample_flops[:, :b].sum(axis=1),
        }))
    return pd.concat(rows, ignore_index=True)[list(RESULT_COLUMNS)]


@torch.no_grad()
def greedy_rows(
    model: Synthesizer, universe: Universe, tasks: Tasks, *, constrained: bool = True, index: ProgramIndex | None = None,
    batch_size: int = 256,
) -> pd.DataFrame:
    """The pure transformer, for reference: its greedy program is the answer, checked or
    not (one candidate, budget 1); ``solved`` says whether it fits the examples."""
    from synthgen.decoding import greedy

    index = index or ProgramIndex(universe)
    model.eval()
    device = next(model.parameters()).device
    examples = torch.from_numpy(ExampleTokenizer.for_grammar(universe.grammar).encode_tasks(tasks)).to(device)
    ids, lengths = [], []
    for i in range(0, len(tasks), batch_size):
        t = greedy(model, universe.grammar, examples[i : i + batch_size], constrained)[0].cpu().numpy()
        ids.append(index.lookup(t))
        lengths.append(decoder_calls(t))
    ids = np.concatenate(ids)[:, None] if ids else np.zeros((0, 1), np.int64)
    lengths = np.concatenate(lengths) if lengths else np.zeros(0, np.int64)
    consistent, passes = check(universe, tasks, ids)
    cfg, K = model.cfg, tasks.n_examples
    return pd.DataFrame({
        "program_id": tasks.targets,
        "budget": 1,
        "answer": ids[:, 0],
        "solved": consistent[:, 0],
        "passed": passes[:, 0],
        "candidates": np.int64(1),
        "model_calls": lengths.astype(np.int64),
        "flops": memory_flops(cfg, K) + calls_flops(cfg, K)[lengths],
    })[list(RESULT_COLUMNS)]


# --- best-first search ---------------------------------------------------------------


@dataclass
class _Search:
    """One task's best-first search: a heap of (-log-prob, insertion count, tokens)."""

    heap: list
    pushed: int = 0
    checked: int = 0
    expansions: int = 0
    answer: int = -1
    answer_at: int = -1  # expansions done when the answer was checked
    checked_before: list | None = None  # checked[e]: candidates checked before expansion e + 1
    flops_before: list | None = None  # model FLOPs spent before expansion e + 1 (memory excluded)
    flops: float = 0.0
    done: bool = False


@torch.no_grad()
def best_first(
    model: Synthesizer,
    universe: Universe,
    tasks: Tasks,
    budgets,
    *,
    index: ProgramIndex | None = None,
    batch_size: int = 256,
) -> pd.DataFrame:
    """Best-first search over partial prefix programs for every task, up to the largest
    budget of expansions; one row per (task, budget), columns :data:`RESULT_COLUMNS`.

    A budget ``b`` allows ``b`` expansions: the search stops when it would need another.
    Candidates whose turn comes before that are still checked (checking costs no model
    call).  Ties in log-probability go to the node pushed first."""
    budgets = _check_budgets(budgets)
    index = index or ProgramIndex(universe)
    model.eval()
    device = next(model.parameters()).device
    grammar = universe.grammar
    tokenizer = ProgramTokenizer.for_grammar(grammar)
    constraint = GrammarConstraint(tokenizer, grammar, device)
    cfg, K = model.cfg, tasks.n_examples
    call_flops = [0] + [decoder_call_flops(cfg, K, t) for t in range(1, cfg.max_length + 1)]
    examples_all = torch.from_numpy(ExampleTokenizer.for_grammar(grammar).encode_tasks(tasks)).to(device)
    searches: list[_Search] = []
    for start in range(0, len(tasks), batch_size):
        rows = np.arange(start, min(start + batch_size, len(tasks)))
        memory = model.encode(examples_all[rows])
        batch = [_Search(heap=[(0.0, 0, (BOS,))], pushed=1, checked_before=[], flops_before=[]) for _ in rows]
        _run_best_first(model, universe, tasks, rows, batch, memory, constraint, index, budgets[-1], call_flops)
        searches.extend(batch)

    _, passes_answer = check(universe, tasks, np.array([[s.answer] for s in searches], dtype=np.int64))
    passes_answer = passes_answer[:, 0]
    out = []
    for b in budgets:
        solved = np.array([s.answer >= 0 and s.answer_at <= b for s in searches], dtype=bool)
        # the state when the search with budget b stops: at its answer, or when it asks for expansion b + 1
        candidates = np.array([
            s.checked if ok else (s.checked_before[b] if len(s.checked_before) > b else s.checked)
            for s, ok in zip(searches, solved)
        ], dtype=np.int64)
        calls = np.array([s.answer_at if ok else min(s.expansions, b) for s, ok in zip(searches, solved)], dtype=np.int64)
        flops = np.array([
            (s.flops_before[c] if c < len(s.flops_before) else s.flops) for s, c in zip(searches, calls)
        ], dtype=np.float64)
        out.append(pd.DataFrame({
            "program_id": tasks.targets,
            "budget": b,
            "answer": np.array([s.answer if ok else -1 for s, ok in zip(searches, solved)], dtype=np.int64),
            "solved": solved,
            "passed": solved & passes_answer,
            "candidates": candidates,
            "model_calls": calls,
            "flops": memory_flops(cfg, K) + flops,
        }))
    return pd.concat(out, ignore_index=True)[list(RESULT_COLUMNS)]


def _run_best_first(model, universe, tasks, rows, batch, memory, constraint, index, budget, call_flops) -> None:
    """Advance every search of ``batch`` in lockstep: each round checks the candidates at
    the top of its heap, then expands its best partial program in one batched model call."""
    while True:
        expand = []  # (search position, tokens, score)
        for j, s in enumerate(batch):
            if s.done:
                continue
            while s.heap and s.heap[0][2][-1] == EOS:  # complete candidates: check them
                _, _, tokens = heapq.heappop(s.heap)
                s.checked += 1
                pid = int(index.lookup(np.array(tokens)[None])[0])
                i = rows[j]
                consistent, _ = check(universe, tasks[i : i + 1], np.array([[pid]]))
                if consistent[0, 0]:
                    s.answer, s.answer_at, s.done = pid, s.expansions, True
                    break
            if s.done:
                continue
            if not s.heap or s.expansions == budget:
                s.done = True
                continue
            s.checked_before.append(s.checked)
            s.flops_before.append(s.flops)
            neg_score, _, tokens = heapq.heappop(s.heap)
            s.expansions += 1
            s.flops += call_flops[len(tokens)]
            expand.append((j, tokens, -neg_score))
        if not expand:
            return
        longest = max(len(t) for _, t, _ in expand)
        prefix = torch.full((len(expand), longest), PAD, dtype=torch.long, device=memory.device)
        for r, (_, tokens, _) in enumerate(expand):
            prefix[r, : len(tokens)] = torch.tensor(tokens)
        lengths = torch.tensor([len(t) for _, t, _ in expand], device=memory.device)
        which = torch.tensor([j for j, _, _ in expand], device=memory.device)
        logits = model.decode(memory[which], prefix)[torch.arange(len(expand)), lengths - 1].float()
        # the grammar state of each prefix: open operands and symbols written
        open_, written = constraint.start(len(expand))
        for col in range(1, longest):
            live = col < lengths
            tok = prefix[:, col]
            o, w = constraint.update(open_, written, tok)
            open_, written = torch.where(live, o, open_), torch.where(live, w, written)
        allowed = constraint.allowed(open_, written)
        logp = torch.log_softmax(logits.masked_fill(~allowed, float("-inf")), dim=-1).double().cpu().numpy()
        allowed, open_after = allowed.cpu().numpy(), (open_[:, None] - 1 + constraint.arity[None, :]).cpu().numpy()
        for r, (j, tokens, score) in enumerate(expand):
            s = batch[j]
            for token in np.flatnonzero(allowed[r]):
                child = tokens + (int(token),)
                if open_after[r, token] == 0:
                    # a whole program: EOS is then the only token the constraint allows, with
                    # probability 1, so the candidate is complete without another model call
                    child += (EOS,)
                heapq.heappush(s.heap, (-(score + logp[r, token]), s.pushed, child))
                s.pushed += 1
