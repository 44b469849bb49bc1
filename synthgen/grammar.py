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

Nothing here recurses over a tree: parsers, printers, the interpreter, equality and
hashing walk programs with explicit stacks, so a model's ``neg neg ... neg x`` ten
thousand levels deep is parsed, printed and scored like any other program.  The one
depth limit both parsers share is :data:`MAX_PARSE_DEPTH`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, fields
from functools import cached_property
from typing import Callable, Iterable, Sequence

import numpy as np

from synthgen.params import BINARY_OPERATORS, UNARY_OPERATORS, GrammarParams, program_counts

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

# The deepest program (nodes on its longest root-to-leaf path) that either parser accepts;
# None: any depth.  The parsers are iterative, so depth costs memory linear in the input
# and never meets Python's recursion limit; a limit is a policy, not a guard, and the
# study has none: a deep prediction that computes the target passes.
MAX_PARSE_DEPTH: int | None = None

# --- programs -----------------------------------------------------------------------


@dataclass(frozen=True, eq=False)  # equality and hash below: the generated ones recurse
class Program:
    """An expression tree.  ``op`` is the node's token: an operator name, a variable name
    or a constant written as a decimal integer."""

    op: str
    children: tuple["Program", ...] = ()

    @cached_property
    def size(self) -> int:
        return _fold(self, lambda p: 1, lambda p, kids: 1 + sum(kids), cached="size")

    @cached_property
    def depth(self) -> int:
        return _fold(self, lambda p: 1, lambda p, kids: 1 + max(kids), cached="depth")

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
        return _emit(self, _infix_pieces)

    def __str__(self) -> str:
        return self.prefix()

    def __repr__(self) -> str:  # the dataclass's text, written without recursion
        return _emit(self, _repr_pieces)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Program):
            return NotImplemented
        stack = [(self, other)]
        while stack:
            a, b = stack.pop()
            if a is b:
                continue
            if a.op != b.op or len(a.children) != len(b.children):
                return False
            stack.extend(zip(a.children, b.children))
        return True

    def __hash__(self) -> int:
        return self._hash

    @cached_property
    def _hash(self) -> int:
        return _fold(self, lambda p: hash((p.op, ())), lambda p, kids: hash((p.op, tuple(kids))), cached="_hash")

    def __getstate__(self) -> dict:
        # the cached hash depends on this process's string-hash seed: a pickle must not carry it
        return {k: v for k, v in self.__dict__.items() if k != "_hash"}

    def nodes(self) -> Iterable["Program"]:
        """All subtrees, in prefix order."""
        stack = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))


def _fold(root: Program, leaf: Callable, combine: Callable, *, cached: str | None = None, release: bool = False):
    """``combine(node, [values of its children])`` bottom-up over the tree, ``leaf(node)``
    at leaves, with an explicit stack instead of recursion.

    ``cached``: a cached property whose value, where a subtree already has it, is used
    instead of walking that subtree.  ``release``: drop a child's value once its parent
    has one, so that only a frontier of values is alive (the interpreter's arrays); a
    subtree shared by two parents is then computed twice, as plain recursion would."""
    values: dict[int, object] = {}  # by id(node): every node is alive while the root is
    stack = [root]
    while stack:
        node = stack[-1]
        key = id(node)
        if key in values:
            stack.pop()
            continue
        if cached is not None and cached in node.__dict__:
            values[key] = node.__dict__[cached]
            stack.pop()
            continue
        pending = [c for c in node.children if id(c) not in values]
        if pending:
            stack.extend(pending)
            continue
        stack.pop()
        if not node.children:
            values[key] = leaf(node)
        else:
            values[key] = combine(node, [values[id(c)] for c in node.children])
            if release:
                for c in node.children:
                    values.pop(id(c), None)
    return values[id(root)]


def _emit(root: Program, pieces: Callable[[Program], list]) -> str:
    """A tree's text, from ``pieces(node)``: strings and child nodes, in writing order."""
    out: list[str] = []
    stack: list = [root]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
        else:
            stack.extend(reversed(pieces(item)))
    return "".join(out)


def _infix_precedence(p: Program) -> int:
    """How tightly the infix text of ``p`` binds, from its root alone."""
    if len(p.children) == 2 and p.op in _INFIX_BINARY:
        return _INFIX_BINARY[p.op][1]
    if len(p.children) == 1 and p.op == "neg":
        return _UNARY_PRECEDENCE
    return _ATOM_PRECEDENCE  # leaves and calls such as min(x, 2)


