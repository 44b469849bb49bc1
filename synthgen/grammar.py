"""The arithmetic DSL: programs as expression trees, their semantics, printers and parser.

::

    E -> x | y | c            (variables, and constants c from a configured set)
       | u(E)                 (unary operators)
       | b(E, E)              (binary operators)

Semantics are total over the integers: ``div`` is floor division and ``mod`` is
Python-style modulo, with ``div(a, 0) = 0`` and ``mod(a, 0) = a``.  Values are int64; a
program whose value at any node on any grid point leaves ``[-value_bound, value_bound]``
is *out of bound*: it is flagged, never silently wrapped.

Text becomes a program only through :func:`parse_prefix` (and :func:`parse_infix`),
which return a :class:`Program` or a :class:`ParseError` and never raise; nothing here
evaluates text as Python.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, fields
from functools import cached_property
from typing import Callable, Iterable, Sequence

import numpy as np

from synthgen.params import BINARY_OPERATORS, UNARY_OPERATORS, GrammarParams

# --- operator semantics (vectorised over numpy int64 arrays) --------------------------


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    zero = b == 0
    return np.where(zero, 0, np.floor_divide(a, np.where(zero, 1, b)))


def _mod(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    zero = b == 0
    return np.where(zero, a, np.remainder(a, np.where(zero, 1, b)))


UNARY_SEMANTICS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "neg": np.negative,
    "abs": np.abs,
}
BINARY_SEMANTICS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "div": _div,
    "mod": _mod,
    "min": np.minimum,
    "max": np.maximum,
}
assert set(UNARY_SEMANTICS) == set(UNARY_OPERATORS) and set(BINARY_SEMANTICS) == set(BINARY_OPERATORS)

# Infix: (symbol, precedence) for operators written between their operands; the rest are
# written as calls, e.g. ``min(x, 2)``.  Higher precedence binds tighter.
_INFIX_BINARY = {"add": ("+", 1), "sub": ("-", 1), "mul": ("*", 2), "div": ("//", 2), "mod": ("%", 2)}
_UNARY_PRECEDENCE = 3
_ATOM_PRECEDENCE = 4

# --- programs -----------------------------------------------------------------------


@dataclass(frozen=True)
class Program:
    """An expression tree.  ``op`` is the node's token: an operator name, a variable name
    or a constant written as a decimal integer."""

    op: str
    children: tuple["Program", ...] = ()

    @cached_property
    def size(self) -> int:
        return 1 + sum(c.size for c in self.children)

    @cached_property
    def depth(self) -> int:
        return 1 + max((c.depth for c in self.children), default=0)

    def tokens(self) -> list[str]:
        """Prefix (Polish) tokens, the canonical serialisation: ``mul add x 2 y``."""
        out: list[str] = []
        stack = [self]
        while stack:
            node = stack.pop()
            out.append(node.op)
            stack.extend(reversed(node.children))
        return out

    def prefix(self) -> str:
        return " ".join(self.tokens())

    def infix(self) -> str:
        """Readable infix form: ``(x + 2) * y``."""
        return _infix(self)[0]

    def __str__(self) -> str:
        return self.prefix()

    def nodes(self) -> Iterable["Program"]:
        """All subtrees, in prefix order."""
        yield self
        for c in self.children:
            yield from c.nodes()


def _infix(p: Program) -> tuple[str, int]:
    if not p.children:
        text = p.op
        return (f"({text})" if text.startswith("-") else text), _ATOM_PRECEDENCE
    if len(p.children) == 1:
        inner, prec = _infix(p.children[0])
        if p.op == "neg":
            child = p.children[0]
            literal = not child.children and child.op.lstrip("-").isdigit()
            bare = prec >= _ATOM_PRECEDENCE and not literal  # "-(1)" keeps neg(1) apart from a constant -1
            return (f"-{inner}" if bare else f"-({inner})"), _UNARY_PRECEDENCE
        return f"{p.op}({inner})", _ATOM_PRECEDENCE
    (left, lp), (right, rp) = (_infix(c) for c in p.children)
    if p.op in _INFIX_BINARY:
        sym, prec = _INFIX_BINARY[p.op]
        # Left-associative: the left operand may share the precedence, the right may not.
        left = left if lp >= prec else f"({left})"
        right = right if rp > prec else f"({right})"
        return f"{left} {sym} {right}", prec
    return f"{p.op}({left}, {right})", _ATOM_PRECEDENCE


# --- the grammar --------------------------------------------------------------------


@dataclass(frozen=True)
class Grammar:
    """A configured DSL: its symbols, arities, input grid and value bound."""

    variables: tuple[str, ...]
    constants: tuple[int, ...]
    unary: tuple[str, ...]
    binary: tuple[str, ...]
    max_size: int
    grid_low: int
    grid_high: int
    value_bound: int
    _arity: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        arity = {v: 0 for v in self.variables}
        arity.update({str(c): 0 for c in self.constants})
        arity.update({u: 1 for u in self.unary})
        arity.update({b: 2 for b in self.binary})
        object.__setattr__(self, "_arity", arity)

    @classmethod
    def from_params(cls, p: GrammarParams) -> "Grammar":
        return cls(
            variables=tuple(p.variables),
            constants=tuple(p.constants),
            unary=tuple(p.unary),
            binary=tuple(p.binary),
            max_size=p.max_size,
            grid_low=p.grid.low,
            grid_high=p.grid.high,
            value_bound=p.value_bound,
        )

    def to_dict(self) -> dict:
        """The grammar's fields, JSON-ready: how universe and space files record it."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.init}

    @classmethod
    def from_dict(cls, data: dict) -> "Grammar":
        """Inverse of :meth:`to_dict` (JSON lists back to tuples)."""
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})

    # Symbols in their canonical order: leaves (variables, then constants), unary, binary.
    # A symbol's index in this tuple is its operator code in the universe table.
    @property
    def leaves(self) -> tuple[str, ...]:
        return self.variables + tuple(str(c) for c in self.constants)

    @property
    def symbols(self) -> tuple[str, ...]:
        return self.leaves + self.unary + self.binary

    def arity(self, symbol: str) -> int | None:
        return self._arity.get(symbol)

    # --- the input grid -------------------------------------------------------------

    @cached_property
    def grid(self) -> np.ndarray:
        """Grid points, shape ``(n_points, n_variables)``; row-major over variables."""
        axis = np.arange(self.grid_low, self.grid_high + 1, dtype=np.int64)
        mesh = np.meshgrid(*([axis] * len(self.variables)), indexing="ij")
        return np.stack([m.ravel() for m in mesh], axis=1)

    @property
    def n_points(self) -> int:
        return int(self.grid.shape[0])

    def leaf_values(self, symbol: str) -> np.ndarray:
        """Values of a leaf on the whole grid."""
        if symbol in self.variables:
            return self.grid[:, self.variables.index(symbol)].copy()
        return np.full(self.n_points, int(symbol), dtype=np.int64)

    # --- semantics ------------------------------------------------------------------

    def in_bound(self, values: np.ndarray) -> np.ndarray:
        """Per row of ``values`` (last axis = grid points): every value within the bound."""
        return (np.abs(values) <= self.value_bound).all(axis=-1)

    def evaluate(self, program: Program, inputs: np.ndarray | None = None) -> np.ndarray | None:
        """Outputs of ``program`` on ``inputs`` (default: the grid), by plain recursion over
        the tree; ``None`` when any node leaves the value bound.

        This is the per-tree evaluator: simple and slow.  The universe is classified by
        :mod:`synthgen.enumeration` instead, which evaluates each distinct
        (operator, child class, child class) once."""
        inputs = self.grid if inputs is None else np.asarray(inputs, dtype=np.int64)
        return self._evaluate(program, inputs)

    def _evaluate(self, p: Program, inputs: np.ndarray) -> np.ndarray | None:
        if not p.children:
            if p.op in self.variables:
                out = inputs[:, self.variables.index(p.op)].astype(np.int64)
            else:
                out = np.full(inputs.shape[0], int(p.op), dtype=np.int64)
        else:
            args = [self._evaluate(c, inputs) for c in p.children]
            if any(a is None for a in args):
                return None
            fn = UNARY_SEMANTICS[p.op] if len(args) == 1 else BINARY_SEMANTICS[p.op]
            out = fn(*args)
        return out if bool(np.all(np.abs(out) <= self.value_bound)) else None

    # --- text -----------------------------------------------------------------------

    def parse(self, text: str | Sequence[str]) -> "Program | ParseError":
        return parse_prefix(text, self)

    def all_programs(self, size: int) -> Iterable[Program]:
        """Every program of exactly ``size`` nodes, in the universe's canonical order
        (by root symbol, then left-child size, then children in order).  Slow: for
        tests and small grammars."""
        return _all_programs(self, size, {})


