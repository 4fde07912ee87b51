"""The fourier_head claims' verdicts on made-up summaries, on both sides of each threshold."""

import pytest

from paperlab.core.claims import verdicts
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
