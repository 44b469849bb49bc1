"""Can the configured splits be drawn?  Checked by ``synthgen check-params`` before any work.

The params schema checks what it can know from the grammar alone: for instance the
analytic program count against ``train_size + test_size``.  Whether the splits can be
drawn also depends on which programs stay within the value bound, on how the semantic
classes fall, and on which pq-grams the training set happens to hold: facts of the
enumerated universe.  For a universe small enough to build in seconds (at most
:data:`LIMIT` programs by the analytic count: the smoke profile and the tiny grammars of
an ablation), :func:`check_feasible` builds it in memory, as stages 02 to 04 do
(enumeration, both spaces, every split with its invariants), and turns a split that
cannot be satisfied into one line naming the split and the numbers.  Larger universes
(the default's 2M programs) are checked analytically only: there every split has room
to spare, and building them would cost minutes.
"""

from __future__ import annotations

from synthgen.enumeration import enumerate_universe
from synthgen.grammar import Grammar, analytic_counts
from synthgen.params import Params, ParamsError
from synthgen.spaces import build_spaces
from synthgen.splits import SplitError, SplitInputs, make_splits

LIMIT = 50_000


def check_feasible(params: Params, source: str = "params.yaml", limit: int = LIMIT) -> bool:
    """Build a small universe's splits in memory; raise :class:`ParamsError` (one line) if
    they cannot be drawn.  Returns whether the check ran (False above ``limit`` programs)."""
    grammar = Grammar.from_params(params.grammar)
    if sum(analytic_counts(grammar)) > limit:
        return False
    universe = enumerate_universe(grammar)
    spaces = build_spaces(universe, params)
    inputs = SplitInputs(universe, spaces.syntax_coords, spaces.semantic_coords, spaces.profiles.counts)
    try:
        make_splits(inputs, params.splits, params.seed)
    except SplitError as err:
        raise ParamsError(f"{source}: splits: {err} (the universe has {len(universe):,} programs, "
                          f"{int((universe.semantic_class >= 0).sum()):,} in bound)") from None
    return True