def _all_programs(g: Grammar, size: int, memo: dict) -> list[Program]:
    if size in memo:
        return memo[size]
    out: list[Program] = []
    if size == 1:
        out = [Program(s) for s in g.leaves]
    else:
        for u in g.unary:
            out.extend(Program(u, (c,)) for c in _all_programs(g, size - 1, memo))
        for b in g.binary:
            for left_size in range(1, size - 1):
                lefts = _all_programs(g, left_size, memo)
                rights = _all_programs(g, size - 1 - left_size, memo)
                out.extend(Program(b, (l, r)) for l, r in itertools.product(lefts, rights))
    memo[size] = out
    return out


def analytic_counts(g: Grammar, max_size: int | None = None) -> list[int]:
    """Number of syntactically distinct programs of each size 1..max_size, from the
    grammar's recurrence  N(1) = L,  N(s) = U N(s-1) + B sum_{i+j=s-1} N(i) N(j)."""
    n = max_size or g.max_size
    L, U, B = len(g.leaves), len(g.unary), len(g.binary)
    counts = [0] * (n + 1)
    for s in range(1, n + 1):
        counts[s] = (L if s == 1 else 0) + U * counts[s - 1] + B * sum(
            counts[i] * counts[s - 1 - i] for i in range(1, s - 1)
        )
    return counts[1:]


