"""``paperlab hierarchy fit`` on graphs the tests write: formats, outputs, bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
from scipy.io import mmwrite

from paperlab import cli
from paperlab.hierarchy import HSBM
from paperlab.hierarchy.cli import read_graph


@pytest.fixture(scope="module")
def easy() -> HSBM:
    """Two levels of two, strong communities: bottom-up finds the 4 leaves."""
    return HSBM(depth=2, branching=2, n0=40, a=(2, 6, 20), seed=3)


def write_edges(path: Path, model: HSBM, header: bool = True, sep: str = ",") -> Path:
    upper = sp.triu(model.adjacency, k=1).tocoo()
    with open(path, "w", newline="") as f:
        w = csv.writer(f, delimiter=sep)
        if header:
            w.writerow(["source", "target", "weight"])
        for i, j in zip(upper.row, upper.col, strict=True):
            w.writerow([f"n{i}", f"n{j}", 1])
    return path


def labels_of(folder: Path) -> dict[str, list[str]]:
    with open(folder / "labels.csv") as f:
        rows = list(csv.reader(f))
    return {row[0]: row[1:] for row in rows[1:]}


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Share of node pairs the two partitions treat alike (1 = the same partition)."""
    same_a, same_b = a[:, None] == a[None, :], b[:, None] == b[None, :]
    return float((same_a == same_b).mean())


def test_fit_writes_levels_linkage_and_plot(tmp_path, easy, capsys):
    path = write_edges(tmp_path / "edges.csv", easy)
    assert cli.main(["hierarchy", "fit", str(path), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "4 leaf communities, 0 inversions" in out
    labels = labels_of(tmp_path / "out")
    assert len(labels) == easy.adjacency.shape[0]
    leaf = np.array([int(labels[f"n{i}"][0]) for i in range(len(labels))])
    assert agreement(leaf, easy.labels[-1]) > 0.95
    level2 = np.array([int(labels[f"n{i}"][1]) for i in range(len(labels))])
    assert agreement(level2, easy.labels[1]) > 0.95  # the coarse level too
    Z = np.loadtxt(tmp_path / "out" / "linkage.csv", delimiter=",", skiprows=1)
    assert Z.shape == (3, 4) and Z[-1, 3] == 4
    assert (tmp_path / "out" / "dendrogram.png").stat().st_size > 0


@pytest.mark.parametrize("fmt", ["tsv", "gml", "graphml", "mtx"])
def test_every_format_gives_the_same_partition(tmp_path, easy, fmt):
    n = easy.adjacency.shape[0]
    if fmt == "tsv":
        path = write_edges(tmp_path / "g.tsv", easy, header=False, sep="\t")
    elif fmt == "mtx":
        path = tmp_path / "g.mtx"
        mmwrite(path, sp.triu(easy.adjacency, k=1).tocoo())
    else:
        graph = nx.from_scipy_sparse_array(easy.adjacency)
        graph = nx.relabel_nodes(graph, {i: f"n{i}" for i in range(n)})
        path = tmp_path / f"g.{fmt}"
        (nx.write_gml if fmt == "gml" else nx.write_graphml)(graph, path)
    A, names = read_graph(path)
    assert A.shape == (n, n) and abs(A - A.T).max() == 0 and A.sum() == easy.adjacency.sum()
    assert cli.main(["hierarchy", "fit", str(path), "--out", str(tmp_path / fmt)]) == 0
    labels = labels_of(tmp_path / fmt)
    key = (lambda i: str(i + 1)) if fmt == "mtx" else (lambda i: f"n{i}")
    leaf = np.array([int(labels[key(i)][0]) for i in range(n)])
    assert agreement(leaf, easy.labels[-1]) > 0.95


def test_disconnected_graph_is_said_and_json_summary(tmp_path, easy, capsys):
    path = write_edges(tmp_path / "edges.csv", easy)
    with open(path, "a") as f:
        f.write("lonely1,lonely2,1\n")
    assert cli.main(["hierarchy", "fit", str(path), "--out", str(tmp_path / "o"),
                     "--method", "top-down", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    n = easy.adjacency.shape[0]
    assert summary["components"] == 2 and summary["nodes"] == n + 2
    assert summary["nodes_fitted"] == n and "lonely1" not in labels_of(tmp_path / "o")
    assert summary["method"] == "top-down"


@pytest.mark.parametrize("text, message", [
    ("", "no edges"),
    ("# only a comment\n", "no edges"),
    ("a,b\nc\n", "line 2"),
    ("a,b,1\nb,c,x\n", "line 2, column 3: weight 'x' is not a number"),
    ("a,b,-1\n", "line 1, column 3"),
    ("a,b,1,2\n", "line 1"),
    ("a,a,1\n", "no edges between distinct nodes"),
])
def test_malformed_edge_lists_exit_2_naming_the_line(tmp_path, text, message, capsys):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    assert cli.main(["hierarchy", "fit", str(path), "--out", str(tmp_path / "o")]) == 2
    assert message in capsys.readouterr().err


def test_missing_file_unknown_format_and_bad_files(tmp_path, capsys):
    assert cli.main(["hierarchy", "fit", str(tmp_path / "none.csv")]) == 3
    assert "no graph file" in capsys.readouterr().err
    for name, text, message in (("g.xyz", "a b\n", "unknown graph format"),
                                ("g.gml", "not gml at all", "not a readable GML"),
                                ("g.mtx", "%%MatrixMarket nonsense\n", "Matrix Market")):
        (tmp_path / name).write_text(text)
        assert cli.main(["hierarchy", "fit", str(tmp_path / name)]) == 2
        assert message in capsys.readouterr().err


def test_help_shows_an_example(capsys):
    with pytest.raises(SystemExit):
        cli.main(["hierarchy", "fit", "--help"])
    assert "example:" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main(["hierarchy", "--help"])
    assert "fit" in capsys.readouterr().out
