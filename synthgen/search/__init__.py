"""Search for programs consistent with a task's examples (STUDY.md section 7).

- :mod:`synthgen.search.tasks`: tasks as every search method sees them (grid points and
  outputs of ``K`` examples), and the pass criterion.
- :mod:`synthgen.search.enumerative`: the enumerative baseline, the smallest consistent
  program of the universe, with its cost in programs and classes examined.

The neural-guided methods (sample-and-filter, best-first under a budget) belong beside
them, reporting their cost in the same units so that notebook 08 can compare them.
"""

from synthgen.search.enumerative import BUDGET_UNITS, EnumerativeSearch, SearchResult, SearchResults
from synthgen.search.tasks import Tasks, grid_points, passes

__all__ = [
    "BUDGET_UNITS",
    "EnumerativeSearch",
    "SearchResult",
    "SearchResults",
    "Tasks",
    "grid_points",
    "passes",
]