# --- parsing ------------------------------------------------------------------------


@dataclass(frozen=True)
class ParseError:
    """Why a token sequence is not a program.  ``kind`` is one of ``empty``,
    ``unknown_token``, ``incomplete`` (tokens ran out), ``trailing`` (tokens after a
    complete program) or ``syntax`` (infix only); ``position`` is a token index."""

    kind: str
    message: str
    position: int
    token: str | None = None

    def __bool__(self) -> bool:  # so that ``if parse(...)`` reads naturally
        return False


def _tokenise(text: str | Sequence[str]) -> list[str] | None:
    if isinstance(text, str):
        return text.split()
    try:
        toks = list(text)
    except TypeError:
        return None
    return toks if all(isinstance(t, str) for t in toks) else None


def parse_prefix(text: str | Sequence[str], grammar: Grammar) -> Program | ParseError:
    """Parse prefix tokens (a string or a sequence of strings) into a program.

    Never raises on any input: malformed input gives a :class:`ParseError`."""
    tokens = _tokenise(text)
    if tokens is None:
        return ParseError("syntax", "input must be a string or a sequence of strings", 0)
    if not tokens:
        return ParseError("empty", "no tokens", 0)
    for i, tok in enumerate(tokens):
        if grammar.arity(tok) is None:
            return ParseError("unknown_token", f"unknown token {tok!r} at position {i}", i, tok)
    # Iterative parse with an explicit stack of (symbol, children so far), so that deep
    # inputs cannot hit Python's recursion limit.
    stack: list[tuple[str, list[Program]]] = []
    result: Program | None = None
    for i, tok in enumerate(tokens):
        if result is not None:
            return ParseError("trailing", f"tokens after a complete program, from position {i}", i, tok)
        arity = grammar.arity(tok)
        node: Program | None = None
        if arity == 0:
            node = Program(tok)
        else:
            stack.append((tok, []))
        while node is not None:
            if not stack:
                result = node
                break
            sym, kids = stack[-1]
            kids.append(node)
            if len(kids) == grammar.arity(sym):
                stack.pop()
                node = Program(sym, tuple(kids))
            else:
                node = None
    if result is None:
        need = sum(grammar.arity(s) - len(k) for s, k in stack)  # type: ignore[operator]
        return ParseError("incomplete", f"program is incomplete: {need} more operand(s) expected", len(tokens))
    return result


def parse_infix(text: str, grammar: Grammar) -> Program | ParseError:
    """Parse the readable infix form printed by :meth:`Program.infix` (also accepts
    redundant parentheses and spaces).  Never raises."""
    if not isinstance(text, str):
        return ParseError("syntax", "input must be a string", 0)
    return _InfixParser(text, grammar).run()


