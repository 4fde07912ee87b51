"""Bad input at the merging substrate's public entry points: a named error, never torch's, and
no silent wrong answer; NumPy and 0-d tensor numbers accepted like Python's.

Before these checks: uint8 or float64 images into a patched ViT failed inside torch's
convolution; ``tome.patch(model, np.int64(4))`` was refused and a 0-d tensor failed in
``list()``; a NaN margin made every energy NaN, so the merge order was arbitrary and the model
answered anyway; ``ToMeRule((-1, ...))`` made the token count grow; a model patched by another
token reduction was silently re-patched over it.
"""

from __future__ import annotations

import copy
import functools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from paperlab.merging import tome
from paperlab.merging.energy import PiToMeRule, energy_plan, energy_score, layer_margins
from paperlab.merging.plan import mixin_class, per_layer
from paperlab.merging.tome import ToMeRule
from paperlab.merging.vit import apply_rule, token_schedule
from tests.vision.conftest import TINY

FAST = settings(max_examples=15, deadline=None, derandomize=True)
DEPTH = TINY.depth
OTHER_DTYPES = (torch.uint8, torch.int32, torch.int64, torch.bool, torch.float16,
                torch.bfloat16, torch.float64)
PATCHES = {
    "tome": lambda m: tome.patch(m, 2),
    "energy rule": lambda m: apply_rule(m, PiToMeRule(0.9, layer_margins(DEPTH),
                                                      (True,) * DEPTH)),
}
INTEGER_KINDS = (int, np.int32, np.int64, np.array, torch.tensor)
NAN_KINDS = (float, np.float32, torch.tensor)


