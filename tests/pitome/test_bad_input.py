"""Bad input at ``pitome.patch`` (a timm ViT or a BERT model): named errors, no silent answers;
NumPy and 0-d tensor numbers accepted like Python's.

Before these checks: ``keep_ratio=np.float32(0.9)`` or ``torch.tensor(0.9)`` was refused with
a range message although it is in range; a NaN margin made every energy NaN and the model
merged in an arbitrary order without a word; a margin of 1 on BERT failed only at the first
forward; uint8 images into the patched ViT failed inside torch's convolution.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from paperlab import pitome
from paperlab.merging.plan import merge_state
from paperlab.merging.vit import token_schedule
from tests.vision.conftest import TINY

FAST = settings(max_examples=12, deadline=None, derandomize=True)
FLOAT_KINDS = (float, np.float32, np.float64, np.array, torch.tensor)


def _vit() -> torch.nn.Module:
    torch.manual_seed(0)
    return TINY.build().eval()


def _bert() -> torch.nn.Module:
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=4,
                                     num_attention_heads=2, intermediate_size=32,
                                     max_position_embeddings=32)
    torch.manual_seed(0)
    return transformers.BertForSequenceClassification(config).eval()


IDS = torch.randint(1, 50, (2, 12), generator=torch.Generator().manual_seed(0))


def _bert_tokens(model: torch.nn.Module) -> list[tuple[int, int]]:
    with torch.no_grad():
        model(input_ids=IDS)
    return merge_state(model).tokens


@FAST
@given(ratio=st.floats(0.55, 1.0), kind=st.sampled_from(FLOAT_KINDS))
def test_keep_ratio_of_any_number_kind_is_accepted(ratio, kind):
    value = float(kind(ratio))  # what the kind holds (float32 rounds)
    assert token_schedule(pitome.patch(_vit(), kind(ratio))) == token_schedule(
        pitome.patch(_vit(), value))
    bert = _bert()
    assert _bert_tokens(pitome.patch(copy.deepcopy(bert), kind(ratio))) == _bert_tokens(
        pitome.patch(copy.deepcopy(bert), value))


@FAST
@given(bad=st.sampled_from([True, False, "0.9", None, [0.9], torch.ones(2)]),
       text=st.booleans())
def test_keep_ratio_that_is_not_a_number(bad, text):
    with pytest.raises(TypeError, match="keep_ratio must be a real number"):
        pitome.patch(_bert() if text else _vit(), bad)


@FAST
@given(bad=st.one_of(st.floats(-5, 0), st.floats(1.0, 5).filter(lambda v: v > 1)),
       kind=st.sampled_from(FLOAT_KINDS), text=st.booleans())
def test_keep_ratio_out_of_range(bad, kind, text):
    with pytest.raises(ValueError, match=r"keep_ratio must be in \(0, 1\], got"):
        pitome.patch(_bert() if text else _vit(), kind(bad))


@FAST
@given(bad=st.sampled_from([math.nan, math.inf, -math.inf]), kind=st.sampled_from(FLOAT_KINDS),
       text=st.booleans(), which=st.sampled_from(["keep_ratio", "margin"]))
def test_non_finite_numbers_are_refused(bad, kind, text, which):
    kwargs = {"keep_ratio": 0.9, which: kind(bad)}
    with pytest.raises(ValueError, match=f"{which} must be a finite number"):
        pitome.patch(_bert() if text else _vit(), **kwargs)


@FAST
@given(margin=st.one_of(st.floats(-5, -1).filter(lambda v: v < -1),
                        st.floats(1, 5).filter(lambda v: v > 1)),
       schedule=st.sampled_from(["reference", "pure"]))
def test_vit_margin_out_of_the_similarity_range(margin, schedule):
    with pytest.raises(ValueError, match=r"margin must be in \[-1, 1\], got"):
        pitome.patch(_vit(), 0.9, margin=margin, schedule=schedule)


@pytest.mark.parametrize("schedule", ["reference", "every-layer"])
def test_text_margin_below_one_up_front(schedule):
    with pytest.raises(ValueError, match=r"margin must be in \[-1, 1\), got 1.0"):
        pitome.patch(_bert(), 0.9, margin=1.0, schedule=schedule)
    pitome.patch(_bert(), 0.9, margin=1.0, schedule="pure")  # the ELU rule takes 1


@FAST
@given(margin=st.floats(-1, 0.99), kind=st.sampled_from(FLOAT_KINDS))
def test_margin_of_any_number_kind_gives_the_same_model(margin, kind):
    images = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        got = pitome.patch(_vit(), 0.8, margin=kind(margin), schedule="pure")(images)
        want = pitome.patch(_vit(), 0.8, margin=float(kind(margin)), schedule="pure")(images)
    torch.testing.assert_close(got, want)


@FAST
@given(dtype=st.sampled_from([torch.uint8, torch.int64, torch.float64, torch.float16,
                              torch.bool]))
def test_images_of_another_dtype_into_the_patched_vit(dtype):
    model = pitome.patch(_vit(), 0.9)
    with pytest.raises(TypeError, match=f"expected images of dtype torch.float32 .*{dtype}"):
        model(torch.zeros(1, 3, 32, 32, dtype=dtype))
