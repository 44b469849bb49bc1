import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synthgen.grammar import parse_prefix
from synthgen.tokenizer import BOS, EOS, PAD, ExampleTokenizer, ProgramTokenizer


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_examples_round_trip(universe, data):
    g = universe.grammar
    tok = ExampleTokenizer.for_grammar(g)
    n = data.draw(st.integers(1, 6))
    inputs = np.array(data.draw(st.lists(st.lists(st.integers(g.grid_low, g.grid_high), min_size=2, max_size=2), min_size=n, max_size=n)))
    outputs = np.array(data.draw(st.lists(st.integers(-g.value_bound, g.value_bound), min_size=n, max_size=n)))
    tokens = tok.encode(inputs, outputs)
    assert tokens.shape == (n, tok.n_fields)
    assert tokens.min() >= 0 and tokens.max() < tok.vocab_size
    back_in, back_out = tok.decode(tokens)
    np.testing.assert_array_equal(back_in, inputs)
    np.testing.assert_array_equal(back_out, outputs)


def test_grid_inputs_are_the_grid_rows(universe):
    g = universe.grammar
    tok = ExampleTokenizer.for_grammar(g)
    np.testing.assert_array_equal(tok.grid_inputs(np.arange(g.n_points)), g.grid)


def test_each_field_uses_its_own_ids(universe):
    tok = ExampleTokenizer.for_grammar(universe.grammar)
    tokens = tok.encode(np.array([[-3, 3], [0, 0]]), np.array([-999999, 0]))
    edges = np.append(tok.field_offsets, tok.vocab_size)
    assert ((tokens >= edges[:-1]) & (tokens < edges[1:])).all()


def test_values_the_vocabulary_cannot_write_are_refused(universe):
    tok = ExampleTokenizer.for_grammar(universe.grammar)
    with pytest.raises(ValueError, match="digits"):
        tok.encode(np.array([[0, 0]]), np.array([10**tok.n_digits]))
    with pytest.raises(ValueError, match="grid"):
        tok.encode(np.array([[universe.grammar.grid_high + 1, 0]]), np.array([0]))


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_programs_round_trip(universe, data):
    tok = ProgramTokenizer.for_grammar(universe.grammar)
    pid = data.draw(st.integers(0, len(universe) - 1))
    row = tok.encode_universe(universe, [pid])[0]
    tokens = universe.tokens(pid)
    assert row[0] == BOS and row[len(tokens) + 1] == EOS and (row[len(tokens) + 2 :] == PAD).all()
    np.testing.assert_array_equal(row, tok.encode(tokens))
    assert tok.decode(row) == tokens
    assert parse_prefix(tok.decode(row), universe.grammar) == universe.program(pid)


def test_decode_stops_at_eos_and_keeps_stray_specials_unparseable(universe):
    tok = ProgramTokenizer.for_grammar(universe.grammar)
    x = tok.encode(["x"])[1]
    assert tok.decode([BOS, x, EOS, x]) == ["x"]
    assert not parse_prefix(tok.decode([BOS, x, PAD, x]), universe.grammar)
    with pytest.raises(ValueError):
        tok.encode(["nope"])


def test_examples_encode_alike_on_torch_tensors(universe):
    torch = pytest.importorskip("torch")
    g = universe.grammar
    tok = ExampleTokenizer.for_grammar(g)
    rng = np.random.default_rng(0)
    points = rng.integers(0, g.n_points, (6, 10))
    outputs = rng.integers(-g.value_bound, g.value_bound + 1, (6, 10))
    host = tok.encode(tok.grid_inputs(points), outputs)
    device = tok.encode(tok.grid_inputs(torch.from_numpy(points)), torch.from_numpy(outputs))
    assert device.dtype == torch.int64
    np.testing.assert_array_equal(device.numpy(), host)


def test_a_batch_of_programs_encodes_as_each_alone(universe):
    """encode_universe walks every program of a batch at once; each row must still be its own."""
    tok = ProgramTokenizer.for_grammar(universe.grammar)
    ids = np.concatenate([np.arange(0, len(universe), 37), [len(universe) - 1, 0, 0]])  # every size, repeats
    rows = tok.encode_universe(universe, ids)
    for row, pid in zip(rows, ids):
        np.testing.assert_array_equal(row, tok.encode(universe.tokens(pid)))
    assert tok.encode_universe(universe, []).shape == (0, tok.max_length)
