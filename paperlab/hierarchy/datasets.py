"""Loaders for the paper's real networks (files staged under ``graphs/hsbm/``).

- High-school contacts 2013 (SocioPatterns; Mastrandrea, Fournet & Barrat 2015): 20-second
  contacts ``t i j Ci Cj``; as in the paper's code the weight of a pair is
  ``log(#contacts)`` (so pairs seen once get weight 0 and drop out), with the 9 classes as
  the fine truth and the 4 sections (2BIO, MP, PC, PSI) as the coarse one.
- UCTE European power grid (Schaub et al. 2012): unweighted edges ``i j`` (1-based ids),
  no ground truth.
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from paperlab.hierarchy.estimators import largest_component


@dataclass
class Network:
    """A real network ready for the estimators.

    Attributes:
        name: short name.
        adjacency: ``(n, n)`` symmetric CSR (largest connected component only).
        node_ids: ``(n,)`` the ids the files use for those nodes.
        levels: ground-truth partitions, coarse to fine (``{name: (n,) labels}``); may be empty.
        dropped: nodes left out (outside the largest component).
    """

    name: str
    adjacency: sp.csr_matrix
    node_ids: np.ndarray
    levels: dict[str, np.ndarray] = field(default_factory=dict)
    dropped: int = 0


def _parse_rows(lines: list[str], columns: int, path: Path) -> np.ndarray:
    """Integer rows with at least ``columns`` whitespace-separated fields; clear errors."""
    rows = []
    for number, line in enumerate(lines, 1):
        fields = line.split()
        if not fields:
            continue
        try:
            rows.append([int(x) for x in fields[:columns]])
        except ValueError:
            raise ValueError(f"{path}:{number}: expected {columns} integers, "
                             f"got {line!r}") from None
        if len(rows[-1]) < columns:
            raise ValueError(f"{path}:{number}: expected {columns} fields, got {line!r}")
    if not rows:
        raise ValueError(f"{path}: no data rows")
    return np.asarray(rows, dtype=np.int64)


def _from_edges(name: str, i: np.ndarray, j: np.ndarray, w: np.ndarray) -> Network:
    """Symmetric graph on the distinct ids of ``i, j``, restricted to its largest component."""
    keep = (i != j) & (w > 0)
    i, j, w = i[keep], j[keep], w[keep]
    ids, index = np.unique(np.concatenate([i, j]), return_inverse=True)
    a, b = index[: len(i)], index[len(i):]
    upper = sp.coo_matrix((w, (np.minimum(a, b), np.maximum(a, b))), shape=(len(ids),) * 2)
    upper.sum_duplicates()
    A = (upper + upper.T).tocsr()
    nodes = largest_component(A)
    return Network(name, A[nodes][:, nodes].tocsr(), ids[nodes], dropped=len(ids) - len(nodes))


def load_high_school(folder: str | Path) -> Network:
    """The 2013 high-school contact network with its class (9) and section (4) labels."""
    folder = Path(folder)
    contacts = folder / "High-School_data_2013.csv.gz"
    with gzip.open(contacts, "rt") as f:
        rows = _parse_rows(f.read().splitlines(), 3, contacts)
    pairs = np.sort(rows[:, 1:3], axis=1)
    unique, counts = np.unique(pairs, axis=0, return_counts=True)
    net = _from_edges("high_school_2013", unique[:, 0], unique[:, 1], np.log(counts))
    metadata = folder / "metadata_2013.txt"
    classes = {}
    for number, line in enumerate(metadata.read_text().splitlines(), 1):
        fields = line.split("\t")
        if len(fields) < 2 or not fields[0].strip().isdigit():
            raise ValueError(f"{metadata}:{number}: expected 'id<TAB>class<TAB>gender', "
                             f"got {line!r}")
        classes[int(fields[0])] = fields[1].strip()
    missing = [int(n) for n in net.node_ids if int(n) not in classes]
    if missing:
        raise ValueError(f"{metadata}: no class for node(s) {missing[:5]}")
    names = np.array([classes[int(n)] for n in net.node_ids])
    # Sections: the class name without its trailing '*' and digits (2BIO1 -> 2BIO, MP*2 -> MP).
    sections = np.array([re.sub(r"[*\d]+$", "", c) for c in names])
    net.levels = {"section": np.unique(sections, return_inverse=True)[1],
                  "class": np.unique(names, return_inverse=True)[1]}
    return net


def load_power_grid(folder: str | Path) -> Network:
    """The UCTE power grid (unweighted; no ground truth)."""
    path = Path(folder) / "UCTE_edges.txt"
    rows = _parse_rows(path.read_text().splitlines(), 2, path)
    net = _from_edges("power_grid_ucte", rows[:, 0], rows[:, 1], np.ones(len(rows)))
    net.adjacency.data[:] = 1.0  # the file lists some lines twice (parallel circuits)
    return net
