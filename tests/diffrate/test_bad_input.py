"""Bad input at DiffRate's public entry points: named errors, no silent answers; NumPy and 0-d
tensor numbers accepted like Python's.

Before these checks: labels out of range failed inside ``F.cross_entropy`` (a device-side
assert on a GPU); a tensor given as the image set failed on ``.images``; a rates file of
binary bytes raised ``UnicodeDecodeError`` without the file's name; ``uniform_rates(model,
nan)`` returned the keep-all schedule; ``SearchConfig(lam=-5)`` searched away from the
target; ``SearchConfig(epochs=1.5)`` failed in ``range``; ``diffrate.apply`` on a model that
PiToMe or ToMe had patched silently replaced their merging (and the other way round).
"""

from __future__ import annotations

import copy
import dataclasses
import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paperlab.diffrate.model import SearchConfig, apply, flops_range, search, uniform_rates
from paperlab.diffrate.rates import RateProxy, Rates
from paperlab.merging import tome
from paperlab.merging.energy import PiToMeRule, layer_margins
from paperlab.merging.vit import apply_rule
from paperlab.vision.data import ImageSet
from tests.diffrate.conftest import TINY

FAST = settings(max_examples=12, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])
N = 65
FLOAT_KINDS = (float, np.float32, np.float64, np.array, torch.tensor)
INT_KINDS = (int, np.int32, np.int64, np.array, torch.tensor)
QUICK = SearchConfig(epochs=1, batch_size=8)


def _vit(spec=TINY) -> torch.nn.Module:
    torch.manual_seed(0)
    return spec.build().eval()


MODEL = _vit()
LEAST, FULL = flops_range(MODEL)


def _data(n: int = 8, labels: torch.Tensor | None = None, size: int = 32) -> ImageSet:
    gen = torch.Generator().manual_seed(2)
    images = torch.randint(0, 256, (n, 3, size, size), generator=gen, dtype=torch.uint8)
    if labels is None:
        labels = torch.randint(0, 10, (n,), generator=gen)
    return ImageSet(images, labels, tuple(f"c{i}" for i in range(10)), "synthetic")


# --- search -----------------------------------------------------------------------------------


@FAST
@given(bad=st.one_of(st.integers(10, 1000), st.integers(-1000, -1)), at=st.integers(0, 7))
def test_labels_out_of_range_are_refused_before_the_search(bad, at):
    labels = torch.randint(0, 10, (8,), generator=torch.Generator().manual_seed(3))
    labels[at] = bad
    low, high = int(labels.min()), int(labels.max())
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 10\) \(the model's "
                                         rf"classes\), got labels from {low} to {high}"):
        search(MODEL, _data(labels=labels), 0.5 * FULL / 1e9, QUICK)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bool])
def test_labels_that_are_not_class_indices(dtype):
    with pytest.raises(TypeError, match=f"labels must be integer class indices, got {dtype}"):
        search(MODEL, _data(labels=torch.zeros(8, dtype=dtype)), 0.5 * FULL / 1e9, QUICK)


def test_int32_labels_are_class_indices_too():
    data = _data()
    narrow = ImageSet(data.images, data.labels.int(), data.classes, data.source)
    assert search(MODEL, narrow, 0.5 * FULL / 1e9, QUICK) == search(MODEL, data,
                                                                   0.5 * FULL / 1e9, QUICK)


@pytest.mark.parametrize("bad", [
    torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8), np.zeros((8, 3, 32, 32)),
    [(torch.zeros(3, 32, 32), 0)], None])
def test_an_image_set_is_expected(bad):
    with pytest.raises(TypeError, match="data must be a paperlab.vision.data.ImageSet"):
        search(MODEL, bad, 0.5 * FULL / 1e9, QUICK)


def test_images_of_another_size_and_a_model_without_head():
    with pytest.raises(ValueError, match=r"expected images of shape \(B, 3, 32, 32\)"):
        search(MODEL, _data(size=16), 0.5 * FULL / 1e9, QUICK)
    headless = _vit(dataclasses.replace(TINY, num_classes=0))
    least, full = flops_range(headless)
    with pytest.raises(ValueError, match="classifier head"):
        search(headless, _data(), 0.5 * full / 1e9, QUICK)


