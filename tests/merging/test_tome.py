"""ToMe: equivalence at r = 0, agreement with a slow reference, invariants, clear errors."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from paperlab.merging import tome
from paperlab.merging.plan import MergePlan, merge_state, merge_wavg
from paperlab.merging.vit import apply_rule, group_map, token_schedule


@pytest.mark.parametrize("fused", [None, False])
def test_r0_equals_unpatched_small_vit(tiny_vit, fused):
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        expected = tiny_vit(x)
        got = tome.patch(copy.deepcopy(tiny_vit), 0, fused=fused)(x)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)


def test_r0_equals_unpatched_timm_vit_224(timm_vit_224):
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        expected = timm_vit_224(x)
        patched = tome.patch(copy.deepcopy(timm_vit_224), 0, fused=False)
        got = patched(x)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)
    assert merge_state(patched).tokens == [(197, 197)] * 12


def test_timm_vit_224_reference_setting():
    """ToMe's r = 13 on 12 layers leaves 41 of 197 tokens (the spec's figure)."""
    timm = pytest.importorskip("timm")
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False)
    tome.patch(model, 13)
    assert token_schedule(model)[-1] == (54, 41)


def _slow_tome(metric, r):
    """ToMe on one image, written with loops: class token at 0, A = even positions >= 2,
    B = odd positions; the top-r A->B edges by cosine merge; output [cls, unmerged A, B]."""
    m = F.normalize(metric, dim=-1)
    n = m.shape[0]
    a = list(range(2, n, 2))
    b = list(range(1, n, 2))
    best = {i: max(b, key=lambda j: float(m[i] @ m[j])) for i in a}
    score = {i: float(m[i] @ m[best[i]]) for i in a}
    merged = sorted(a, key=lambda i: -score[i])[:r]
    keep = [0] + [i for i in a if i not in merged] + b
    return keep, {i: keep.index(best[i]) for i in merged}


def test_matching_agrees_with_slow_reference():
    torch.manual_seed(1)
    metric = torch.randn(3, 17, 8)
    plan = tome.bipartite_soft_matching(metric, 5)
    for i in range(3):
        keep, dst = _slow_tome(metric[i], 5)
        assert plan.keep[i].tolist() == keep
        assert dict(zip(plan.src[i].tolist(), plan.dst[i].tolist(), strict=True)) == dst


def test_wavg_sizes_and_class_token():
    torch.manual_seed(2)
    x = torch.randn(2, 17, 4)
    plan = tome.bipartite_soft_matching(torch.randn(2, 17, 8), 6)
    merged, size = merge_wavg(plan, x)
    assert merged.shape == (2, 11, 4) and size.sum().item() == 2 * 17
    torch.testing.assert_close(merged[:, 0], x[:, 0])
    merged2, size2 = merge_wavg(tome.bipartite_soft_matching(torch.randn(2, 11, 8), 4),
                                merged, size)
    assert size2.sum().item() == 2 * 17
    # size-weighted mean: the sum of x * size over tokens is preserved
    torch.testing.assert_close((merged2 * size2).sum(1), x.sum(1))


def test_patched_model_invariants(tiny_vit):
    tome.patch(tiny_vit, 7, trace_source=True)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        tiny_vit(x)
    state = merge_state(tiny_vit)
    assert state.tokens == token_schedule(tiny_vit) == [(65, 58), (58, 51), (51, 44), (44, 37)]
    assert torch.all(state.size.sum(dim=(1, 2)) == 65)
    # class token never merged: output token 0 holds exactly input token 0
    assert torch.equal(state.source[:, 0], F.one_hot(torch.tensor(0), 65).float().expand(2, -1))
    assert torch.all(state.source.sum(dim=1) == 1)  # every input token in exactly one group
    groups = group_map(state.source, 1, 8)
    assert groups.shape == (2, 8, 8) and groups.min() >= 1


def test_prop_attn_and_fused_paths(tiny_vit):
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        explicit = tome.patch(copy.deepcopy(tiny_vit), 7, fused=False)(x)
        fused = tome.patch(copy.deepcopy(tiny_vit), 7, fused=True)(x)
        no_prop = tome.patch(copy.deepcopy(tiny_vit), 7, prop_attn=False, fused=False)(x)
    torch.testing.assert_close(fused, explicit, atol=1e-5, rtol=1e-5)
    assert (no_prop - explicit).abs().max() > 1e-4


def test_repatch_replaces_the_rule(tiny_vit):
    tome.patch(tiny_vit, 7)
    tome.patch(tiny_vit, [0, 4, 0, 4])
    assert token_schedule(tiny_vit) == [(65, 65), (65, 61), (61, 61), (61, 57)]


def test_errors(tiny_vit):
    with pytest.raises(ValueError, match="too few tokens: block 3 has 22 patch tokens"):
        tome.patch(tiny_vit, 14)
    with pytest.raises(ValueError, match="r must be >= 0, got -1"):
        tome.patch(tiny_vit, -1)
    with pytest.raises(ValueError, match="3 entries for 4 layers"):
        tome.patch(tiny_vit, [1, 2, 3])
    with pytest.raises(ValueError, match="out of range"):
        tome.bipartite_soft_matching(torch.randn(1, 9, 4), 5)
    with pytest.raises(TypeError, match="VisionTransformer"):
        tome.patch(torch.nn.Linear(2, 2), 1)
    tome.patch(tiny_vit, 2)
    with pytest.raises(ValueError, match=r"expected images of shape \(B, 3, 32, 32\)"):
        tiny_vit(torch.randn(1, 3, 64, 64))


def test_custom_rule_plugs_in(tiny_vit):
    """A rule from outside (as DiffRate will write) that drops the last patch token."""

    class DropLast:
        def plan(self, metric, layer, prefix):
            b, n, _ = metric.shape
            keep = torch.arange(n - 1).expand(b, -1)
            empty = keep[:, :0]
            return MergePlan(keep, empty, empty)

        def schedule(self, num_tokens, depth, prefix):
            return [(num_tokens - i, num_tokens - i - 1) for i in range(depth)]

    apply_rule(tiny_vit, DropLast())
    with torch.no_grad():
        tiny_vit(torch.randn(1, 3, 32, 32))
    assert merge_state(tiny_vit).tokens == token_schedule(tiny_vit)
    assert merge_state(tiny_vit).size.sum() == 61


def test_tome_counts_carry_what_bipartite_matching_cannot_merge():
    assert tome.tome_counts([(65, 65), (65, 50), (50, 40)]) == [0, 15, 10]
    assert tome.tome_counts([(65, 65), (65, 20), (20, 10)]) == [0, 32, 16]
    # two prefix tokens (class, distillation): half of the other 63 is 31
    assert tome.tome_counts([(65, 65), (65, 20), (20, 10)], prefix=2) == [0, 31, 16]
