"""The DSL: printers, parsers and semantics against plain reference code."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from synthgen.grammar import ParseError, Program, parse_infix, parse_prefix
from tests.conftest import make_grammar

G = make_grammar(max_size=4)


# --- a plain-Python reference interpreter, written from the spec, not from the code ---


def reference_value(p: Program, x: int, y: int, bound: int):
    """Value of ``p`` at one point with Python ints; None once any node leaves the bound."""
    if p.op == "x":
        v = x
    elif p.op == "y":
        v = y
    elif not p.children:
        v = int(p.op)
    else:
        args = [reference_value(c, x, y, bound) for c in p.children]
        if any(a is None for a in args):
            return None
        a = args[0]
        b = args[1] if len(args) > 1 else None
        v = {
            "neg": lambda: -a,
            "abs": lambda: abs(a),
            "add": lambda: a + b,
            "sub": lambda: a - b,
            "mul": lambda: a * b,
            "div": lambda: 0 if b == 0 else a // b,
            "mod": lambda: a if b == 0 else a % b,
            "min": lambda: min(a, b),
            "max": lambda: max(a, b),
        }[p.op]()
    return v if abs(v) <= bound else None


def programs(grammar):
    leaves = st.sampled_from(grammar.leaves).map(Program)

    def extend(inner):
        unary = st.tuples(st.sampled_from(grammar.unary), inner).map(lambda t: Program(t[0], (t[1],)))
        binary = st.tuples(st.sampled_from(grammar.binary), inner, inner).map(lambda t: Program(t[0], (t[1], t[2])))
        return unary | binary

    return st.recursive(leaves, extend, max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(programs(G), st.sampled_from([10, 50, 10**6]))
def test_interpreter_matches_reference(program, bound):
    g = make_grammar(value_bound=bound)
    got = g.evaluate(program)
    want = [reference_value(program, int(x), int(y), bound) for x, y in g.grid]
    if any(w is None for w in want):
        assert got is None
    else:
        assert got is not None and got.tolist() == want


def test_division_and_modulo_by_zero_are_total():
    g = make_grammar()
    inputs = np.array([[7, 0], [-7, 0], [-7, 2], [7, -2]])
    assert g.evaluate(parse_prefix("div x y", g), inputs).tolist() == [0, 0, -4, -4]
    assert g.evaluate(parse_prefix("mod x y", g), inputs).tolist() == [7, -7, 1, -1]


def test_out_of_bound_is_flagged_not_wrapped():
    g = make_grammar(value_bound=100)
    assert g.evaluate(parse_prefix("mul x x", g)) is not None  # 9 at most on -3..3
    p = parse_prefix("mul mul mul x x mul x x x", g)  # 3**5 = 243 > 100
    assert g.evaluate(p) is None
    # an intermediate value out of bound taints the program even if the result is small
    assert g.evaluate(parse_prefix("sub mul mul mul x x mul x x x mul mul mul x x mul x x x", g)) is None


def test_every_program_round_trips_through_both_printers():
    for size in range(1, G.max_size + 1):
        for p in G.all_programs(size):
            assert parse_prefix(p.prefix(), G) == p
            assert parse_prefix(p.tokens(), G) == p
            assert parse_infix(p.infix(), G) == p, p.infix()


def test_infix_examples():
    g = make_grammar()
    cases = {
        "mul add x 2 y": "(x + 2) * y",
        "sub x sub y 1": "x - (y - 1)",
        "sub sub x y 1": "x - y - 1",
        "neg neg x": "-(-x)",
        "neg 1": "-(1)",
        "div x mod y 2": "x // (y % 2)",
        "max abs x min y 3": "max(abs(x), min(y, 3))",
    }
    for prefix, infix in cases.items():
        assert parse_prefix(prefix, g).infix() == infix


def test_negative_constants_print_and_parse_unambiguously():
    g = make_grammar(constants=(-1, 1))
    const, negated = Program("-1"), Program("neg", (Program("1"),))
    assert const.infix() != negated.infix()
    assert parse_infix(const.infix(), g) == const
    assert parse_infix(negated.infix(), g) == negated
    assert parse_prefix("add -1 x", g) == Program("add", (const, Program("x")))


def test_parse_errors_are_structured():
    g = make_grammar()
    assert parse_prefix("", g).kind == "empty"
    err = parse_prefix("add x z", g)
    assert isinstance(err, ParseError) and err.kind == "unknown_token" and err.position == 2 and err.token == "z"
    assert parse_prefix("add x", g).kind == "incomplete"
    err = parse_prefix("x y", g)
    assert err.kind == "trailing" and err.position == 1
    assert parse_prefix(None, g).kind == "syntax"  # type: ignore[arg-type]
    assert parse_prefix(["add", 1, "x"], g).kind == "syntax"  # type: ignore[list-item]
    assert not parse_prefix("add x", g)  # errors are falsy
    assert parse_infix("(x + ", g).kind == "incomplete"
    assert parse_infix("x $ y", g).kind == "syntax"
    assert parse_infix("pow(x, 2)", g).kind == "unknown_token"
    assert parse_infix("min(x)", g).kind == "syntax"


TOKENS = list(make_grammar().symbols) + ["z", "(", ")", "-", "", "4", "add(", "💥"]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=25))
def test_prefix_parser_fuzz(tokens):
    g = make_grammar()
    result = parse_prefix(tokens, g)
    assert isinstance(result, (Program, ParseError))
    if isinstance(result, Program):
        assert result.tokens() == tokens


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="xy123 ()+-*/%,absmingdlu", max_size=40))
def test_infix_parser_fuzz(text):
    g = make_grammar()
    result = parse_infix(text, g)
    assert isinstance(result, (Program, ParseError))
    if isinstance(result, Program):
        assert parse_infix(result.infix(), g) == result


DEEP = 10_000  # levels: far beyond Python's recursion limit (1,000)


def _chain(ops, leaf: Program) -> Program:
    p = leaf
    for op in reversed(ops):
        p = Program(op, (p,)) if op in ("neg", "abs") else Program(op, (Program("x"), p))
    return p


def test_a_program_ten_thousand_levels_deep_parses_prints_and_evaluates():
    g = make_grammar()
    target = parse_prefix("add x 2", g)
    deep = _chain(["neg"] * DEEP, target)  # an even number of negations: the target's function
    assert deep.depth == DEEP + 2 and deep.size == DEEP + 3
    assert parse_prefix("neg " * DEEP + "add x 2", g) == deep
    assert parse_prefix(deep.tokens(), g) == deep
    assert deep.infix() == "-(" * DEEP + "x + 2" + ")" * DEEP
    assert parse_infix(deep.infix(), g) == deep
    assert np.array_equal(g.evaluate(deep), g.evaluate(target))
    assert g.evaluate(_chain(["neg"] * (DEEP - 1), target)).tolist() == (-g.evaluate(target)).tolist()
    # equality, hashing and repr walk the tree too
    twin = parse_prefix(deep.prefix(), g)
    assert twin is not deep and twin == deep and hash(twin) == hash(deep) and len({twin, deep}) == 1
    assert twin != _chain(["neg"] * DEEP, parse_prefix("add x 3", g))
    assert repr(deep).count("Program(") == DEEP + 3
    assert sum(1 for _ in deep.nodes()) == DEEP + 3


def test_deep_binary_nesting_on_either_side():
    g = make_grammar()
    right = _chain(["sub"] * DEEP, Program("y"))  # x - (x - (x - ... y))
    assert parse_infix(right.infix(), g) == right and parse_prefix(right.prefix(), g) == right
    left = Program("y")
    for _ in range(DEEP):  # ((y - x) - x) - ...: needs no parentheses at all
        left = Program("sub", (left, Program("x")))
    assert "(" not in left.infix()
    assert parse_infix(left.infix(), g) == left
    assert g.evaluate(left).tolist() == (g.grid[:, 1] - DEEP * g.grid[:, 0]).tolist()
    mixed = _chain(["abs", "min", "neg", "mul"] * (DEEP // 4), Program("1"))
    assert parse_infix(mixed.infix(), g) == mixed and parse_prefix(mixed.prefix(), g) == mixed
    assert isinstance(parse_infix("(" * DEEP + "x" + ")" * DEEP, g), Program)
    assert parse_infix("(" * DEEP + "x" + ")" * (DEEP - 1), g).kind == "incomplete"


def test_a_pickled_program_carries_no_cached_hash():
    import pickle

    p = parse_prefix("add x mul y 2", G)
    hash(p)
    copy = pickle.loads(pickle.dumps(p))
    assert copy == p and "_hash" not in copy.__dict__ and hash(copy) == hash(p)


def test_an_out_of_bound_node_deep_down_still_taints_the_program():
    g = make_grammar(value_bound=100)
    p = _chain(["neg"] * DEEP, parse_prefix("mul mul mul x x mul x x x", g))  # 3**5 = 243 > 100
    assert g.evaluate(p) is None


@settings(max_examples=200, deadline=None)
@given(programs(G), st.integers(min_value=1, max_value=8))
def test_both_parsers_share_one_depth_limit(program, limit):
    for parsed in (parse_prefix(program.prefix(), G, max_depth=limit), parse_infix(program.infix(), G, max_depth=limit)):
        if program.depth > limit:
            assert isinstance(parsed, ParseError) and parsed.kind == "too_deep"
        else:
            assert parsed == program
    assert parse_prefix(program.prefix(), G, max_depth=None) == parse_infix(program.infix(), G, max_depth=None) == program


def test_the_default_depth_limit_is_the_module_setting():
    import inspect

    from synthgen import grammar

    for parser in (parse_prefix, parse_infix):
        assert inspect.signature(parser).parameters["max_depth"].default is grammar.MAX_PARSE_DEPTH


def test_unicode_digits_are_a_parse_error_not_an_exception():
    g = make_grammar(constants=(-2, 2))
    for text in ("- ²", "-²", "x + -²", "- ١", "neg(²)"):
        assert isinstance(parse_infix(text, g), ParseError), text


def test_no_eval_or_exec_in_the_package():
    import re
    from tests.conftest import ROOT

    for path in (ROOT / "synthgen").rglob("*.py"):
        for line in path.read_text().splitlines():
            code = line.split("#")[0]
            assert not re.search(r"(^|[^\w.])(eval|exec)\(", code), f"{path.name}: {line.strip()}"