@FAST
@given(kind=st.sampled_from(FLOAT_KINDS))
def test_a_target_of_any_number_kind_is_accepted(kind):
    target = 0.5 * FULL / 1e9
    assert search(MODEL, _data(), kind(target), QUICK) == search(
        MODEL, _data(), float(kind(target)), QUICK)


@pytest.mark.parametrize("bad, error, match", [
    (math.nan, ValueError, "target_gflops must be a finite number"),
    (True, TypeError, "target_gflops must be a real number"),
    ("0.01", TypeError, "target_gflops must be a real number"),
    (-1.0, ValueError, "outside the reachable range"),
])
def test_bad_targets(bad, error, match):
    with pytest.raises(error, match=match):
        search(MODEL, _data(), bad, QUICK)


def test_config_must_be_a_search_config():
    with pytest.raises(TypeError, match="config must be a SearchConfig, got"):
        search(MODEL, _data(), 0.5 * FULL / 1e9, {"epochs": 1})


@FAST
@given(lam=st.one_of(st.floats(-100, 0), st.sampled_from([-0.0, 0.0])))
def test_the_flops_weight_must_be_positive(lam):
    with pytest.raises(ValueError, match=r"lam must be > 0, got"):
        SearchConfig(lam=lam)


@FAST
@given(name=st.sampled_from(["lr", "lr_min", "lam"]),
       bad=st.sampled_from([math.nan, math.inf]), kind=st.sampled_from(FLOAT_KINDS))
def test_rates_that_are_not_finite(name, bad, kind):
    with pytest.raises(ValueError, match=f"{name} must be a finite number"):
        SearchConfig(**{name: kind(bad)})


@FAST
@given(name=st.sampled_from(["epochs", "batch_size", "granularity", "seed"]),
       bad=st.one_of(st.floats(0.1, 50).filter(lambda v: not v.is_integer()),
                     st.sampled_from([2.0, True, "3", None])))
def test_counts_that_are_not_integers(name, bad):
    with pytest.raises(TypeError, match=f"{name} must be an integer"):
        SearchConfig(**{name: bad})


@FAST
@given(epochs=st.integers(1, 9), kind=st.sampled_from(INT_KINDS),
       lr=st.floats(0.01, 1), fkind=st.sampled_from(FLOAT_KINDS))
def test_config_numbers_of_any_kind_become_python_numbers(epochs, kind, lr, fkind):
    cfg = SearchConfig(epochs=kind(epochs), batch_size=kind(4), lr=fkind(lr),
                       lr_min=fkind(lr / 2))
    assert type(cfg.epochs) is int and cfg.epochs == epochs and type(cfg.lr) is float
    assert cfg == SearchConfig(epochs=epochs, batch_size=4, lr=float(fkind(lr)),
                               lr_min=float(fkind(lr / 2)))


def test_range_messages():
    with pytest.raises(ValueError, match=r"lr_min must be in \(0, 0.01\], got 0.1"):
        SearchConfig(lr=0.01, lr_min=0.1)
    with pytest.raises(ValueError, match="epochs must be >= 1, got 0"):
        SearchConfig(epochs=0)
    with pytest.raises(TypeError, match="granularity must be an integer, got 2.5"):
        RateProxy(64, 2.5)


# --- uniform_rates ----------------------------------------------------------------------------


@FAST
@given(bad=st.sampled_from([math.nan, math.inf, -math.inf]), kind=st.sampled_from(FLOAT_KINDS))
def test_uniform_rates_refuses_non_finite_flops(bad, kind):
    with pytest.raises(ValueError, match="flops must be a finite number"):
        uniform_rates(MODEL, kind(bad))


