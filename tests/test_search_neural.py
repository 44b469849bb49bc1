"""Neural-guided search: the program index, sample-and-filter and best-first search,
checked against brute force over the (smoke) universe."""

import numpy as np
import pandas as pd
import pytest
import torch

from synthgen.decoding import GrammarConstraint, synthesize
from synthgen.model import ModelConfig, Synthesizer
from synthgen.search.compare import accuracy_by_budget, enumerative_rows, training_compute_for
from synthgen.search.enumerative import EnumerativeSearch
from synthgen.evaluation import score_candidates
from synthgen.search.neural import ProgramIndex, best_first, check, greedy_rows, sample_and_filter
from synthgen.tasks import make_tasks
from synthgen.tokenizer import BOS, EOS, PAD, ExampleTokenizer, ProgramTokenizer
from tests.conftest import smoke_params


@pytest.fixture(scope="module")
def index(universe):
    return ProgramIndex(universe)


@pytest.fixture(scope="module")
def model(universe):
    torch.manual_seed(0)  # an untrained model: the properties below hold for any weights
    return Synthesizer(ModelConfig.from_params(smoke_params().model, universe.grammar)).eval()


@pytest.fixture(scope="module")
def tasks(universe):
    valid = np.flatnonzero(universe.semantic_class >= 0)
    small = valid[universe.size[valid] <= 3]  # found within a few hundred expansions even untrained
    return make_tasks(universe, np.r_[small[::97][:8], valid[::1499][:8]], 10, "test", 0)


def test_index_maps_every_program_to_itself(universe, index):
    tokenizer = ProgramTokenizer.for_grammar(universe.grammar)
    ids = np.arange(len(universe))
    assert (index.lookup(tokenizer.encode_universe(universe, ids)) == ids).all()


def test_index_rejects_what_is_not_a_program(universe, index):
    tokenizer = ProgramTokenizer.for_grammar(universe.grammar)
    good = tokenizer.encode(["add", "x", "y"])
    no_eos = good.copy()
    no_eos[4:] = PAD
    pad_inside = good.copy()
    pad_inside[2] = PAD
    bos_inside = good.copy()
    bos_inside[3] = BOS
    empty = tokenizer.encode([])
    unfinished = tokenizer.encode(["add", "x"])  # well-framed, but not a whole program
    got = index.lookup(np.stack([good, no_eos, pad_inside, bos_inside, empty, unfinished]))
    assert got[0] >= 0 and universe.prefix(int(got[0])) == "add x y"
    assert (got[1:] == -1).all()


def test_check_agrees_with_evaluating_each_program(universe, tasks):
    rng = np.random.default_rng(0)
    ids = rng.integers(-1, len(universe), size=(len(tasks), 30))
    ids[:, 0] = tasks.targets  # each target is consistent with its own examples and passes
    consistent, passes = check(universe, tasks, ids)
    g = universe.grammar
    for i in range(len(tasks)):
        target = g.evaluate(universe.program(int(tasks.targets[i])))
        for j, pid in enumerate(ids[i]):
            out = None if pid < 0 else g.evaluate(universe.program(int(pid)))
            assert consistent[i, j] == (out is not None and np.array_equal(out[tasks.points[i]], tasks.outputs[i]))
            assert passes[i, j] == (out is not None and np.array_equal(out, target))
    assert consistent[:, 0].all() and passes[:, 0].all()


def test_sample_and_filter_answers_with_the_most_likely_consistent_sample(universe, model, tasks, index):
    n = 16
    rows = sample_and_filter(model, universe, tasks, [n], seed=3, index=index)
    drawn = synthesize(model, universe.grammar, tasks, "sample", n=n, seed=3)  # the same samples
    ids = index.lookup(drawn.tokens)
    consistent, passes = check(universe, tasks, ids)
    for i, row in enumerate(rows.itertuples()):
        assert row.solved == consistent[i].any()
        assert row.answer == (ids[i, np.flatnonzero(consistent[i])[np.argmax(drawn.logprob[i][consistent[i]])]]
                              if row.solved else -1)
        if row.solved:
            best = np.flatnonzero(consistent[i])[np.argmax(drawn.logprob[i][consistent[i]])]
            assert row.passed == passes[i, best]
        else:
            assert not row.passed
    assert rows.candidates.eq(n).all() and (rows.model_calls >= n).all()


def test_greedy_rows_are_the_evaluations_greedy_pass(universe, model, tasks, index):
    rows = greedy_rows(model, universe, tasks, index=index)
    written = synthesize(model, universe.grammar, tasks, "greedy")
    scores = score_candidates(universe, tasks, written)
    assert (rows.passed.to_numpy() == scores["passes"][:, 0]).all()
    assert (rows.solved.to_numpy() == scores["consistent"][:, 0]).all()
    assert (rows.answer.to_numpy() == index.lookup(written.tokens)[:, 0]).all()