def _infix_pieces(p: Program) -> list:
    if not p.children:
        return [f"({p.op})" if p.op.startswith("-") else p.op]
    if len(p.children) == 1:
        child = p.children[0]
        if p.op == "neg":
            literal = not child.children and child.op.lstrip("-").isdigit()
            bare = _infix_precedence(child) >= _ATOM_PRECEDENCE and not literal  # "-(1)" keeps neg(1) apart from a constant -1
            return ["-", child] if bare else ["-(", child, ")"]
        return [f"{p.op}(", child, ")"]
    left, right = p.children
    if p.op in _INFIX_BINARY:
        sym, prec = _INFIX_BINARY[p.op]
        # Left-associative: the left operand may share the precedence, the right may not.
        out = [left] if _infix_precedence(left) >= prec else ["(", left, ")"]
        out.append(f" {sym} ")
        return out + ([right] if _infix_precedence(right) > prec else ["(", right, ")"])
    return [f"{p.op}(", left, ", ", right, ")"]


def _repr_pieces(p: Program) -> list:
    if not p.children:
        return [f"Program(op={p.op!r}, children=())"]
    out: list = [f"Program(op={p.op!r}, children=("]
    for k, child in enumerate(p.children):
        out += [", "] if k else []
        out.append(child)
    return out + ([",))"] if len(p.children) == 1 else ["))"])


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
        """Outputs of ``program`` on ``inputs`` (default: the grid), node by node over the
        tree (an explicit stack, so any depth); ``None`` when any node leaves the value bound.

        This is the per-tree evaluator: simple and slow.  The universe is classified by
        :mod:`synthgen.enumeration` instead, which evaluates each distinct
        (operator, child class, child class) once."""
        inputs = self.grid if inputs is None else np.asarray(inputs, dtype=np.int64)

        def checked(out: np.ndarray) -> np.ndarray | None:
            return out if bool(np.all(np.abs(out) <= self.value_bound)) else None

        def leaf(p: Program) -> np.ndarray | None:
            if p.op in self.variables:
                return checked(inputs[:, self.variables.index(p.op)].astype(np.int64))
            return checked(np.full(inputs.shape[0], int(p.op), dtype=np.int64))

        def combine(p: Program, args: list) -> np.ndarray | None:
            if any(a is None for a in args):
                return None
            fn = UNARY_SEMANTICS[p.op] if len(args) == 1 else BINARY_SEMANTICS[p.op]
            return checked(fn(*args))

        return _fold(program, leaf, combine, release=True)

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
    grammar's recurrence (:func:`synthgen.params.program_counts`, where params checks
    that a grammar has enough programs for its splits)."""
    return program_counts(len(g.leaves), len(g.unary), len(g.binary), max_size or g.max_size)


# --- parsing ------------------------------------------------------------------------


@dataclass(frozen=True)
class ParseError:
    """Why a token sequence is not a program.  ``kind`` is one of ``empty``,
    ``unknown_token``, ``incomplete`` (tokens ran out), ``trailing`` (tokens after a
    complete program), ``syntax`` (infix only) or ``too_deep`` (deeper than the parser's
    ``max_depth``); ``position`` is a token index."""

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


def _too_deep(depth: int, max_depth: int | None, position: int, token: str | None) -> ParseError | None:
    """The one depth rule of both parsers: a node deeper than ``max_depth`` is refused."""
    if max_depth is not None and depth > max_depth:
        return ParseError("too_deep", f"program is deeper than {max_depth} levels", position, token)
    return None


def parse_prefix(
    text: str | Sequence[str], grammar: Grammar, max_depth: int | None = MAX_PARSE_DEPTH
) -> Program | ParseError:
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
    # inputs cannot hit Python's recursion limit.  The stack holds exactly the unfinished
    # ancestors of the current token, so its length + 1 is the token's depth.
    stack: list[tuple[str, list[Program]]] = []
    result: Program | None = None
    for i, tok in enumerate(tokens):
        if result is not None:
            return ParseError("trailing", f"tokens after a complete program, from position {i}", i, tok)
        deep = _too_deep(len(stack) + 1, max_depth, i, tok)
        if deep is not None:  # a ParseError is falsy
            return deep
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


def parse_infix(text: str, grammar: Grammar, max_depth: int | None = MAX_PARSE_DEPTH) -> Program | ParseError:
    """Parse the readable infix form printed by :meth:`Program.infix` (also accepts
    redundant parentheses and spaces).  Never raises."""
    if not isinstance(text, str):
        return ParseError("syntax", "input must be a string", 0)
    try:
        return _InfixParser(text, grammar, max_depth).run()
    except _Fail as f:
        return f.error


class _Frame:
    """One open expression of the infix parser: the whole text, a parenthesis, or the
    arguments of a call such as ``min(x, 2)``.  Operands carry their tree depth."""

    def __init__(self, kind: str, name: str | None = None) -> None:
        self.kind, self.name = kind, name
        self.operands: list[tuple[Program, int]] = []
        self.operators: list[str] = []  # infix symbols, and "neg" for a prefix minus
        self.args: list[tuple[Program, int]] = []


class _InfixParser:
    """Operator precedence over: sum := term (('+'|'-') term)*;
    term := unary (('*'|'//'|'%') unary)*; unary := '-' unary | atom;
    atom := int | var | '(' sum ')' | name '(' sum (',' sum)* ')'.

    A loop with an explicit stack of open frames, not recursive descent: Python's
    recursion limit would otherwise refuse a program a few hundred levels deep."""

    _SYMBOLS = {"+": ("add", 1), "-": ("sub", 1), "*": ("mul", 2), "//": ("div", 2), "%": ("mod", 2)}

    def __init__(self, text: str, grammar: Grammar, max_depth: int | None) -> None:
        self.g = grammar
        self.max_depth = max_depth
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

    def _peek(self) -> str | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def _node(self, name: str, kids: list[tuple[Program, int]], token: str | None) -> tuple[Program, int]:
        depth = 1 + max((d for _, d in kids), default=0)
        deep = _too_deep(depth, self.max_depth, self.i, token)
        if deep is not None:  # a ParseError is falsy
            raise _Fail(deep)
        return Program(name, tuple(p for p, _ in kids)), depth

    def _reduce(self, frame: _Frame, precedence: int) -> None:
        """Apply the frame's pending operators that bind at least as tightly as
        ``precedence`` (all of them for 0): left-associative binary operators."""
        while frame.operators:
            sym = frame.operators[-1]
            if (_UNARY_PRECEDENCE if sym == "neg" else self._SYMBOLS[sym][1]) < precedence:
                return
            frame.operators.pop()
            if sym == "neg":
                frame.operands.append(self._node("neg", [frame.operands.pop()], "-"))
                continue
            right, left = frame.operands.pop(), frame.operands.pop()
            name = self._SYMBOLS[sym][0]
            if name not in self.g.binary:
                raise _Fail(ParseError("unknown_token", f"operator {name!r} is not in this grammar", self.i, name))
            frame.operands.append(self._node(name, [left, right], sym))

    def run(self) -> Program | ParseError:
        if isinstance(self.toks, ParseError):
            return self.toks
        if not self.toks:
            return ParseError("empty", "no tokens", 0)
        frames = [_Frame("top")]
        want_operand = True
        while True:
            frame, tok = frames[-1], self._peek()
            if want_operand:
                want_operand = self._operand(frames, tok)
                continue
            if tok in self._SYMBOLS:
                self._reduce(frame, self._SYMBOLS[tok][1])
                frame.operators.append(tok)
                self.i += 1
                want_operand = True
                continue
            # the frame's expression ends before this token
            self._reduce(frame, 0)
            value = frame.operands.pop()
            if frame.kind == "top":
                if tok is None:
                    return value[0]
                return ParseError("trailing", "tokens after a complete expression", self.i, tok)
            if frame.kind == "call":
                frame.args.append(value)
                if tok == ",":
                    self.i += 1
                    want_operand = True
                    continue
            if tok != ")":
                return ParseError("incomplete" if tok is None else "syntax", "expected ')'", self.i, tok)
            self.i += 1
            frames.pop()
            if frame.kind == "call":
                arity = self.g.arity(frame.name)
                if len(frame.args) != arity:
                    return ParseError("syntax", f"{frame.name} takes {arity} argument(s)", self.i, frame.name)
                value = self._node(frame.name, frame.args, frame.name)
            frames[-1].operands.append(value)

    def _operand(self, frames: list[_Frame], tok: str | None) -> bool:
        """Read what may start an operand; return whether an operand is still wanted
        (after a prefix minus or an opening parenthesis)."""
        frame = frames[-1]
        if tok is None:
            raise _Fail(ParseError("incomplete", "expression ends too early", self.i))
        self.i += 1
        if tok == "-":
            nxt = self._peek()
            # ASCII digits only: str.isdigit() also accepts "²", which int() refuses
            if nxt is not None and nxt.isascii() and nxt.isdigit() and str(-int(nxt)) in self.g.leaves:
                # "-3" is a negative constant when the grammar has one
                self.i += 1
                frame.operands.append(self._node(str(-int(nxt)), [], nxt))
                return False
            if "neg" not in self.g.unary:
                raise _Fail(ParseError("unknown_token", "operator 'neg' is not in this grammar", self.i, "-"))
            frame.operators.append("neg")
            return True
        if tok == "(":
            frames.append(_Frame("paren"))
            return True
        if self._peek() == "(" and self.g.arity(tok) in (1, 2):
            self.i += 1
            frames.append(_Frame("call", tok))
            return True
        if self.g.arity(tok) == 0:
            frame.operands.append(self._node(tok, [], tok))
            return False
        raise _Fail(ParseError("unknown_token", f"unknown token {tok!r}", self.i - 1, tok))


class _Fail(Exception):
    def __init__(self, error: ParseError) -> None:
        self.error = error
