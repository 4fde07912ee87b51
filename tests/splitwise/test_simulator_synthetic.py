"""The simulator on a tiny trace and a tiny profile the tests write themselves.

Unlike ``test_simulator.py`` these need no staged data: they run on a fresh clone (check with
``PAPERLAB_DATA=/nonexistent``). The profile is linear in the batch tokens, so the expected
latency of a request alone is known in closed form.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paperlab.splitwise import (
    BLOOM_176B,
    INFINIBAND,
    Design,
    MachineConfig,
    MachineSKU,
    PerfDatabase,
    Trace,
    TraceError,
    baseline_design,
    build_cluster,
    latency_summary,
    poisson_trace,
    read_reference_csv,
    simulate,
    simulate_design,
    splitwise_design,
)

PERF_HEADER = "model,hardware,tensor_parallel,prompt_size,batch_size,prompt_time,token_time\n"
TRACE_HEADER = "request_id,request_type,application_id,arrival_timestamp,batch_size," \
               "prompt_size,token_size\n"
# hardware -> (prompt ms at x = 0, prompt ms per token, decode ms at x = 0, decode ms per request)
SPEEDS = {"a100-80gb": (20.0, 0.10, 30.0, 0.05), "h100-80gb": (10.0, 0.05, 25.0, 0.04),
          "h100-80gb-pcap": (13.0, 0.065, 25.0, 0.04)}
FIXTURE = HealthCheck.function_scoped_fixture  # tmp_path is rewritten by every example
SIZES = (1, 64, 256, 1024, 4096, 16384)
DESIGNS = [baseline_design("A100", 2), baseline_design("H100", 1, chunk_size=512),
           splitwise_design("HA", 1, 1), splitwise_design("HHcap", 2, 1)]


def _profile_text() -> str:
    rows = []
    for hw, (p0, p1, t0, t1) in SPEEDS.items():
        for x in SIZES:
            rows.append(f"bloom-176b,{hw},8,{x},1,{p0 + p1 * x},{t0 + t1 * x}\n")
    return PERF_HEADER + "".join(rows)


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> PerfDatabase:
    path = tmp_path_factory.mktemp("profile") / "perf_model.csv"
    path.write_text(_profile_text())
    return PerfDatabase.from_csv(path)


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Trace:
    """Eight requests in the reference CSV format, read back with the package's reader."""
    rows = [(0.0, 512, 16), (0.2, 2048, 4), (0.3, 100, 1), (0.5, 1500, 40), (0.9, 3000, 8),
            (1.0, 64, 100), (1.2, 700, 12), (1.5, 4000, 2)]
    text = "".join(f"{i},2,0,{t},1,{p},{o}\n" for i, (t, p, o) in enumerate(rows))
    path = tmp_path_factory.mktemp("trace") / "tiny.csv"
    path.write_text(TRACE_HEADER + text)
    return read_reference_csv(path)


def _trace(arrivals, prompts, outputs) -> Trace:
    return Trace(np.asarray(arrivals, float), np.asarray(prompts, dtype=np.int64),
                 np.asarray(outputs, dtype=np.int64), np.arange(len(arrivals)))


def _ms(hw: str, kind: str, x: float) -> float:
    p0, p1, t0, t1 = SPEEDS[hw]
    return (p0 + p1 * x if kind == "prompt" else t0 + t1 * x) / 1000


def test_profile_reads_back_the_linear_model(db):
    m = db.model("bloom-176b", "a100-80gb", 8)
    for x in (1, 300, 4096, 20000):  # inside the knots and extrapolated
        assert m.prompt_time(x) == pytest.approx(_ms("a100-80gb", "prompt", x))
        assert m.token_time(x) == pytest.approx(_ms("a100-80gb", "token", x))


