"""Search for programs consistent with a task's examples (STUDY.md section 7).

Every method faces the tasks of :mod:`synthgen.tasks` (grid points and outputs of ``K``
examples) and is judged by the rule of :mod:`synthgen.evaluation`.

- :mod:`synthgen.search.enumerative`: the enumerative baseline, the smallest consistent
  program of the universe, with its cost in programs and classes examined.
- :mod:`synthgen.search.neural`: neural-guided search with a trained synthesizer,
  sample-and-filter and best-first over partial programs, costed in candidates checked,
  model calls and FLOPs.
- :mod:`synthgen.search.compare`: every method on a split's test tasks at every budget,
  pass@1 with intervals, and the training compute the scaling line needs for the same
  pass@1 (notebook 08).
"""

from synthgen.search.enumerative import ENUMERATION_UNITS, EnumerativeSearch, SearchResult, SearchResults
from synthgen.search.neural import ProgramIndex, best_first, sample_and_filter

__all__ = [
    "ENUMERATION_UNITS",
    "EnumerativeSearch",
    "ProgramIndex",
    "SearchResult",
    "SearchResults",
    "best_first",
    "sample_and_filter",
]
