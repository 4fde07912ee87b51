"""Reference-compatible mode: per-request equality with splitwise-sim's own outputs.

``anchor_runs/`` holds the reference's outputs on the 3-request test trace (staged data);
``data/reference_rr_code_10_2min__*.csv`` were produced by running splitwise-sim @ 8f99e7d
(Python 3.11, pandas 2.0.3, scipy 1.11.3) on the staged rr_code_10_2min trace with
``performance_model=db seed=0`` via :func:`paperlab.splitwise.peer.run_reference`. At 10 req/s
on 4 machines the cluster is heavily overloaded, so these runs exercise queueing, batching
limits, decode preemption, memory gating and (for HA) pool borrowing.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from paperlab.splitwise import (
    baseline_design,
    read_reference_csv,
    simulate_design,
    splitwise_design,
)
from paperlab.splitwise.experiment import reference_compat_error

HERE = Path(__file__).parent


def _read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("design,fname", [
    (baseline_design("H100", 1), "test_trace__baseline_h100x1__detailed.csv"),
    (splitwise_design("HA", 1, 1), "test_trace__splitwise_ha_1h100p_1a100t__detailed.csv"),
])
def test_anchor_runs_equal_to_1e6(data_root, db, design, fname):
    trace = read_reference_csv(data_root / "splitwise_sim" / "test_trace.csv")
    res = simulate_design(design, trace, db)
    rows = {int(r["request_ids"]): r for r in _read(data_root / "anchor_runs" / fname)}
    assert sorted(rows) == trace.request_id.tolist()
    for i, rid in enumerate(trace.request_id.tolist()):
        r = rows[rid]
        assert abs(res.ttft_s[i] - float(r["ttft_times"])) < 1e-6
        assert abs(res.e2e_s[i] - float(r["response_times"])) < 1e-6
        assert abs(res.tbt_s[i] - float(r["tbt_times"])) < 1e-6
        # the token task starts right after the KV transfer (nothing else queues here)
        assert abs(res.token_start_gap_s[i] - float(r["nth_token_overheads"])) < 1e-6
        if design.split:
            assert abs(res.kv_transfer_s[i] - float(r["nth_token_overheads"])) < 1e-6
        else:
            assert res.kv_transfer_s[i] == 0.0


def test_spec_anchor_numbers(data_root, db):
    """The numbers the spec quotes, independent of the anchor files' parsing."""
    trace = read_reference_csv(data_root / "splitwise_sim" / "test_trace.csv")
    ha = simulate_design(splitwise_design("HA", 1, 1), trace, db)
    np.testing.assert_allclose(ha.e2e_s, [2.199226, 0.622873, 1.003019], atol=1e-6)
    np.testing.assert_allclose(ha.kv_transfer_s * 1e3, [76.563, 38.281, 38.281], atol=1e-3)
    assert reference_compat_error(data_root, db) < 1e-6


@pytest.mark.parametrize("design,name", [
    (splitwise_design("HA", 2, 2), "ha_2p2t"),
    (baseline_design("A100", 4), "baseline_a100x4"),
])
def test_overloaded_trace_matches_reference_per_request(data_root, db, design, name):
    trace = read_reference_csv(data_root / "generated_traces" / "rr_code_10_2min.csv")
    res = simulate_design(design, trace, db)
    rows = _read(HERE / "data" / f"reference_rr_code_10_2min__{name}.csv")
    ids = np.array([int(r["request_id"]) for r in rows])
    assert len(ids) == len(trace) == res.completed
    for col, ours in (("ttft_s", res.ttft_s), ("e2e_s", res.e2e_s),
                      ("token_start_gap_s", res.token_start_gap_s)):
        ref = np.array([float(r[col]) for r in rows])
        np.testing.assert_allclose(ours[ids], ref, rtol=0, atol=1e-6, err_msg=col)
    # and the percentile agreement the issue asks for (<1%) follows
    for ours, ref in ((res.ttft_s[ids], [float(r["ttft_s"]) for r in rows]),
                      (res.e2e_s[ids], [float(r["e2e_s"]) for r in rows])):
        for q in (50, 90, 99):
            assert abs(np.percentile(ours, q) / np.percentile(ref, q) - 1) < 0.01
