"""The fourier_head claims' verdicts on made-up summaries, on both sides of each threshold."""

import pytest

from paperlab.core.claims import judge, verdicts
from paperlab.fourier_head import SYSTEM


def judged(kl=0.72, smooth=0.51, quick=False):
    summary = {"kl_gmm2_linear": 1.0, "kl_gmm2_fourier_n12": kl,
               "smoothness_gmm2_linear": 1.0, "smoothness_gmm2_fourier_n12": smooth}
    return verdicts(SYSTEM.claims, summary, quick)


@pytest.mark.parametrize("ratio, expected", [
    (0.72, "reproduced"), (0.63, "reproduced"), (0.81, "reproduced"), (0.61, "direction"),
    (0.83, "direction"), (0.99, "direction"), (1.0, "not reproduced"), (1.2, "not reproduced"),
])
def test_kl_ratio(ratio, expected):
    assert judged(kl=ratio)["kl_gmm2"] == expected


@pytest.mark.parametrize("ratio, expected", [
    (0.51, "reproduced"), (0.42, "reproduced"), (0.6, "reproduced"), (0.4, "direction"),
    (0.62, "direction"), (1.0, "not reproduced"), (1.5, "not reproduced"),
])
def test_smoothness_ratio(ratio, expected):
    assert judged(smooth=ratio)["smoothness_gmm2"] == expected


def test_missing_keys_and_the_quick_size():
    assert verdicts(SYSTEM.claims, {"kl_gmm2_linear": 1.0}) == {
        "kl_gmm2": "not measured", "smoothness_gmm2": "not measured"}
    assert set(judged(quick=True).values()) == {"direction"}


def ci(lo, hi):
    return {"lo": lo, "hi": hi, "level": 0.95, "method": "t over 4 seeds of the per-seed log-ratio"}


@pytest.mark.parametrize("point, interval, expected", [
    (0.75, ci(0.66, 0.85), "reproduced"),  # reaches the paper's 0.72 ± 0.1
    (0.50, ci(0.45, 0.60), "direction"),  # clear of 1, better than the paper's band
    (0.90, ci(0.86, 0.95), "direction"),  # clear of 1, short of the band
    (0.80, ci(0.55, 1.15), "within noise"),  # holds 1: one seed's luck could explain it
    (1.10, ci(0.95, 1.30), "within noise"),
    (1.20, ci(1.05, 1.40), "not reproduced"),  # the Fourier head is worse, beyond the noise
])
def test_kl_ratio_is_judged_on_its_seed_interval(point, interval, expected):
    summary = {"kl_gmm2_linear": 1.0, "kl_gmm2_fourier_n12": point,
               "kl_gmm2_fourier_n12_over_linear_ci95": interval,
               "smoothness_gmm2_linear": 1.0, "smoothness_gmm2_fourier_n12": 0.5}
    assert verdicts(SYSTEM.claims, summary)["kl_gmm2"] == expected
    quick = verdicts(SYSTEM.claims, summary, True)["kl_gmm2"]
    assert quick == ("direction" if expected == "reproduced" else expected)


@pytest.mark.parametrize("point, interval, expected", [
    (0.55, ci(0.45, 0.62), "reproduced"), (0.3, ci(0.2, 0.38), "direction"),
    (0.6, ci(0.08, 4.45), "within noise"), (1.5, ci(1.2, 1.9), "not reproduced"),
])
def test_smoothness_ratio_is_judged_on_its_seed_interval(point, interval, expected):
    summary = {"kl_gmm2_linear": 1.0, "kl_gmm2_fourier_n12": 0.72,
               "smoothness_gmm2_linear": 1.0, "smoothness_gmm2_fourier_n12": point,
               "smoothness_gmm2_fourier_n12_over_linear_ci95": interval}
    assert verdicts(SYSTEM.claims, summary)["smoothness_gmm2"] == expected


def test_one_seed_has_no_interval_and_says_so():
    summary = {"kl_gmm2_linear": 1.0, "kl_gmm2_fourier_n12": 0.72,
               "kl_gmm2_fourier_n12_over_linear_ci95": None,
               "smoothness_gmm2_linear": 1.0, "smoothness_gmm2_fourier_n12": 0.51,
               "smoothness_gmm2_fourier_n12_over_linear_ci95": None}
    for j in judge(SYSTEM.claims, summary, quick=False):
        assert j.verdict == "reproduced" and j.interval is None
        assert "no interval" in j.reason
