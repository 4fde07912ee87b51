import gzip

import numpy as np
import pytest

from paperlab.core.data import data_root
from paperlab.hierarchy.datasets import load_high_school, load_power_grid

STAGED = data_root() / "graphs" / "hsbm"


def _write_school(folder, contacts, metadata):
    with gzip.open(folder / "High-School_data_2013.csv.gz", "wt") as f:
        f.write(contacts)
    (folder / "metadata_2013.txt").write_text(metadata)


def test_high_school_weights_and_levels(tmp_path):
    # pair (1,2) seen 3 times (weight log 3), (2,3) twice, (3,1) once -> weight 0, dropped
    contacts = "".join(f"{t} 1 2 MP MP\n" for t in range(3)) + "5 3 2 PC PC*\n6 3 2 PC PC*\n"
    contacts += "7 1 3 MP PC\n"
    _write_school(tmp_path, contacts, "1\tMP*1\tF\n2\tMP\tM\n3\tPC*\tF\n")
    net = load_high_school(tmp_path)
    assert net.node_ids.tolist() == [1, 2, 3]
    assert net.adjacency[0, 1] == pytest.approx(np.log(3))
    assert net.adjacency[1, 2] == pytest.approx(np.log(2))
    assert net.adjacency[0, 2] == 0
    assert net.levels["section"].tolist() == [0, 0, 1]  # MP*1, MP -> MP; PC* -> PC
    assert len(set(net.levels["class"].tolist())) == 3


def test_malformed_files_name_the_line(tmp_path):
    _write_school(tmp_path, "1 1 2 A A\n2 x 3 A A\n", "1\tA\tF\n")
    with pytest.raises(ValueError, match=r"High-School_data_2013.csv.gz:2"):
        load_high_school(tmp_path)
    (tmp_path / "UCTE_edges.txt").write_text("1 2\n3\n")
    with pytest.raises(ValueError, match=r"UCTE_edges.txt:2: expected 2 fields"):
        load_power_grid(tmp_path)


def test_power_grid_duplicates_are_one_edge(tmp_path):
    (tmp_path / "UCTE_edges.txt").write_text("1 2\n2 1\n1 2\n2 3\n4 5\n")
    net = load_power_grid(tmp_path)
    assert net.adjacency.shape == (3, 3) and net.dropped == 2  # 4-5 is a separate piece
    assert set(net.adjacency.data.tolist()) == {1.0}


@pytest.mark.skipif(not (STAGED / "powergrid").exists(), reason="staged data not found")
def test_staged_networks_match_provenance():
    school = load_high_school(STAGED / "highschool2013")
    assert school.adjacency.shape[0] == 327
    assert len(np.unique(school.levels["class"])) == 9
    assert len(np.unique(school.levels["section"])) == 4
    grid = load_power_grid(STAGED / "powergrid")
    assert grid.adjacency.shape[0] == 2783 and grid.adjacency.nnz // 2 == 3762