@pytest.mark.parametrize("design", DESIGNS, ids=lambda d: d.label)
def test_every_request_completes_and_is_conserved(db, source, design):
    trace = poisson_trace(source, rate=6.0, duration_s=5.0, seed=3)
    machines, sched = build_cluster(design, db)
    res = simulate(trace, machines, sched, BLOOM_176B, INFINIBAND)
    n = len(trace)
    assert n > 10
    # requests in = requests out, in the trace's order
    assert res.completed == n == len(res.e2e_s) == len(res.ttft_s)
    np.testing.assert_array_equal(res.request_id, trace.request_id)
    np.testing.assert_array_equal(res.prompt_tokens, trace.prompt_tokens)
    assert np.all(res.ttft_s > 0) and np.all(res.ttft_s <= res.e2e_s)
    one_token = trace.output_tokens == 1
    np.testing.assert_allclose(res.e2e_s[one_token], res.ttft_s[one_token])
    assert np.all(res.e2e_s[~one_token] > res.ttft_s[~one_token])
    # nobody beats running alone on the fastest profiled hardware
    fastest = min(_ms(hw, "prompt", 0) for hw in SPEEDS)
    assert np.all(res.ttft_s >= fastest * 0.999)
    # every machine drained: no task left, memory back to the weights, never over capacity
    for m in machines:
        assert m.memory == BLOOM_176B.weight_bytes
        assert not m.batch and not m.pending and not m.pool
    assert np.all(res.machine_peak_memory <= res.machine_max_memory)
    assert np.all(res.machine_busy_s > 0) or design.split  # a colocated machine all did work
    summary = latency_summary(res)
    assert summary["completed"] == n and summary["throughput_rps"] > 0


@pytest.mark.parametrize("hw,design", [("a100-80gb", baseline_design("A100", 1)),
                                       ("h100-80gb", baseline_design("H100", 1))])
def test_lone_request_matches_the_profile(db, hw, design):
    """Alone on a machine: TTFT = prompt time, then one decode iteration per further token."""
    for prompt, out in [(300, 2), (300, 20), (2000, 7)]:
        res = simulate_design(design, _trace([0.5], [prompt], [out]), db)
        assert res.ttft_s[0] == pytest.approx(_ms(hw, "prompt", prompt))
        assert res.e2e_s[0] == pytest.approx(_ms(hw, "prompt", prompt)
                                             + (out - 1) * _ms(hw, "token", 1))


@pytest.mark.parametrize("design", DESIGNS, ids=lambda d: d.label)
def test_token_phase_grows_with_output_length(db, design):
    outputs = [2, 5, 20, 80]
    token_phase = []
    for out in outputs:
        res = simulate_design(design, _trace([0.0], [1000], [out]), db)
        token_phase.append(res.e2e_s[0] - res.ttft_s[0])
    assert all(b > a for a, b in zip(token_phase, token_phase[1:], strict=False)), token_phase


def test_splitwise_moves_kv_cache_and_baseline_does_not(db, source):
    trace = poisson_trace(source, rate=2.0, duration_s=5.0, seed=0)
    multi = trace.output_tokens > 1
    assert multi.any() and (~multi).any()
    base = simulate_design(baseline_design("A100", 2), trace, db)
    assert np.all(base.kv_transfer_s == 0)
    split = simulate_design(splitwise_design("HA", 1, 1), trace, db, link=INFINIBAND)
    # light load: every multi-token request runs its prompt on the H100 and decodes on the A100
    expected = trace.prompt_tokens * BLOOM_176B.kv_bytes_per_token / INFINIBAND.bandwidth
    np.testing.assert_allclose(split.kv_transfer_s[multi], expected[multi])
    assert np.all(split.kv_transfer_s[~multi] == 0)  # one-token requests end at prompt end
    # the transfer shows up in E2E, not in TTFT
    assert np.all(split.token_start_gap_s[multi] >= split.kv_transfer_s[multi] * 0.999)


