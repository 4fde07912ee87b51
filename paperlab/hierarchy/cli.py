"""``paperlab hierarchy fit GRAPH``: hierarchical communities of your own network.

Reads an edge list (CSV, TSV or whitespace-separated; two columns of node names, an optional
third of weights, an optional header line), GML, GraphML or Matrix Market; fits bottom-up (the
paper's), top-down, Paris or Leiden-then-linkage; writes the node labels of every level, the
dendrogram over the leaf communities in SciPy's linkage form, and its plot, and prints the
number of inversions.
"""

from __future__ import annotations

import argparse
import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

METHODS = ("bottom-up", "top-down", "paris", "leiden")
EDGE_LIST_SUFFIXES = (".csv", ".tsv", ".txt", ".edges", ".el")
EXAMPLE = """example:
  paperlab hierarchy fit contacts.csv --method bottom-up --out fitted/
    contacts.csv: one edge per line, 'a,b' or 'a,b,weight' (a header line is skipped);
    writes fitted/labels.csv (node, leaf community, then one column per level k),
    fitted/linkage.csv (SciPy linkage over the leaf communities), fitted/dendrogram.png
"""


def _delimiter(first: str) -> str | None:
    for sep in (",", "\t", ";"):
        if sep in first:
            return sep
    return None  # runs of whitespace


def _number(text: str, path: Path, line: int, column: int) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{path}, line {line}, column {column}: weight {text!r} is not a "
                         "number") from None
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{path}, line {line}, column {column}: weight {text!r} must be a "
                         "finite number >= 0")
    return value


def read_edge_list(path: Path) -> tuple[sp.csr_matrix, list[str]]:
    """An undirected graph from an edge list: ``(n, n)`` symmetric CSR and the node names.

    Two columns per line (``a b``) or three (``a b weight``); commas, tabs, semicolons or
    whitespace; blank lines and lines starting with ``#`` or ``%`` are skipped, and so is a
    first line whose weight column is not a number (a header). A repeated edge adds its weights.

    Raises:
        ValueError: a line with one field or more than three, a weight that is not a finite
            number >= 0 (naming the line and column), or no edges at all.
    """
    with open(path, encoding="utf-8", newline="") as f:
        lines = [(n, line.rstrip("\r\n")) for n, line in enumerate(f, 1)]
    body = [(n, line) for n, line in lines if line.strip() and line.lstrip()[0] not in "#%"]
    if not body:
        raise ValueError(f"{path}: no edges (the file is empty or only comments)")
    sep = _delimiter(body[0][1])
    names: dict[str, int] = {}
    rows, cols, weights = [], [], []
    for index, (number, line) in enumerate(body):
        fields = [x.strip() for x in (next(csv.reader([line], delimiter=sep)) if sep
                                      else line.split())]
        if len(fields) not in (2, 3) or not fields[0] or not fields[1]:
            raise ValueError(f"{path}, line {number}: expected 'a{sep or ' '}b' or "
                             f"'a{sep or ' '}b{sep or ' '}weight', got {line[:60]!r}")
        if index == 0 and len(fields) == 3:
            try:
                float(fields[2])
            except ValueError:
                continue  # a header line
        weight = _number(fields[2], path, number, 3) if len(fields) == 3 else 1.0
        a, b = (names.setdefault(name, len(names)) for name in fields[:2])
        rows.append(a)
        cols.append(b)
        weights.append(weight)
    if not rows:
        raise ValueError(f"{path}: no edges after the header line")
    n = len(names)
    upper = sp.coo_matrix((weights, (np.minimum(rows, cols), np.maximum(rows, cols))),
                          shape=(n, n))
    upper.sum_duplicates()
    return (upper + upper.T).tocsr(), list(names)


def read_graph(path: Path) -> tuple[sp.csr_matrix, list[str]]:
    """Any of the supported formats, by suffix: an edge list (``.csv``, ``.tsv``, ``.txt``,
    ``.edges``, ``.el``), ``.gml``, ``.graphml`` or Matrix Market ``.mtx``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: an unknown suffix, or a file that does not parse (naming it).
    """
    if not path.is_file():
        raise FileNotFoundError(f"no graph file at {path}")
    suffix = path.suffix.lower()
    if suffix in EDGE_LIST_SUFFIXES:
        return read_edge_list(path)
    if suffix in (".gml", ".graphml"):
        import networkx as nx

        reader = nx.read_gml if suffix == ".gml" else nx.read_graphml
        try:
            graph = reader(path)
        except Exception as exc:  # networkx raises several unrelated types for bad files
            raise ValueError(f"{path}: not a readable {suffix[1:].upper()} file ({exc})") \
                from None
        if graph.is_directed():
            graph = graph.to_undirected()
        matrix = nx.to_scipy_sparse_array(graph, nodelist=list(graph.nodes), weight="weight",
                                          format="csr")
        return sp.csr_matrix(matrix, dtype=np.float64), [str(v) for v in graph.nodes]
    if suffix == ".mtx":
        from scipy.io import mmread

        try:
            matrix = sp.csr_matrix(mmread(path), dtype=np.float64)
        except Exception as exc:  # scipy raises ValueError and others for bad headers
            raise ValueError(f"{path}: not a readable Matrix Market file ({exc})") from None
        if matrix.shape[0] != matrix.shape[1]:
            raise ValueError(f"{path}: the matrix is {matrix.shape}, not square")
        matrix = matrix.maximum(matrix.T).tocsr()  # a triangle or a directed graph: symmetrise
        return matrix, [str(i + 1) for i in range(matrix.shape[0])]
    raise ValueError(f"{path}: unknown graph format {suffix!r}; expected an edge list "
                     f"({', '.join(EDGE_LIST_SUFFIXES)}), .gml, .graphml or .mtx")