@pytest.mark.parametrize("method", ["sample_and_filter", "best_first"])
def test_a_smaller_budget_is_exactly_a_prefix_of_the_larger_run(universe, model, tasks, index, method):
    run = {"sample_and_filter": lambda b: sample_and_filter(model, universe, tasks, b, index=index),
           "best_first": lambda b: best_first(model, universe, tasks, b, index=index)}[method]
    together = run([2, 8, 32])
    for b in (2, 8, 32):
        alone = run([b])
        pd.testing.assert_frame_equal(together[together.budget == b].reset_index(drop=True), alone)
    # costs grow with the budget, and so does what is solved
    by_budget = together.groupby("budget")[["solved", "candidates", "model_calls", "flops"]].sum()
    assert by_budget.diff().dropna().ge(0).all().all()


def test_best_first_respects_its_budget_exactly(universe, model, tasks, index):
    rows = best_first(model, universe, tasks, [1, 3, 10], index=index)
    assert (rows.model_calls <= rows.budget).all()
    failed = rows[~rows.solved]
    assert (failed.model_calls == failed.budget).all()  # a failure spends the whole budget (none is exhausted here)
    assert not rows[rows.budget == 1].solved.any()  # one expansion writes one symbol, never a program


def constrained_logprob(model, grammar, examples, tokens):
    """Log-probability of every framed sequence ``tokens`` (N, L) for one task under the
    grammar-constrained model, by teacher forcing: the brute-force reference."""
    constraint = GrammarConstraint(ProgramTokenizer.for_grammar(grammar), grammar)
    with torch.no_grad():
        memory = model.encode(examples[None]).expand(len(tokens), -1, -1)
        logits = model.decode(memory, tokens[:, :-1]).float()
    open_, written = constraint.start(len(tokens))
    total = torch.zeros(len(tokens), dtype=torch.float64)
    for pos in range(tokens.shape[1] - 1):
        nxt = tokens[:, pos + 1]
        live = (nxt != PAD) & (tokens[:, pos] != EOS)
        logp = torch.log_softmax(logits[:, pos].masked_fill(~constraint.allowed(open_, written), float("-inf")), -1)
        total += torch.where(live, logp.gather(1, nxt[:, None])[:, 0].double(), torch.zeros((), dtype=torch.float64))
        open_, written = constraint.update(open_, written, torch.where(live, nxt, torch.full_like(nxt, PAD)))
    return total.numpy()


@pytest.mark.slow(seconds=6)
def test_best_first_finds_the_most_likely_consistent_program_of_the_universe(universe, model, tasks, index):
    grammar = universe.grammar
    tokens = torch.from_numpy(ProgramTokenizer.for_grammar(grammar).encode_universe(universe, np.arange(len(universe))))
    examples = torch.from_numpy(ExampleTokenizer.for_grammar(grammar).encode_tasks(tasks))
    found = 0
    for i in range(len(tasks)):
        one = make_tasks(universe, tasks.targets[i : i + 1], 10, "test", 0)
        row = best_first(model, universe, one, [400], index=index).iloc[0]
        consistent, _ = check(universe, one, np.arange(len(universe))[None])
        logprob = constrained_logprob(model, grammar, examples[i], tokens)
        best = np.max(logprob[consistent[0]])
        if row.solved:
            found += 1
            answer = int(row.answer)
            assert consistent[0, answer]
            assert logprob[answer] == pytest.approx(best, abs=1e-4)
    assert found >= len(tasks) // 2


def test_enumerative_rows_match_the_search(universe, tasks):
    search = EnumerativeSearch(universe)
    rows = enumerative_rows(search, tasks, [10, 1000, len(universe)])
    full = search.search_batch(tasks.points, tasks.outputs)
    last = rows[rows.budget == len(universe)]
    assert (last.solved.to_numpy() == full.found).all()  # complete: a consistent program always exists here
    assert last.solved.all()
    small = rows[rows.budget == 10]
    assert (small.solved.to_numpy() == (full.programs_examined <= 10)).all()
    assert (small.candidates <= 10).all()


def test_accuracy_table_and_the_compute_the_scaling_line_needs():
    results = pd.DataFrame({
        "split": "iid", "method": "best_first", "budget": np.repeat([1, 4], 10),
        "program_id": np.tile(np.arange(10), 2), "semantic_class": np.tile(np.arange(10), 2), "seed": 0, "region": 0,
        "solved": True,
        "passed": np.r_[np.zeros(10, bool), np.arange(10) < 5], "candidates": 1, "model_calls": 1, "flops": 1.0,
    })
    table = accuracy_by_budget(results, n_boot=200, confidence=0.9, seed=0)
    assert table["pass@1"].tolist() == [0.0, 0.5]
    assert table.ci_low.iloc[1] < 0.5 < table.ci_high.iloc[1]
    fits = pd.DataFrame({"split": ["iid"], "a": [-1.0], "b": [0.1]})
    needed = training_compute_for(table, fits)
    assert needed["log10_training_compute_needed"].iloc[0] == pytest.approx(15.0)  # -1 + 0.1 x = 0.5