def test_same_seed_same_run_other_seed_other_trace(db, source):
    design = splitwise_design("HA", 1, 1)
    a, b = (poisson_trace(source, 5.0, 4.0, seed=7) for _ in range(2))
    for field in ("arrival_s", "prompt_tokens", "output_tokens", "request_id"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    ra, rb = simulate_design(design, a, db), simulate_design(design, b, db)
    for field in ("ttft_s", "e2e_s", "kv_transfer_s", "machine_peak_memory", "machine_busy_s"):
        np.testing.assert_array_equal(getattr(ra, field), getattr(rb, field))
    other = poisson_trace(source, 5.0, 4.0, seed=8)
    assert len(other) != len(a) or not np.array_equal(other.arrival_s, a.arrival_s)


def test_trace_csv_round_trip(tmp_path, source):
    path = tmp_path / "again.csv"
    source.to_csv(path)
    again = read_reference_csv(path)
    for field in ("arrival_s", "prompt_tokens", "output_tokens", "request_id"):
        np.testing.assert_array_equal(getattr(again, field), getattr(source, field))


BAD_TRACE_FIELDS = [  # (column index, bad value, what the error says)
    (3, "soon", "column arrival_timestamp is not a number"),
    (3, "-1", "arrival time is negative"),
    (5, "0", "prompt size must be a positive number"),
    (5, "12.5", "column prompt_size must be a whole number"),
    (6, "-3", "output size must be a positive number"),
    (6, "inf", "column token_size is not finite"),
]


@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[FIXTURE])
@given(n=st.integers(1, 12), data=st.data())
def test_reader_names_the_malformed_trace_row(tmp_path, n, data):
    bad_row = data.draw(st.integers(1, n), label="bad_row")
    column, value, problem = data.draw(st.sampled_from(BAD_TRACE_FIELDS), label="field")
    rows = [[str(i), "2", "0", str(float(i)), "1", str(100 + i), str(1 + i)] for i in range(n)]
    rows[bad_row - 1][column] = value
    path = tmp_path / "bad.csv"
    path.write_text(TRACE_HEADER + "".join(",".join(r) + "\n" for r in rows))
    with pytest.raises(TraceError, match=rf"row {bad_row}: .*{problem}"):
        read_reference_csv(path)


BAD_PROFILE_FIELDS = [  # (column index, bad value, what the error says)
    (3, "many", "bad value"),
    (4, "0", "times and sizes must be positive"),
    (5, "-2", "times and sizes must be positive"),
    (6, "nan", "times and sizes must be positive"),
    (2, "", "bad value"),
]


@settings(max_examples=20, deadline=None, derandomize=True, suppress_health_check=[FIXTURE])
@given(data=st.data())
def test_profile_reader_names_the_malformed_row(tmp_path, data):
    lines = _profile_text().splitlines()
    bad_row = data.draw(st.integers(1, len(lines) - 1), label="bad_row")
    column, value, problem = data.draw(st.sampled_from(BAD_PROFILE_FIELDS), label="field")
    fields = lines[bad_row].split(",")
    fields[column] = value
    lines[bad_row] = ",".join(fields)
    path = tmp_path / "bad_profile.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=rf"row {bad_row}: {problem}"):
        PerfDatabase.from_csv(path)



TIGHT = MachineSKU("tight", "a100-80gb", 1, BLOOM_176B.weight_bytes + 20 * 2**30, cost=1.0,
                   power=1.0, peak_flops=1.0, mem_bw=1.0)  # room for two 2k-token KV caches


@pytest.mark.parametrize("design", [Design("tight", TIGHT, 1), Design("tight-split", TIGHT, 1,
                                                                      TIGHT, 1)],
                         ids=lambda d: d.name)
def test_memory_pressure_and_starvation_still_complete(db, design):
    """Requests wait for memory (and KV transfers retry) and starved tasks get priority, but
    every request still completes and no machine ever holds more than it has."""
    n = 24
    trace = _trace(np.arange(n) * 0.005, [2000] * n, [30] * n)
    res = simulate_design(design, trace, db, config=MachineConfig(max_preemptions=1))
    assert res.completed == n
    assert np.all(res.ttft_s <= res.e2e_s)
    assert np.all(res.machine_peak_memory <= res.machine_max_memory)
    one_kv = 2030 * BLOOM_176B.kv_bytes_per_token
    assert res.machine_peak_memory.max() > res.machine_max_memory.max() - one_kv  # memory bound
    if design.split:  # the first go to the token machine; once it is full, requests colocate
        assert (res.kv_transfer_s > 0).any()
    # the last request waited behind the others: far slower than running alone
    alone = _ms("a100-80gb", "prompt", 2000) + 29 * _ms("a100-80gb", "token", 1)
    assert res.e2e_s[-1] > 3 * alone


