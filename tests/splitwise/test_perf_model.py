"""Performance models: the profiled piecewise-linear predictor and the roofline model."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.interpolate import interp1d

from paperlab.splitwise import (
    BLOOM_176B,
    DGX_A100,
    DGX_H100,
    PerfDatabase,
    PiecewiseLinear,
    RooflineModel,
)

PERF_HEADER = "model,hardware,prompt_size,batch_size,token_size,prompt_time,token_time," \
              "tensor_parallel\n"


def test_piecewise_linear_matches_scipy_including_extrapolation():
    rng = np.random.default_rng(0)
    xs = np.sort(rng.choice(np.arange(1, 10_000), 12, replace=False)).astype(float)
    ys = rng.uniform(0.01, 2.0, 12)
    ours = PiecewiseLinear(xs.tolist(), ys.tolist())
    ref = interp1d(xs, ys, fill_value="extrapolate")
    for x in [0.5, 1, 3, xs[0], xs[5], (xs[5] + xs[6]) / 2, xs[-1], 2 * xs[-1], 40_000]:
        assert ours(x) == pytest.approx(float(ref(x)), rel=1e-12, abs=1e-12)


def test_median_per_batch_tokens(tmp_path):
    rows = "".join(f"m,hw,{p},{b},128,{t},{t / 10},8\n"
                   for p, b, t in [(100, 1, 10), (100, 1, 30), (100, 1, 20), (50, 2, 1000),
                                   (400, 1, 40), (400, 1, 44)])
    path = tmp_path / "p.csv"
    path.write_text(PERF_HEADER + rows)
    m = PerfDatabase.from_csv(path).model("m", "hw", 8)
    # x=100 holds (100,1) and (50,2): median of 10,30,20,1000 ms = 25 ms
    assert m.prompt_time(100) == pytest.approx(0.025)
    assert m.prompt_time(400) == pytest.approx(0.042)
    assert m.prompt_time(250) == pytest.approx(0.0335)  # halfway
    assert m.token_time(400) == pytest.approx(0.0042)
    assert m.mixed_time(200, 50) == pytest.approx(m.prompt_time(250) * 1.1)
    with pytest.raises(KeyError, match="no profile for"):
        PerfDatabase.from_csv(path).model("m", "other", 8)


@pytest.mark.parametrize("body,needle", [
    ("m,hw,100,1,128,-5,1,8\n", "row 1: times and sizes must be positive"),
    ("m,hw,100,1,128,5,1,8\nm,hw,x,1,128,5,1,8\n", "row 2: bad value"),
])
def test_bad_profile_rows(tmp_path, body, needle):
    path = tmp_path / "p.csv"
    path.write_text(PERF_HEADER + body)
    with pytest.raises(ValueError, match=needle):
        PerfDatabase.from_csv(path)
    path.write_text("model,hardware\nm,hw\n")
    with pytest.raises(ValueError, match="missing column"):
        PerfDatabase.from_csv(path)


def test_power_capped_rows_are_h100_prompt_times_1_3(db):
    h, cap = db.model("bloom-176b", "h100-80gb", 8), db.model("bloom-176b", "h100-80gb-pcap", 8)
    scaled = db.model("bloom-176b", "h100-80gb", 8, prompt_scale=1.3)
    for x in (1, 100, 512, 2048, 4096, 8192, 20000):
        assert cap.prompt_time(x) == pytest.approx(h.prompt_time(x) * 1.3, rel=1e-9)
        assert cap.prompt_time(x) == pytest.approx(scaled.prompt_time(x), rel=1e-9)
        assert cap.token_time(x) == pytest.approx(h.token_time(x), rel=1e-12)


def test_profiled_h100_faster_than_a100(db):
    a, h = db.model("bloom-176b", "a100-80gb", 8), db.model("bloom-176b", "h100-80gb", 8)
    for x in (128, 1024, 4096):
        assert h.prompt_time(x) < a.prompt_time(x)


def test_roofline_shapes():
    def roof(sku):
        return RooflineModel(params=BLOOM_176B.params, weight_bytes=BLOOM_176B.weight_bytes,
                             kv_bytes_per_token=BLOOM_176B.kv_bytes_per_token,
                             flops=8 * sku.peak_flops, mem_bw=8 * sku.mem_bw)
    a, h = roof(DGX_A100), roof(DGX_H100)
    # prefill is compute-bound at long prompts: time grows ~linearly with tokens
    assert a.prompt_time(8192) > 3 * a.prompt_time(2048) > 0
    # decode of a few requests is memory-bound: ~flat in batch size
    assert a.token_time(8) < 1.2 * a.token_time(1)
    assert h.prompt_time(4096) < a.prompt_time(4096)
    assert h.token_time(1) < a.token_time(1)


def test_roofline_cluster_simulates_without_a_profile(azure_code):
    from paperlab.splitwise import poisson_trace, roofline_models, simulate_design, splitwise_design
    models = roofline_models()
    trace = poisson_trace(azure_code, 5.0, 20.0, seed=0)
    res = simulate_design(splitwise_design("HHcap", 1, 1), trace, models)
    assert res.completed == len(trace) and np.all(res.ttft_s <= res.e2e_s)
    cap, h = models["h100-80gb-pcap"], models["h100-80gb"]
    assert cap.prompt_time(8192) > h.prompt_time(8192)
    with pytest.raises(KeyError, match="no performance model for"):
        simulate_design(splitwise_design("HA", 1, 1), trace, {"h100-80gb": h})
