"""Bad input at the simulator's public entry points raises ValueError/TypeError naming it.

Before these checks: a float or NaN token count passed the trace checks (NaN fails every
``<= 0`` test), ``MachineConfig(max_batch_size=0)`` admitted nothing and every request came
back NaN, a colocated ``Design`` with ``n_token=-3`` had ``num_machines == -2``, a NaN link
bandwidth or rate reached the event heap, and ``poisson_trace`` / ``PiecewiseLinear`` /
``RooflineModel`` / ``design_by_name`` failed inside numpy or Python with unrelated messages,
and a request whose KV cache fits no machine was never admitted and came back NaN.
No staged data needed.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paperlab.splitwise import (
    BLOOM_176B,
    DGX_A100,
    INFINIBAND,
    Design,
    Link,
    MachineConfig,
    PiecewiseLinear,
    RooflineModel,
    SearchSpace,
    Trace,
    TraceError,
    baseline_design,
    baseline_for_budget,
    budget_splits,
    build_cluster,
    design_by_name,
    poisson_trace,
    roofline_models,
    simulate,
    simulate_design,
    splitwise_design,
)

FAST = settings(max_examples=20, deadline=None, derandomize=True)
BAD_REALS = st.sampled_from([float("nan"), float("inf"), -float("inf"), -1.0, 0.0])


def _trace(n: int = 3) -> Trace:
    return Trace(np.arange(n, dtype=float), np.full(n, 100), np.full(n, 4), np.arange(n))


@FAST
@given(n=st.integers(1, 6), data=st.data())
def test_trace_columns_of_the_wrong_kind(n, data):
    field = data.draw(st.sampled_from(["prompt_tokens", "output_tokens", "request_id"]))
    bad = data.draw(st.sampled_from([
        np.full(n, 2.5), np.full(n, np.nan), np.array(["7"] * n), np.ones(n, dtype=bool),
    ]))
    columns = {"arrival_s": np.arange(n, dtype=float), "prompt_tokens": np.full(n, 10),
               "output_tokens": np.full(n, 3), "request_id": np.arange(n), field: bad}
    with pytest.raises(TraceError, match=rf"{field} must hold integers"):
        Trace(**columns)


@pytest.mark.parametrize("columns,problem", [
    ({"arrival_s": np.zeros((2, 2))}, "arrival_s must be a 1-D numpy array"),
    ({"prompt_tokens": [1, 2, 3]}, "prompt_tokens must be a 1-D numpy array"),
    ({"arrival_s": np.array(["now"] * 3)}, "arrival_s must hold real numbers"),
    ({"arrival_s": np.array([0.0, np.nan, 2.0])}, "row 2: arrival time is not a finite number"),
    ({"output_tokens": np.array([3, 0, 3])}, "row 2: output size must be a positive"),
    ({"prompt_tokens": np.array([5, 5])}, "prompt_tokens has 2 entries, arrival_s has 3"),
])
def test_trace_shapes_and_values(columns, problem):
    base = {"arrival_s": np.arange(3, dtype=float), "prompt_tokens": np.full(3, 10),
            "output_tokens": np.full(3, 3), "request_id": np.arange(3)}
    with pytest.raises(TraceError, match=problem):
        Trace(**{**base, **columns})


@FAST
@given(rate=st.one_of(BAD_REALS, st.just(1.0)), duration=st.one_of(BAD_REALS, st.just(5.0)),
       max_requests=st.one_of(st.none(), st.integers(-5, -1), st.just(2.5)))
def test_poisson_trace_parameters(rate, duration, max_requests):
    bad_rate = not (math.isfinite(rate) and rate > 0)
    bad_duration = not (math.isfinite(duration) and duration > 0)
    if not (bad_rate or bad_duration or max_requests is not None):
        return  # all valid: nothing to reject
    problem = "rate" if bad_rate else "duration_s" if bad_duration else "max_requests"
    with pytest.raises(ValueError, match=rf"{problem} must be"):
        poisson_trace(_trace(), rate, duration, max_requests=max_requests)


def test_poisson_trace_needs_a_source():
    with pytest.raises(ValueError, match="source trace is empty"):
        poisson_trace(_trace(0), 1.0, 5.0)


@FAST
@given(xs=st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=2, max_size=6),
       extra=st.integers(-1, 1))
def test_piecewise_linear_knots(xs, extra):
    ys = [1.0] * (len(xs) + extra)
    finite = all(math.isfinite(x) for x in xs)
    increasing = all(b > a for a, b in zip(xs, xs[1:], strict=False))
    if extra == 0 and finite and increasing:
        assert PiecewiseLinear(xs, ys)(xs[0]) == 1.0
        return
    problem = ("one y per x point" if extra else "must be finite" if not finite
               else "strictly increasing")
    with pytest.raises(ValueError, match=problem):
        PiecewiseLinear(xs, ys)


@FAST
@given(field=st.sampled_from(["params", "flops", "mem_bw", "mfu", "mbu", "weight_bytes",
                              "kv_bytes_per_token", "mean_context", "overhead_s"]),
       value=st.sampled_from([float("nan"), float("inf"), -1.0]))
def test_roofline_parameters(field, value):
    good = {"params": 1e9, "weight_bytes": 2e9, "kv_bytes_per_token": 1e5, "flops": 1e15,
            "mem_bw": 1e12}
    with pytest.raises(ValueError, match=rf"RooflineModel\.{field} must be"):
        RooflineModel(**{**good, field: value})
    with pytest.raises(ValueError, match=r"RooflineModel\.flops must be a positive"):
        RooflineModel(**{**good, "flops": 0.0})  # was ZeroDivisionError at the first call


@FAST
@given(field=st.sampled_from(["max_batch_size", "max_batch_tokens", "max_preemptions",
                              "chunk_size"]),
       value=st.one_of(st.integers(-10, -1), st.sampled_from([0, 2.5, True, "4"])))
def test_machine_config_limits(field, value):
    if field == "max_preemptions" and value == 0:
        return  # zero waits before priority is allowed
    with pytest.raises(ValueError, match=rf"{field} must be"):
        MachineConfig(**{field: value})


@pytest.mark.parametrize("kwargs,problem", [
    ({"bandwidth": float("nan")}, "bandwidth must be a positive finite"),
    ({"bandwidth": 0.0}, "bandwidth must be a positive finite"),
    ({"bandwidth": 1e9, "latency_s": -1e-3}, "latency_s must be a non-negative"),
    ({"bandwidth": 1e9, "latency_s": float("inf")}, "latency_s must be a non-negative"),
    ({"bandwidth": 1e9, "mode": "carrier-pigeon"}, "unknown KV transfer mode"),
])
def test_link_parameters(kwargs, problem):
    with pytest.raises(ValueError, match=problem):
        Link(**kwargs)


@pytest.mark.parametrize("make,problem", [
    (lambda: Design("x", DGX_A100, 1.5), "n_prompt must be a whole number"),
    (lambda: Design("x", DGX_A100, 2, None, -3), "colocated design has no token machines"),
    (lambda: Design("x", DGX_A100, 2, DGX_A100, 0), "needs at least one token machine"),
    (lambda: baseline_design("A100", 0), "at least one prompt machine"),
    (lambda: baseline_design("A100", 1, chunk_size=0), "chunk_size must be a positive"),
    (lambda: baseline_design("B200", 1), r"unknown baseline hardware 'B200'.*A100"),
    (lambda: design_by_name("Mystery-9", 1), "unknown design 'Mystery-9'"),
    (lambda: design_by_name("Splitwise-XY", 1, 1), "unknown Splitwise design 'XY'"),
])
def test_design_construction(make, problem):
    with pytest.raises(ValueError, match=problem):
        make()


@FAST
@given(budget=BAD_REALS, by=st.sampled_from(["power", "cost"]))
def test_budgets(budget, by):
    with pytest.raises(ValueError, match=rf"budget must be a positive finite {by}"):
        budget_splits("HA", budget, by=by)
    with pytest.raises(ValueError, match=rf"budget must be a positive finite {by}"):
        baseline_for_budget("A100", budget, by=by)


def test_budget_options():
    with pytest.raises(ValueError, match="budget must be by 'power' or 'cost'"):
        budget_splits("HA", 100.0, by="money")
    with pytest.raises(ValueError, match="step and min_machines must be >= 1"):
        budget_splits("HA", 100.0, step=0)


@FAST
@given(field=st.sampled_from(["rates", "duration_s", "give_up_s"]), value=BAD_REALS)
def test_search_space(field, value):
    if field == "give_up_s" and value == 0.0:
        return  # 0 = never give up
    arg = (value,) if field == "rates" else value
    with pytest.raises(ValueError, match=rf"{field} must be"):
        SearchSpace(**{field: arg})


def test_simulator_arguments():
    perf = roofline_models()
    machines, sched = build_cluster(baseline_design("A100", 1), perf)
    with pytest.raises(ValueError, match="end_time_s must be a positive"):
        simulate(_trace(), machines, sched, BLOOM_176B, INFINIBAND, end_time_s=float("nan"))
    with pytest.raises(TypeError, match="trace must be a Trace"):
        simulate([(0.0, 10, 3)], machines, sched, BLOOM_176B, INFINIBAND)
    with pytest.raises(TypeError, match="perf must be a PerfDatabase or a dict"):
        build_cluster(baseline_design("A100", 1), "perf_model.csv")
    with pytest.raises(KeyError, match="no performance model for a100-80gb"):
        build_cluster(baseline_design("A100", 1), {})
    # what the checks let through still simulates: an empty trace, a valid one
    assert simulate_design(baseline_design("A100", 1), _trace(0), perf).completed == 0
    assert simulate_design(baseline_design("A100", 1), _trace(), perf).completed == 3


@FAST
@given(row=st.integers(0, 2), split=st.booleans())
def test_request_that_can_never_fit(row, split):
    """A KV cache larger than any machine's free memory was never admitted: NaN, silently."""
    perf = roofline_models()
    room = DGX_A100.memory - BLOOM_176B.weight_bytes
    huge = room // BLOOM_176B.kv_bytes_per_token + 1
    prompts = np.full(3, 100)
    prompts[row] = huge
    trace = Trace(np.arange(3, dtype=float), prompts, np.full(3, 4), np.arange(3))
    design = splitwise_design("AA", 1, 1) if split else baseline_design("A100", 2)
    with pytest.raises(ValueError, match=rf"request {row + 1} \(prompt {huge}, output 4 tokens\) "
                                         r"needs .* GB of KV cache"):
        simulate_design(design, trace, perf)


def test_numpy_integers_are_counts():
    assert Design("x", DGX_A100, np.int64(2)).num_machines == 2
    assert MachineConfig(max_batch_size=np.int64(8), chunk_size=np.int32(256)).max_batch_size == 8
