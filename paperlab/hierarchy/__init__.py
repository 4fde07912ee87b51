"""Bottom-up vs top-down hierarchical community detection (Dreveton et al.).

Public API: the :class:`HSBM` generator, the :class:`BottomUp` and :class:`TopDown`
estimators, the metrics, and :func:`chernoff_hellinger` (which levels each can recover).
"""

from paperlab.core.lazy import lazy_exports
from paperlab.core.registry import System

SYSTEM = System(
    name="hierarchy",
    paper="When Does Bottom-up Beat Top-down in Hierarchical Community Detection? "
          "(Dreveton, Kuroda, Grossglauser & Thiran, arXiv 2306.00833)",
    claim="Bottom-up (spectral clustering + average linkage) exactly recovers intermediate "
          "levels of an HSBM beyond where top-down recursive bipartition fails, and never "
          "produces dendrogram inversions.",
    run="paperlab.hierarchy.experiment:run",
    bench="paperlab.hierarchy.experiment:bench",
)

_EXPORTS = {
    **dict.fromkeys((
        "BottomUp", "TopDown", "as_adjacency", "largest_component"),
        "paperlab.hierarchy.estimators"),
    "HSBM": "paperlab.hierarchy.hsbm",
    **dict.fromkeys((
        "accuracy", "ami", "count_inversions", "exact_recovery", "tree_correlation"),
        "paperlab.hierarchy.metrics"),
    **dict.fromkeys((
        "Thresholds", "chernoff_hellinger"),
        "paperlab.hierarchy.theory"),
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = ["SYSTEM", *_EXPORTS]
