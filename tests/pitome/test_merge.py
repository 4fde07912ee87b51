"""PiToMe: equivalence at keep_ratio 1, the energy rule against a slow reference, invariants,
the reference schedule, the paper's DeiT-S FLOPs, and clear errors."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from paperlab import pitome
from paperlab.merging.plan import merge_state, merge_wavg
from paperlab.merging.vit import token_schedule
from paperlab.pitome import PiToMeRule, energy_score, layer_margins, pitome_plan
from paperlab.vision.flops import vit_flops


def test_keep_ratio_one_equals_unpatched(tiny_vit, timm_vit_224):
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(pitome.patch(copy.deepcopy(tiny_vit), 1.0)(x), tiny_vit(x),
                                   atol=1e-6, rtol=0)
        x = torch.randn(1, 3, 224, 224)
        patched = pitome.patch(copy.deepcopy(timm_vit_224), 1.0, fused=False)
        torch.testing.assert_close(patched(x), timm_vit_224(x), atol=1e-6, rtol=0)


def test_energy_against_loops():
    torch.manual_seed(0)
    m = F.normalize(torch.randn(1, 6, 5), dim=-1)
    expected = [
        sum(F.elu(m[0, i] @ m[0, j] - 0.4).item() for j in range(6)) / 6 for i in range(6)
    ]
    torch.testing.assert_close(energy_score(m, 0.4)[0], torch.tensor(expected))


def _clustered(b=2, clusters=3, per=6, loners=4, dim=16, seed=0):
    """Patch keys in tight clusters (high energy) plus isolated tokens (low energy)."""
    g = torch.Generator().manual_seed(seed)
    centres = F.normalize(torch.randn(clusters, dim, generator=g), dim=-1) * 4
    tight = centres.repeat_interleave(per, 0) + 0.05 * torch.randn(clusters * per, dim, generator=g)
    lone = torch.randn(loners, dim, generator=g) * 4
    patches = torch.cat([tight, lone])[torch.randperm(clusters * per + loners, generator=g)]
    cls = torch.randn(1, dim, generator=g)
    return torch.cat([cls, patches])[None].expand(b, -1, -1).clone()


def test_pure_rule_against_slow_reference():
    metric = _clustered()
    n = metric.shape[1]
    t = n - 1
    ratio = 0.6
    r = math.floor(t - t * ratio)
    plan = pitome_plan(metric, ratio, margin=0.3, protect=True)
    m = F.normalize(metric[0, 1:], dim=-1)
    energy = [sum(F.elu(m[i] @ m[j] - 0.3).item() for j in range(t)) / t for i in range(t)]
    ranked = sorted(range(t), key=lambda i: -energy[i])
    mergeable, protected = ranked[: 2 * r], ranked[2 * r:]
    a, b = mergeable[0::2], mergeable[1::2]
    keep = [0] + [i + 1 for i in protected] + [j + 1 for j in b]
    assert plan.keep[0].tolist() == keep
    for src, dst in zip(plan.src[0].tolist(), plan.dst[0].tolist(), strict=True):
        best = max(b, key=lambda j: float(m[src - 1] @ m[j]))
        assert keep[dst] == best + 1
    assert sorted(plan.src[0].tolist()) == sorted(i + 1 for i in a)


def test_protected_tokens_pass_unchanged_and_loners_are_protected():
    metric = _clustered()
    x = torch.randn(*metric.shape[:2], 8)
    plan = pitome_plan(metric, 0.6, margin=0.3, protect=True)
    out, size = merge_wavg(plan, x)
    t = metric.shape[1] - 1
    r = math.floor(t - t * 0.6)
    n_protected = t - 2 * r
    protected = plan.keep[:, 1 : 1 + n_protected]
    torch.testing.assert_close(out[:, 1 : 1 + n_protected],
                               x.gather(1, protected[..., None].expand(-1, -1, 8)))
    assert torch.all(size[:, : 1 + n_protected] == 1)
    torch.testing.assert_close(out[:, 0], x[:, 0])  # class token untouched
    assert size.sum().item() == x.shape[0] * x.shape[1]
    # the isolated tokens (low energy) are among the protected ones
    m = F.normalize(metric[0, 1:], dim=-1)
    isolation = (m @ m.T).topk(2, dim=-1).values[:, 1]  # best similarity to another token
    loners = set((isolation.argsort()[:4] + 1).tolist())
    assert loners <= set(protected[0].tolist())


def test_patched_model_invariants_and_reference_schedule(tiny_vit):
    pitome.patch(tiny_vit, 0.8, trace_source=True)
    rule = merge_state(tiny_vit).rule
    assert rule.protect == (False, False, True, True)
    assert rule.margins == pytest.approx((0.75, 0.5625, 0.375, 0.1875))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        tiny_vit(x)
    state = merge_state(tiny_vit)
    assert state.tokens == token_schedule(tiny_vit) == [(65, 53), (53, 43), (43, 35), (35, 29)]
    assert torch.all(state.size.sum(dim=(1, 2)) == 65)
    assert torch.equal(state.source[:, 0], F.one_hot(torch.tensor(0), 65).float().expand(2, -1))
    pitome.patch(tiny_vit, 0.8, schedule="pure")
    assert merge_state(tiny_vit).rule.protect == (True,) * 4


def test_deit_small_flops_match_the_paper():
    """The paper's DeiT-S GFLOPs at keep ratios 0.975 / 0.95 / 0.925 / 0.9."""
    for ratio, paper in [(0.975, 4.01), (0.95, 3.44), (0.925, 2.99), (0.9, 2.60)]:
        rule = PiToMeRule(ratio, layer_margins(12), (True,) * 12)
        tokens = rule.schedule(197, 12, 1)
        assert vit_flops(384, tokens, num_patches=196, patch_size=16) / 1e9 == pytest.approx(
            paper, abs=0.01)


def test_errors(tiny_vit):
    for bad in (0, 0.0, -0.1, 1.01):
        with pytest.raises(ValueError, match=r"keep_ratio must be in \(0, 1\]"):
            pitome.patch(tiny_vit, bad)
    with pytest.raises(ValueError, match="keep_ratio must be a finite number"):
        pitome.patch(tiny_vit, float("nan"))
    with pytest.raises(TypeError, match="keep_ratio must be a real number, got '0.9'"):
        pitome.patch(tiny_vit, "0.9")
    with pytest.raises(ValueError, match="keep_ratio=0.3 leaves too few tokens"):
        pitome.patch(tiny_vit, 0.3)
    with pytest.raises(ValueError, match="schedule must be one of"):
        pitome.patch(tiny_vit, 0.9, schedule="mae")
    with pytest.raises(TypeError, match="VisionTransformer"):
        pitome.patch(torch.nn.Linear(2, 2), 0.9)
    pitome.patch(tiny_vit, 0.9)
    with pytest.raises(ValueError, match="expected images of shape"):
        tiny_vit(torch.randn(1, 3, 28, 28))