def estimator(method: str, seed: int) -> Any:
    """The fitted-by-``fit`` estimator of ``method`` (see :data:`METHODS`)."""
    from paperlab.hierarchy.baselines import Paris, leiden_available, leiden_linkage
    from paperlab.hierarchy.estimators import BottomUp, TopDown

    if method == "leiden" and not leiden_available():
        raise ValueError("--method leiden needs the leidenalg and igraph packages "
                         "(pip install leidenalg igraph)")
    made: dict[str, Callable[[], Any]] = {
        "bottom-up": lambda: BottomUp(random_state=seed),
        "top-down": lambda: TopDown(random_state=seed),
        "paris": Paris,
        "leiden": lambda: leiden_linkage(seed),
    }
    return made[method]()


def fit_graph(path: Path, method: str, out: Path, seed: int = 0, max_levels: int = 10
              ) -> dict[str, Any]:
    """Fit ``method`` on the graph at ``path`` and write ``labels.csv``, ``linkage.csv`` and
    ``dendrogram.png`` into ``out``; returns a summary (nodes, edges, components, leaf
    communities, inversions, the files written).

    The methods need one connected graph: a disconnected one is cut down to its largest
    connected component (isolated nodes included in what is dropped), which the summary says;
    the dropped nodes get no labels.
    """
    from scipy.sparse.csgraph import connected_components

    from paperlab.core import plots
    from paperlab.core.results import atomic_write_text
    from paperlab.hierarchy import linkage
    from paperlab.hierarchy.estimators import largest_component

    if method not in METHODS:
        raise ValueError(f"--method must be one of {', '.join(METHODS)}, got {method!r}")
    A, names = read_graph(path)
    A.setdiag(0)
    A.eliminate_zeros()
    if A.nnz == 0:
        raise ValueError(f"{path}: the graph has no edges between distinct nodes")
    n_components, _ = connected_components(A, directed=False)
    keep = largest_component(A)
    graph = A[keep][:, keep].tocsr()
    est = estimator(method, seed).fit(graph)
    levels = list(range(2, min(est.n_clusters_, max_levels) + 1))
    header = ["node", "leaf"] + [f"level_{k}" for k in levels]
    lines = [",".join(header)]
    cuts = [est.level(k) for k in levels]
    for row, node in enumerate(keep):
        cells = [names[node], str(int(est.labels_[row]))] + [str(int(c[row])) for c in cuts]
        lines.append(",".join(_csv_cell(x) for x in cells))
    out.mkdir(parents=True, exist_ok=True)
    labels_path = atomic_write_text(out / "labels.csv", "\n".join(lines) + "\n")
    Z = est.dendrogram_
    linkage_path = atomic_write_text(
        out / "linkage.csv", "left,right,height,size\n" + "".join(
            f"{int(a)},{int(b)},{h:.10g},{int(s)}\n" for a, b, h, s in Z))
    inversions = linkage.count_inversions(Z) if len(Z) else 0
    fig, ax = plots.figure(title=f"{path.name}: {method}, {est.n_clusters_} leaf communities, "
                           f"{inversions} inversions", size=4.5)
    linkage.draw(Z, ax, labels=est.n_clusters_ <= 60)
    picture = plots.save(fig, out / "dendrogram.png")
    return {"graph": str(path), "method": method, "nodes": int(A.shape[0]),
            "edges": int(sp.triu(A, k=1).nnz), "components": int(n_components),
            "nodes_fitted": len(keep), "leaf_communities": int(est.n_clusters_),
            "levels_written": levels, "inversions": int(inversions),
            "files": [str(labels_path), str(linkage_path), str(picture)]}


def _csv_cell(text: str) -> str:
    return f'"{text.replace(chr(34), chr(34) * 2)}"' if any(c in text for c in ',"\n') else text


def fit(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    """``paperlab hierarchy fit``: adds the arguments, returns the handler."""
    parser.epilog = EXAMPLE
    parser.add_argument("graph", type=Path, help="edge list (.csv/.tsv/.txt/.edges), .gml, "
                        ".graphml or .mtx")
    parser.add_argument("--method", choices=METHODS, default="bottom-up",
                        help="bottom-up (the paper's, default), top-down, paris, leiden")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default: GRAPH's name + _hierarchy)")
    parser.add_argument("--seed", type=int, default=0, help="seed of k-means / Leiden")
    parser.add_argument("--max-levels", type=int, default=10,
                        help="write the partitions into 2..K clusters, K at most this "
                        "(default 10)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")

    def handle(args: argparse.Namespace) -> int:
        import json

        if args.max_levels < 1:
            raise ValueError(f"--max-levels must be >= 1, got {args.max_levels}")
        out = args.out or args.graph.with_name(args.graph.stem + "_hierarchy")
        summary = fit_graph(args.graph, args.method, out, args.seed, args.max_levels)
        if args.json:
            print(json.dumps(summary, indent=2))
            return 0
        dropped = summary["nodes"] - summary["nodes_fitted"]
        print(f"{summary['graph']}: {summary['nodes']} nodes, {summary['edges']} edges"
              + (f", {summary['components']} components: fitted the largest "
                 f"({summary['nodes_fitted']} nodes, {dropped} left without labels)"
                 if dropped else ""))
        print(f"{summary['method']}: {summary['leaf_communities']} leaf communities, "
              f"{summary['inversions']} inversions in the dendrogram")
        for path in summary["files"]:
            print(f"wrote {path}")
        return 0

    return handle
