import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from synthgen.decoding import GrammarConstraint, beam_search, synthesize
from synthgen.grammar import ParseError, Program, parse_prefix
from synthgen.model import ModelConfig, Synthesizer
from synthgen.params import ModelParams
from synthgen.tasks import make_tasks
from synthgen.tokenizer import EOS, ExampleTokenizer, ProgramTokenizer


@pytest.fixture(scope="module")
def model(universe):
    """An untrained model: its output is close to arbitrary, the hardest case for parsing."""
    torch.manual_seed(0)
    cfg = ModelConfig.from_params(ModelParams(encoder_layers=1, decoder_layers=1, width=16, heads=2, dropout=0.0), universe.grammar)
    return Synthesizer(cfg).eval()


@pytest.fixture(scope="module")
def tasks(universe, valid_ids):
    return make_tasks(universe, valid_ids[::1500], 5, "test", 0)


@pytest.mark.parametrize("method, kw", [("greedy", {}), ("sample", {"n": 6}), ("beam", {"beam_size": 4})])
def test_constrained_decoding_always_writes_programs_within_max_size(universe, model, tasks, method, kw):
    out = synthesize(model, universe.grammar, tasks, method, constrained=True, **kw)
    assert len(out.programs) == len(tasks)
    for row in out.programs:
        for p in row:
            assert isinstance(p, Program) and p.size <= universe.grammar.max_size


@pytest.mark.parametrize("method, kw", [("greedy", {}), ("sample", {"n": 6, "temperature": 3.0}), ("beam", {"beam_size": 4})])
def test_unconstrained_output_is_parsed_never_trusted(universe, model, tasks, method, kw):
    out = synthesize(model, universe.grammar, tasks, method, constrained=False, **kw)
    for row, toks in zip(out.programs, out.tokens):
        for p, t in zip(row, toks):
            assert isinstance(p, (Program, ParseError))
            assert p == parse_prefix(ProgramTokenizer.for_grammar(universe.grammar).decode(t), universe.grammar)


def test_beams_come_best_first_and_beam_one_is_greedy(universe, model, tasks):
    examples = torch.from_numpy(ExampleTokenizer.for_grammar(universe.grammar).encode_tasks(tasks))
    _, scores = beam_search(model, universe.grammar, examples, 5, constrained=True)
    assert (scores[:, :-1] >= scores[:, 1:]).all()
    greedy = synthesize(model, universe.grammar, tasks, "greedy")
    beam1 = synthesize(model, universe.grammar, tasks, "beam", beam_size=1)
    np.testing.assert_array_equal(greedy.tokens, beam1.tokens)
    np.testing.assert_allclose(greedy.logprob, beam1.logprob, rtol=1e-5)


def test_samples_depend_on_the_task_and_seed_not_on_the_batch(universe, model, tasks):
    both = synthesize(model, universe.grammar, tasks, "sample", n=4, seed=7, batch_size=3)
    one = synthesize(model, universe.grammar, tasks, "sample", n=4, seed=7, batch_size=100)
    np.testing.assert_array_equal(both.tokens, one.tokens)
    other = synthesize(model, universe.grammar, tasks, "sample", n=4, seed=8)
    assert (other.tokens != both.tokens).any()


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_any_walk_through_allowed_tokens_is_a_program(universe, data):
    g = universe.grammar
    tok = ProgramTokenizer.for_grammar(g)
    constraint = GrammarConstraint(tok, g)
    state = constraint.start(1)
    seq = []
    while True:
        allowed = np.flatnonzero(constraint.allowed(*state)[0].numpy())
        assert len(allowed), "the constraint left no way out"
        t = int(data.draw(st.sampled_from(allowed.tolist())))
        if t == EOS:
            break
        seq.append(t)
        state = constraint.update(*state, torch.tensor([t]))
    program = parse_prefix([tok.names[t] for t in seq], g)
    assert isinstance(program, Program) and program.size <= g.max_size
