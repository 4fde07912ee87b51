"""Bottom-up vs top-down hierarchical community detection (Dreveton et al.).

Public API: the :class:`HSBM` generator, the :class:`BottomUp` and :class:`TopDown`
estimators, the metrics, and :func:`chernoff_hellinger` (which levels each can recover).
"""

from paperlab.core.registry import System
from paperlab.hierarchy.estimators import BottomUp, TopDown, as_adjacency, largest_component
from paperlab.hierarchy.hsbm import HSBM
from paperlab.hierarchy.metrics import (
    accuracy,
    ami,
    count_inversions,
    exact_recovery,
    tree_correlation,
)
from paperlab.hierarchy.theory import Thresholds, chernoff_hellinger

__all__ = [
    "HSBM", "BottomUp", "TopDown", "as_adjacency", "largest_component", "accuracy", "ami",
    "exact_recovery", "tree_correlation", "count_inversions", "chernoff_hellinger",
    "Thresholds", "SYSTEM",
]

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