def test_prompt_pool_overflow_borrows_a_machine(db):
    """A burst beyond the prompt machine's pending-token limit still completes (the token
    machine is borrowed into the mixed pool and returned when it drains)."""
    n = 40
    trace = _trace(np.zeros(n), [4000] * n, [3] * n)
    machines, sched = build_cluster(splitwise_design("HA", 1, 1), db,
                                    prompt_max_pending_tokens=4096)
    res = simulate(trace, machines, sched, BLOOM_176B, INFINIBAND)
    assert res.completed == n
    assert all(m.sched_tag is None for m in machines)  # borrowed machines went back
    assert len(sched.prompt_pool) == len(sched.token_pool) == 1 and not sched.mixed_pool
    # borrowing colocated some requests: they moved no KV cache
    assert (res.kv_transfer_s == 0).any() and (res.kv_transfer_s > 0).any()


# -- per-request results streamed to disk ---------------------------------------------------
LIMITS = [{}, {"max_outstanding": 2}, {"end_time_s": 1.5}]


@pytest.mark.parametrize("design", DESIGNS, ids=lambda d: d.label)
@pytest.mark.parametrize("limits", LIMITS, ids=["to the end", "gave up", "clock stopped"])
def test_streamed_results_equal_the_in_memory_ones(db, source, design, limits, tmp_path,
                                                   monkeypatch):
    """Written out in chunks (here of 5, so every chunk boundary is crossed), put back in
    trace order, a streamed run is the in-memory run exactly: every request (finished,
    still running, never arrived), the machine statistics, the latency percentiles."""
    from paperlab.splitwise import read_results, simulator

    trace = poisson_trace(source, rate=8.0, duration_s=6.0, seed=4)

    def run(**kwargs):
        machines, sched = build_cluster(design, db)
        return simulate(trace, machines, sched, BLOOM_176B, INFINIBAND, **limits, **kwargs)

    whole = run()  # default chunk: the trace is one chunk
    monkeypatch.setattr(simulator, "CHUNK", 5)
    memory, streamed = run(), run(out=tmp_path / "run")
    n = len(trace)
    if limits:  # the early stops leave requests running (prompt done) and never arrived
        assert (np.isfinite(memory.ttft_s) & np.isnan(memory.e2e_s)).any()
        assert np.isnan(memory.ttft_s[-1])
    assert streamed.index is not None and sorted(streamed.index.tolist()) == list(range(n))
    ordered = streamed.in_trace_order()
    for name in simulator.OUTCOMES:
        np.testing.assert_array_equal(getattr(memory, name), getattr(whole, name))
        np.testing.assert_array_equal(getattr(ordered, name), getattr(memory, name))
    for name in ("machine_peak_memory", "machine_max_memory", "machine_busy_s"):
        np.testing.assert_array_equal(getattr(streamed, name), getattr(memory, name))
    assert streamed.end_time_s == memory.end_time_s and memory.in_trace_order() is memory
    a, b = latency_summary(memory), latency_summary(streamed)
    assert a.keys() == b.keys()
    for key in a:  # percentiles exact; means up to summation order
        assert b[key] == (a[key] if "mean" not in key else pytest.approx(a[key], rel=1e-12))
    files = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert files == sorted([f"{f}.npy" for f in ("index", *simulator.OUTCOMES)]
                           + ["machines.npz"])
    assert not (tmp_path / "run.partial").exists()
    again = read_results(tmp_path / "run")
    np.testing.assert_array_equal(again.e2e_s, streamed.e2e_s)
    assert np.load(tmp_path / "run" / "ttft_s.npy").shape == (n,)


def test_streaming_refuses_an_existing_folder_and_cleans_up_after_a_failure(db, source,
                                                                          tmp_path,
                                                                          monkeypatch):
    from paperlab.splitwise import read_results, simulator

    trace = poisson_trace(source, rate=8.0, duration_s=2.0, seed=4)
    (tmp_path / "taken").mkdir()
    with pytest.raises(FileExistsError, match="taken exists"):
        simulate_design(baseline_design("A100", 1), trace, db, out=tmp_path / "taken")

    def broken(*args):
        raise RuntimeError("the event loop broke")

    monkeypatch.setattr(simulator, "_run", broken)
    with pytest.raises(RuntimeError, match="broke"):
        simulate_design(baseline_design("A100", 1), trace, db, out=tmp_path / "run")
    assert not (tmp_path / "run").exists() and not (tmp_path / "run.partial").exists()
    with pytest.raises(FileNotFoundError, match="no streamed simulation results"):
        read_results(tmp_path / "taken")