class _InfixParser:
    """Recursive descent over: sum := term (('+'|'-') term)*;
    term := unary (('*'|'//'|'%') unary)*; unary := '-' unary | atom;
    atom := int | var | '(' sum ')' | name '(' args ')'."""

    _SYMBOLS = {"+": "add", "-": "sub", "*": "mul", "//": "div", "%": "mod"}

    def __init__(self, text: str, grammar: Grammar) -> None:
        self.g = grammar
        self.toks = self._lex(text)
        self.i = 0

    @staticmethod
    def _lex(text: str) -> list[str] | ParseError:
        toks, i = [], 0
        while i < len(text):
            ch = text[i]
            if ch.isspace():
                i += 1
            elif text.startswith("//", i):
                toks.append("//")
                i += 2
            elif ch in "+-*%(),":
                toks.append(ch)
                i += 1
            elif ch.isalnum() or ch == "_":
                j = i
                while j < len(text) and (text[j].isalnum() or text[j] == "_"):
                    j += 1
                toks.append(text[i:j])
                i = j
            else:
                return ParseError("syntax", f"unexpected character {ch!r}", len(toks), ch)
        return toks

    def run(self) -> Program | ParseError:
        if isinstance(self.toks, ParseError):
            return self.toks
        if not self.toks:
            return ParseError("empty", "no tokens", 0)
        try:
            p = self._sum(0)
        except _Fail as f:
            return f.error
        except RecursionError:
            return ParseError("syntax", "expression nested too deeply", self.i)
        if self.i != len(self.toks):
            return ParseError("trailing", "tokens after a complete expression", self.i, self.toks[self.i])
        return p

    def _peek(self) -> str | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def _expect(self, tok: str) -> None:
        if self._peek() != tok:
            got = self._peek()
            kind = "incomplete" if got is None else "syntax"
            raise _Fail(ParseError(kind, f"expected {tok!r}", self.i, got))
        self.i += 1

    def _binary(self, name: str, left: Program, right: Program) -> Program:
        if name not in self.g.binary:
            raise _Fail(ParseError("unknown_token", f"operator {name!r} is not in this grammar", self.i, name))
        return Program(name, (left, right))

    def _sum(self, depth: int) -> Program:
        left = self._term(depth)
        while self._peek() in ("+", "-"):
            name = self._SYMBOLS[self.toks[self.i]]
            self.i += 1
            left = self._binary(name, left, self._term(depth))
        return left

    def _term(self, depth: int) -> Program:
        left = self._unary(depth)
        while self._peek() in ("*", "//", "%"):
            name = self._SYMBOLS[self.toks[self.i]]
            self.i += 1
            left = self._binary(name, left, self._unary(depth))
        return left

    def _unary(self, depth: int) -> Program:
        if self._peek() == "-":
            self.i += 1
            nxt = self._peek()
            if nxt is not None and nxt.isdigit() and str(-int(nxt)) in self.g.leaves:
                # "-3" is a negative constant when the grammar has one
                self.i += 1
                return Program(str(-int(nxt)))
            if "neg" not in self.g.unary:
                raise _Fail(ParseError("unknown_token", "operator 'neg' is not in this grammar", self.i, "-"))
            return Program("neg", (self._unary(depth + 1),))
        return self._atom(depth)

    def _atom(self, depth: int) -> Program:
        tok = self._peek()
        if tok is None:
            raise _Fail(ParseError("incomplete", "expression ends too early", self.i))
        self.i += 1
        if tok == "(":
            inner = self._sum(depth + 1)
            self._expect(")")
            return inner
        if self._peek() == "(" and self.g.arity(tok) in (1, 2):
            self.i += 1
            args = [self._sum(depth + 1)]
            while self._peek() == ",":
                self.i += 1
                args.append(self._sum(depth + 1))
            self._expect(")")
            if len(args) != self.g.arity(tok):
                raise _Fail(ParseError("syntax", f"{tok} takes {self.g.arity(tok)} argument(s)", self.i, tok))
            return Program(tok, tuple(args))
        if self.g.arity(tok) == 0:
            return Program(tok)
        raise _Fail(ParseError("unknown_token", f"unknown token {tok!r}", self.i - 1, tok))


class _Fail(Exception):
    def __init__(self, error: ParseError) -> None:
        self.error = error