@FAST
@given(factor=st.one_of(st.floats(0, 0.99), st.floats(1.01, 3)))
def test_uniform_rates_out_of_range(factor):
    flops = factor * (LEAST if factor < 1 else FULL)
    with pytest.raises(ValueError, match="outside the reachable range"):
        uniform_rates(MODEL, flops)


@pytest.mark.parametrize("kind", FLOAT_KINDS)
def test_uniform_rates_takes_any_number_kind(kind):
    flops = 0.7 * FULL
    assert uniform_rates(MODEL, kind(flops)) == uniform_rates(MODEL, float(kind(flops)))


# --- rates files and schedules ----------------------------------------------------------------


@FAST
@given(garbage=st.binary(min_size=1, max_size=200))
def test_a_rates_file_of_garbage_is_named(tmp_path_factory, garbage):
    path = tmp_path_factory.mktemp("rates") / "rates.json"
    path.write_bytes(garbage)
    with pytest.raises(ValueError) as exc:
        Rates.load(path)
    assert f"rates file {path}" in str(exc.value)


def test_binary_garbage_and_wrong_contents_say_what_is_wrong(tmp_path):
    path = tmp_path / "r.json"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff")
    with pytest.raises(ValueError, match=f"rates file {path} is not text"):
        Rates.load(path)
    path.write_text('{"num_tokens": 65.0, "prune": [65], "merge": [65]}')
    with pytest.raises(ValueError, match=f"rates file {path}: num_tokens must be an integer"):
        Rates.load(path)
    path.write_text('{"num_tokens": 65, "prune": [65, NaN], "merge": [65, 3]}')
    with pytest.raises(ValueError, match=rf"rates file {path}: prune\[1\] must be an integer"):
        Rates.load(path)


@FAST
@given(kind=st.sampled_from(INT_KINDS))
def test_rates_of_any_integer_kind(kind):
    rates = Rates(tuple(kind(v) for v in (N, 40, 30)), tuple(kind(v) for v in (N, 33, 20)),
                  kind(N))
    assert rates == Rates((N, 40, 30), (N, 33, 20), N)
    assert all(type(v) is int for v in (*rates.prune, *rates.merge, rates.num_tokens))


@pytest.mark.parametrize("num_tokens", [65.0, True, "65", None])
def test_rates_token_count_must_be_an_integer(num_tokens):
    with pytest.raises(TypeError, match="num_tokens must be an integer"):
        Rates((N,), (N,), num_tokens)


# --- one token reduction per model ------------------------------------------------------------


PATCHED = {
    "PiToMe": lambda m: apply_rule(m, PiToMeRule(0.9, layer_margins(4), (True,) * 4)),
    "ToMe": lambda m: tome.patch(m, 2),
}


@pytest.mark.parametrize("name", sorted(PATCHED))
def test_apply_refuses_a_model_patched_for_token_merging(name):
    model = PATCHED[name](copy.deepcopy(MODEL))
    with pytest.raises(ValueError, match="already patched by token merging .*; DiffRate "
                                         r"\(diffrate.apply\) cannot be layered over it"):
        apply(model, Rates.keep_all(N, 4))
    with pytest.raises(ValueError, match="already patched by token merging"):
        search(model, _data(), 0.5 * FULL / 1e9, QUICK)


@pytest.mark.parametrize("name", sorted(PATCHED))
def test_token_merging_refuses_a_model_diffrate_applied(name):
    model = apply(copy.deepcopy(MODEL), Rates.keep_all(N, 4))
    with pytest.raises(ValueError, match=r"already patched by DiffRate \(diffrate.apply\)"):
        PATCHED[name](model)
    apply(model, Rates((N, 40, 30, 20), (N, 33, 20, 20), N))  # applying again replaces
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 10)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float64, torch.int64])
def test_images_of_another_dtype_into_the_applied_model(dtype):
    model = apply(copy.deepcopy(MODEL), Rates((N, 40, 30, 20), (N, 33, 20, 20), N))
    with pytest.raises(TypeError, match=f"expected images of dtype torch.float32 .*{dtype}"):
        model(torch.zeros(1, 3, 32, 32, dtype=dtype))
