"""Simulator invariants, KV-transfer modes, chunked prefill and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from paperlab.splitwise import (
    BLOOM_176B,
    DGX_A100,
    ETHERNET,
    INFINIBAND,
    Design,
    Link,
    MachineSKU,
    Trace,
    baseline_design,
    build_cluster,
    poisson_trace,
    simulate,
    simulate_design,
    splitwise_design,
)

DESIGNS = [baseline_design("A100", 3), baseline_design("H100", 2),
           baseline_design("H100", 2, chunk_size=256), splitwise_design("HA", 2, 1),
           splitwise_design("HHcap", 1, 1), splitwise_design("AA", 2, 2)]


def _trace(arrivals, prompts, outputs):
    return Trace(np.asarray(arrivals, float), np.asarray(prompts), np.asarray(outputs),
                 np.arange(len(arrivals)))


@pytest.mark.parametrize("design", DESIGNS, ids=lambda d: d.label)
def test_invariants_under_load(db, azure_code, design):
    trace = poisson_trace(azure_code, 12.0, 30.0, seed=1)
    machines, sched = build_cluster(design, db)
    res = simulate(trace, machines, sched, BLOOM_176B, INFINIBAND)
    assert res.completed == len(trace)  # every request completes
    assert np.all(res.ttft_s > 0) and np.all(res.ttft_s <= res.e2e_s)
    assert np.all(res.machine_peak_memory <= res.machine_max_memory)  # never over memory
    assert np.all(res.machine_peak_memory > BLOOM_176B.weight_bytes)  # KV was allocated
    # no request beats running alone on the fastest hardware
    fastest = min(db.model("bloom-176b", hw, 8).prompt_time(1) for hw in ("h100-80gb",
                                                                         "a100-80gb"))
    assert np.all(res.ttft_s >= fastest * 0.999)
    # every machine drained its KV cache: memory back to the weights
    for m in machines:
        assert m.memory == BLOOM_176B.weight_bytes
        assert not m.batch and not m.pending and not m.pool
    if not design.split:
        assert np.all(res.kv_transfer_s == 0)


def test_lone_request_timeline(db):
    """Alone on a colocated machine: TTFT = prompt time, E2E adds (tokens-1) decode steps."""
    trace = _trace([1.0], [1500], [20])
    res = simulate_design(baseline_design("A100", 1), trace, db)
    m = db.model("bloom-176b", "a100-80gb", 8)
    assert res.ttft_s[0] == pytest.approx(m.prompt_time(1500))
    assert res.e2e_s[0] == pytest.approx(m.prompt_time(1500) + 19 * m.token_time(1))
    # chunked prefill with a chunk >= the prompt is the same schedule
    chunked = simulate_design(baseline_design("A100", 1, chunk_size=2048), trace, db)
    assert chunked.e2e_s[0] == pytest.approx(res.e2e_s[0])
    # smaller chunks: the prompt needs ceil(1500/512) = 3 iterations
    small = simulate_design(baseline_design("A100", 1, chunk_size=512), trace, db)
    assert small.ttft_s[0] == pytest.approx(2 * m.prompt_time(512) + m.prompt_time(476))


def test_kv_transfer_modes(db):
    trace = _trace([0.0], [4096], [8])
    kv_bytes = 4096 * BLOOM_176B.kv_bytes_per_token
    design = splitwise_design("HA", 1, 1)
    serial = simulate_design(design, trace, db, link=INFINIBAND)
    assert serial.kv_transfer_s[0] == pytest.approx(kv_bytes / INFINIBAND.bandwidth)
    eth = simulate_design(design, trace, db, link=ETHERNET)
    assert eth.kv_transfer_s[0] > 10 * serial.kv_transfer_s[0]
    layer = simulate_design(design, trace, db, link=Link(ETHERNET.bandwidth, mode="layerwise"))
    assert layer.kv_transfer_s[0] < eth.kv_transfer_s[0]
    assert layer.kv_transfer_s[0] >= kv_bytes / ETHERNET.bandwidth / BLOOM_176B.num_layers
    # TTFT never includes the transfer; E2E does
    assert serial.ttft_s[0] == pytest.approx(eth.ttft_s[0])
    assert eth.e2e_s[0] - serial.e2e_s[0] == pytest.approx(
        eth.kv_transfer_s[0] - serial.kv_transfer_s[0])
    # small prompts go serialized even in layer-wise mode
    small = simulate_design(design, _trace([0.0], [100], [8]), db,
                            link=Link(ETHERNET.bandwidth, mode="layerwise"))
    assert small.kv_transfer_s[0] == pytest.approx(100 * BLOOM_176B.kv_bytes_per_token /
                                                   ETHERNET.bandwidth)


def test_one_token_requests_finish_at_prompt_end(db):
    trace = _trace([0.0, 0.1], [300, 300], [1, 1])
    for design in (baseline_design("H100", 1), splitwise_design("HH", 1, 1)):
        res = simulate_design(design, trace, db)
        np.testing.assert_allclose(res.e2e_s, res.ttft_s)
        assert np.all(res.kv_transfer_s == 0)


def test_memory_pressure_waits_but_completes(db):
    """A machine with room for few KV caches still finishes everything, never over memory."""
    tight = MachineSKU("tight", "a100-80gb", 1, BLOOM_176B.weight_bytes + 40 * 2**30,
                       cost=1, power=1, peak_flops=1, mem_bw=1)
    trace = _trace(np.arange(30) * 0.01, [4000] * 30, [50] * 30)
    res = simulate_design(Design("tight", tight, 1), trace, db)
    assert res.completed == 30
    assert res.machine_peak_memory[0] <= res.machine_max_memory[0]
    assert res.machine_peak_memory[0] > res.machine_max_memory[0] - 4001 * 2 * 4014080


def test_bad_designs_and_reuse(db):
    with pytest.raises(ValueError, match="at least one prompt machine"):
        baseline_design("A100", 0)
    with pytest.raises(ValueError, match="unknown Splitwise design"):
        splitwise_design("XY", 1, 1)
    with pytest.raises(ValueError, match="unknown KV transfer mode"):
        Link(1e9, mode="carrier-pigeon")
    small = MachineSKU("small", "a100-80gb", 1, 80 * 2**30, 1, 1, 1, 1)
    with pytest.raises(ValueError, match="do not fit"):
        build_cluster(Design("small", small, 1), db)
    machines, sched = build_cluster(baseline_design("A100", 1), db)
    simulate(_trace([0.0], [10], [3]), machines, sched, BLOOM_176B, INFINIBAND)
    with pytest.raises(ValueError, match="already used"):
        simulate(_trace([0.0], [10], [3]), machines, sched, BLOOM_176B, INFINIBAND)
    assert DGX_A100.memory == 8 * 80 * 2**30
