"""The program universe: every program up to ``max_size``, one row each, and its
semantic classes, one row each; stored as two Parquet files.

``programs.parquet``: id, size, depth, op (index into the grammar's symbols), left,
right (child ids, -1 where absent) and semantic_class (-1 = out of bound).
``classes.parquet``: semantic_class, n_programs, representative (its smallest program)
and outputs (its values on the grid, a fixed-size list of int64).

The grammar travels in the files' metadata, so a universe is self-describing.  Token
strings are derived from the table on demand, never stored: 2 million programs take
about 10 MB on disk this way.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from synthgen.atomic import atomic_path
from synthgen.grammar import Grammar, Program

OUT_OF_BOUND = -1
PROGRAMS_FILE = "programs.parquet"
CLASSES_FILE = "classes.parquet"


@dataclass
class Universe:
    """All programs of a grammar up to ``max_size`` and their semantic classes.

    Program ``i`` is row ``i`` of the arrays below; class ``k`` is row ``k`` of
    ``class_outputs``.  Programs of size ``s`` are ids ``size_offsets[s-1]:size_offsets[s]``.
    """

    grammar: Grammar
    op: np.ndarray  # uint8: index into grammar.symbols
    left: np.ndarray  # int32: left (or only) child id, -1 for leaves
    right: np.ndarray  # int32: right child id, -1 for leaves and unary nodes
    size: np.ndarray  # uint8
    depth: np.ndarray  # uint8
    semantic_class: np.ndarray  # int32, -1 = out of bound
    class_outputs: np.ndarray  # int64 (n_classes, n_points)

    def __len__(self) -> int:
        return len(self.op)

    @property
    def n_classes(self) -> int:
        return len(self.class_outputs)

    @property
    def size_offsets(self) -> np.ndarray:
        counts = np.bincount(self.size, minlength=self.grammar.max_size + 1)[1:]
        return np.concatenate([[0], np.cumsum(counts)])

    def class_sizes(self) -> np.ndarray:
        """Number of programs in each class."""
        valid = self.semantic_class[self.semantic_class >= 0]
        return np.bincount(valid, minlength=self.n_classes)

    def representatives(self) -> np.ndarray:
        """Smallest program of each class (the first in canonical order)."""
        valid = np.flatnonzero(self.semantic_class >= 0).astype(np.int32)
        rep = np.full(self.n_classes, np.iinfo(np.int32).max, dtype=np.int32)
        np.minimum.at(rep, self.semantic_class[valid], valid)
        return rep

    def program(self, i: int) -> Program:
        """The tree of program ``i``, rebuilt from the table."""
        symbols = self.grammar.symbols
        sym = symbols[self.op[i]]
        l, r = int(self.left[i]), int(self.right[i])
        if l < 0:
            return Program(sym)
        if r < 0:
            return Program(sym, (self.program(l),))
        return Program(sym, (self.program(l), self.program(r)))

    def tokens(self, i: int) -> list[str]:
        """Prefix tokens of program ``i``, without building the tree."""
        symbols, out, stack = self.grammar.symbols, [], [int(i)]
        while stack:
            j = stack.pop()
            out.append(symbols[self.op[j]])
            if self.right[j] >= 0:
                stack.append(int(self.right[j]))
            if self.left[j] >= 0:
                stack.append(int(self.left[j]))
        return out

    def prefix(self, i: int) -> str:
        return " ".join(self.tokens(i))

    def outputs(self, i: int) -> np.ndarray | None:
        c = self.semantic_class[i]
        return None if c < 0 else self.class_outputs[c]


def _grammar_meta(g: Grammar) -> dict[bytes, bytes]:
    return {b"synthgen.grammar": json.dumps(g.to_dict(), sort_keys=True).encode()}


def write_universe(u: Universe, folder: str | Path, compression: str = "zstd", row_group_size: int = 1 << 20) -> None:
    """Write the two Parquet files atomically; the same universe gives the same bytes."""
    folder = Path(folder)
    codec = None if compression == "none" else compression
    programs = pa.table(
        {
            "id": pa.array(np.arange(len(u), dtype=np.int32)),
            "size": pa.array(u.size),
            "depth": pa.array(u.depth),
            "op": pa.array(u.op),
            "left": pa.array(u.left),
            "right": pa.array(u.right),
            "semantic_class": pa.array(u.semantic_class),
        }
    ).replace_schema_metadata(_grammar_meta(u.grammar))
    n_points = u.class_outputs.shape[1]
    # In-bound values fit int32 (value_bound < 2**31), so the file stores int32.
    outputs = pa.FixedSizeListArray.from_arrays(pa.array(u.class_outputs.astype(np.int32).ravel()), n_points)
    classes = pa.table(
        {
            "semantic_class": pa.array(np.arange(u.n_classes, dtype=np.int32)),
            "n_programs": pa.array(u.class_sizes().astype(np.int32)),
            "representative": pa.array(u.representatives()),
            "outputs": outputs,
        }
    ).replace_schema_metadata(_grammar_meta(u.grammar))

    def write(table: pa.Table, name: str) -> None:
        with atomic_path(folder / name) as tmp:
            # Plain encoding + zstd: smaller and faster here than dictionary pages.
            pq.write_table(table, tmp, compression=codec, row_group_size=row_group_size, use_dictionary=False)

    # Two files, two cores: pyarrow releases the GIL while encoding.
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(write, (programs, classes), (PROGRAMS_FILE, CLASSES_FILE)))


def read_universe(folder: str | Path) -> Universe:
    """Load a universe written by :func:`write_universe`."""
    folder = Path(folder)
    programs = pq.read_table(folder / PROGRAMS_FILE)
    classes = pq.read_table(folder / CLASSES_FILE)
    meta = json.loads(programs.schema.metadata[b"synthgen.grammar"])
    grammar = Grammar.from_dict(meta)
    col = lambda t, name: t.column(name).to_numpy()  # noqa: E731
    out = classes.column("outputs").combine_chunks()
    return Universe(
        grammar=grammar,
        op=col(programs, "op"),
        left=col(programs, "left"),
        right=col(programs, "right"),
        size=col(programs, "size"),
        depth=col(programs, "depth"),
        semantic_class=col(programs, "semantic_class"),
        class_outputs=out.values.to_numpy().astype(np.int64).reshape(len(out), grammar.n_points),
    )