@functools.cache
def patched(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return PATCHES[name](TINY.build().eval())


def _images(dtype: torch.dtype, batch: int = 2) -> torch.Tensor:
    return torch.randint(0, 2 if dtype == torch.bool else 100, (batch, 3, 32, 32)).to(dtype)


@FAST
@given(dtype=st.sampled_from(OTHER_DTYPES), name=st.sampled_from(sorted(PATCHES)),
       batch=st.integers(1, 3))
def test_images_of_another_dtype_name_the_models_dtype(dtype, name, batch):
    with pytest.raises(TypeError) as exc:
        patched(name)(_images(dtype, batch))
    message = str(exc.value)
    assert "expected images of dtype torch.float32" in message and str(dtype) in message
    if not dtype.is_floating_point:
        assert "normalise" in message


def test_a_float64_model_expects_float64_images():
    model = copy.deepcopy(patched("tome")).double()
    with pytest.raises(TypeError, match="dtype torch.float64 .*got torch.float32"):
        model(torch.randn(1, 3, 32, 32))
    assert model(torch.randn(1, 3, 32, 32, dtype=torch.float64)).dtype == torch.float64


@pytest.mark.parametrize("bad", [np.zeros((1, 3, 32, 32), np.float32), [[0.0]], None])
def test_images_that_are_not_a_tensor(bad):
    with pytest.raises(TypeError, match="expected images as a torch.Tensor"):
        patched("tome")(bad)


@FAST
@given(r=st.integers(0, 7), kind=st.sampled_from(INTEGER_KINDS))
def test_r_of_any_integer_kind_is_accepted(r, kind):
    torch.manual_seed(0)
    model = tome.patch(TINY.build().eval(), kind(r))
    assert token_schedule(model) == token_schedule(tome.patch(TINY.build().eval(), r))
    assert per_layer(np.full(DEPTH, r), DEPTH, "r") == [r] * DEPTH  # a 1-d array per layer


@FAST
@given(bad=st.one_of(st.floats(0.1, 7).filter(lambda v: not v.is_integer()),
                     st.sampled_from([2.0, True, "2", None, np.float32(2), torch.tensor(2.0)])),
       per_layer_entry=st.booleans())
def test_r_that_is_not_an_integer_is_refused(bad, per_layer_entry):
    r = [1] * (DEPTH - 1) + [bad] if per_layer_entry else bad
    name = f"r\\[{DEPTH - 1}\\]" if per_layer_entry else "r"
    with pytest.raises(TypeError, match=f"{name} must be an integer"):
        tome.patch(TINY.build(), r)


@FAST
@given(r=st.integers(-50, -1))
def test_negative_r_is_refused_with_the_range(r):
    with pytest.raises(ValueError, match=f"r must be >= 0, got {r}"):
        tome.patch(TINY.build(), r)
    with pytest.raises(ValueError, match=rf"r\[0\] must be >= 0, got {r}"):
        ToMeRule((r, 0))
    with pytest.raises(TypeError, match="sequence of per-layer counts"):
        ToMeRule(3)  # type: ignore[arg-type]


def _metric() -> torch.Tensor:
    return torch.randn(2, 9, 4, generator=torch.Generator().manual_seed(0))


@FAST
@given(kind=st.sampled_from(NAN_KINDS), value=st.sampled_from([math.nan, math.inf, -math.inf]),
       kernel=st.sampled_from(["elu", "gaussian"]))
def test_non_finite_margins_are_refused_not_scored(kind, value, kernel):
    with pytest.raises(ValueError, match="margin must be a finite number"):
        energy_score(_metric(), kind(value), kernel)
    split = "halves" if kernel == "gaussian" else "alternate"
    with pytest.raises(ValueError, match="margin must be a finite number"):
        energy_plan(_metric(), 2, kind(value), kernel=kernel, split=split)
    margins = (0.5, kind(value), 0.1, 0.0)
    with pytest.raises(ValueError, match=r"margins\[1\] must be a finite number"):
        PiToMeRule(0.9, margins, (True,) * 4, kernel=kernel, split=split)


@FAST
@given(margin=st.floats(1.0, 5.0))
def test_gaussian_margins_below_one_at_construction(margin):
    with pytest.raises(ValueError, match=r"margins\[0\] must be < 1"):
        PiToMeRule(0.9, (margin, 0.5), (True, True), kernel="gaussian", split="halves")


@FAST
@given(ratio=st.floats(0.5, 1.0), kind=st.sampled_from((float, np.float32, np.float64,
                                                        torch.tensor)))
def test_rule_numbers_of_any_kind_become_floats(ratio, kind):
    rule = PiToMeRule(kind(ratio), tuple(kind(m) for m in layer_margins(DEPTH)),
                      (True,) * DEPTH)
    assert type(rule.keep_ratio) is float and rule.keep_ratio == pytest.approx(ratio)
    assert all(type(m) is float for m in rule.margins)
    assert rule.schedule(65, DEPTH, 1) == PiToMeRule(
        float(kind(ratio)), layer_margins(DEPTH), (True,) * DEPTH).schedule(65, DEPTH, 1)


@pytest.mark.parametrize("bad, error, match", [
    (True, TypeError, "keep_ratio must be a real number"),
    ("0.9", TypeError, "keep_ratio must be a real number"),
    (math.nan, ValueError, "keep_ratio must be a finite number"),
    (0.0, ValueError, r"keep_ratio must be in \(0, 1\]"),
    (1.5, ValueError, r"keep_ratio must be in \(0, 1\]"),
])
def test_rule_keep_ratio(bad, error, match):
    with pytest.raises(error, match=match):
        PiToMeRule(bad, layer_margins(DEPTH), (True,) * DEPTH)


def test_rule_options_are_checked_at_construction():
    margins = layer_margins(DEPTH)
    with pytest.raises(ValueError, match="3 protect flags for 4 margins"):
        PiToMeRule(0.9, margins, (True,) * 3)
    with pytest.raises(ValueError, match="kernel must be one of"):
        PiToMeRule(0.9, margins, (True,) * DEPTH, kernel="cosine")
    with pytest.raises(ValueError, match="split='halves' needs protect=True in every block"):
        PiToMeRule(0.9, margins, (False,) + (True,) * 3, split="halves")


class _OtherPatch:
    patch_name = "another token reduction"


def test_a_model_patched_by_another_reduction_is_refused():
    model = TINY.build().eval()
    model.__class__ = mixin_class(_OtherPatch, type(model))
    with pytest.raises(ValueError, match="already patched by another token reduction; token "
                                         "merging .* cannot be layered over it"):
        tome.patch(model, 2)
    again = tome.patch(tome.patch(TINY.build().eval(), 2), 1)  # the same patch: replaced
    assert token_schedule(again)[0] == (65, 64)


def test_tome_on_a_bert_model_takes_numpy_and_tensor_counts():
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=3,
                                     num_attention_heads=2, intermediate_size=32,
                                     max_position_embeddings=32)
    torch.manual_seed(0)
    model = transformers.BertModel(config).eval()
    ids = torch.randint(1, 50, (2, 9))
    with torch.no_grad():
        plain = tome.patch(copy.deepcopy(model), 2)(input_ids=ids).last_hidden_state
        for r in (np.int64(2), torch.tensor(2), np.array([2, 2, 2])):
            got = tome.patch(copy.deepcopy(model), r)(input_ids=ids).last_hidden_state
            torch.testing.assert_close(got, plain)
    with pytest.raises(TypeError, match="r must be an integer, got 1.5"):
        tome.patch(model, 1.5)


def test_images_on_another_device_name_the_models():
    images = torch.zeros(1, 3, 32, 32, device="meta")  # a device other than the model's cpu
    with pytest.raises(ValueError, match=r"expected images on cpu \(the model's device\), got "
                                         "meta"):
        patched("tome")(images)
