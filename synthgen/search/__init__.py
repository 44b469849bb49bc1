"""Search for programs consistent with a task's examples (STUDY.md section 7).

- :mod:`synthgen.search.tasks`: tasks as every search method sees them (grid points and
  outputs of ``K`` examples), and the pass criterion.
- :mod:`synthgen.search.enumerative`: the enumerative baseline, the smallest consistent
  program of the universe, with its cost in programs and classes examined.
- :mod:`synthgen.search.neural`: neural-guided search with a trained synthesizer,
  sample-and-filter and best-first over partial programs, costed in candidates checked,
  model calls and FLOPs.
- :mod:`synthgen.search.compare`: every method on a split's test tasks at every budget,
  pass@1 with intervals, and the training compute the scaling line needs for the same
  pass@1 (notebook 08).
"""

from synthgen.search.enumerative import BUDGET_UNITS, EnumerativeSearch, SearchResult, SearchResults
from synthgen.search.neural import ProgramIndex, best_first, sample_and_filter
from synthgen.search.tasks import Tasks, grid_points, passes

__all__ = [
    "BUDGET_UNITS",
    "EnumerativeSearch",
    "ProgramIndex",
    "SearchResult",
    "SearchResults",
    "Tasks",
    "best_first",
    "grid_points",
    "passes",
    "sample_and_filter",
]
