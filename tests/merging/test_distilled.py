"""ToMe and PiToMe on a DeiT-style ViT (a class and a distillation token): both prefix tokens
stay in front, whole and unmerged, and a no-op setting equals the unpatched model."""

from __future__ import annotations

import copy

import pytest
import torch

from paperlab.merging.energy import PiToMeRule, layer_margins, layer_protect
from paperlab.merging.plan import merge_state
from paperlab.merging.tome import patch as tome_patch
from paperlab.merging.vit import apply_rule, token_schedule
from paperlab.vision.models import ViTSpec

SPEC = ViTSpec(dim=32, depth=4, heads=2, img_size=32, patch_size=4, drop_path=0.0,
               distilled=True)


@pytest.fixture(scope="module")
def distilled():
    torch.manual_seed(0)
    return SPEC.build().eval()


def _pitome(depth, keep):
    return PiToMeRule(keep, layer_margins(depth), layer_protect(depth))


def test_the_model_has_two_prefix_tokens(distilled):
    assert distilled.num_prefix_tokens == 2
    assert token_schedule(distilled)[0] == (66, 66)


@pytest.mark.parametrize("patch", ["tome", "pitome"])
def test_no_op_merging_equals_the_unpatched_distilled_model(distilled, patch):
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        want = distilled(x)
    model = copy.deepcopy(distilled)
    if patch == "tome":
        tome_patch(model, 0)
    else:
        apply_rule(model, _pitome(SPEC.depth, 1.0))
    with torch.no_grad():
        got = model(x)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("patch", ["tome", "pitome"])
def test_class_and_distillation_tokens_are_never_merged(distilled, patch):
    model = copy.deepcopy(distilled)
    if patch == "tome":
        tome_patch(model, 8, trace_source=True)
    else:
        apply_rule(model, _pitome(SPEC.depth, 0.8), trace_source=True)
    with torch.no_grad():
        out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    state = merge_state(model)
    n_out = token_schedule(model)[-1][1]
    assert state.source.shape[1] == n_out < 66
    # token 0 holds exactly the class token, token 1 exactly the distillation token
    for k in (0, 1):
        row = state.source[:, k]
        assert torch.equal(row, torch.nn.functional.one_hot(torch.full((2,), k), 66).to(row))
    assert torch.equal(state.size[:, :2, 0], torch.ones(2, 2))
    # every patch is held by exactly one token
    assert torch.equal(state.source[:, 2:, 2:].sum(1), torch.ones(2, 64))
