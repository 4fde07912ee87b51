"""Analytic ViT FLOPs: the published figures, and agreement with torch's FLOP counter."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from paperlab.merging import tome
from paperlab.merging.vit import token_schedule
from paperlab.vision.flops import block_flops, head_outputs, model_flops, vit_flops
from paperlab.vision.models import ViTSpec


def test_published_figures():
    deit_s = vit_flops(384, [(197, 197)] * 12, num_patches=196, patch_size=16)
    vit_h = vit_flops(1280, [(257, 257)] * 32, num_patches=256, patch_size=14)
    assert round(deit_s / 1e9, 2) == 4.60
    assert round(vit_h / 1e9, 1) == 167.3


def test_timm_deit_small_model_flops():
    timm = pytest.importorskip("timm")
    model = timm.create_model("deit_small_patch16_224", pretrained=False)
    assert round(model_flops(model) / 1e9, 2) == 4.60


def _counted(model, x):
    with FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops() / 2  # the counter counts a multiply-add as 2


def test_matches_torch_counter_on_explicit_attention(tiny_vit):
    for block in tiny_vit.blocks:
        block.attn.fused_attn = False
    x = torch.randn(2, 3, 32, 32)
    assert _counted(tiny_vit, x) / 2 == model_flops(tiny_vit)


def test_distilled_vit_counts_both_heads():
    """DeiT's distilled ViT: two prefix tokens and a second linear head on the distillation
    token; the counter sees every matmul, the distillation head's included."""
    model = ViTSpec(dim=32, depth=2, heads=2, drop_path=0.0, distilled=True).build().eval()
    for block in model.blocks:
        block.attn.fused_attn = False
    assert isinstance(model.head_dist, torch.nn.Linear)
    x = torch.randn(2, 3, 32, 32)
    assert _counted(model, x) / 2 == model_flops(model)
    assert head_outputs(model) == 2 * model.num_classes


def test_reduced_tokens_match_counter_up_to_merge_cost(tiny_vit):
    """With ToMe the counter also sees the matching (A x B similarity) matmuls, which the
    papers' formula leaves out; everything else must agree exactly."""
    tome.patch(tiny_vit, 6, fused=False)
    x = torch.randn(1, 3, 32, 32)
    schedule = token_schedule(tiny_vit)
    head_dim = tiny_vit.blocks[0].attn.head_dim
    matching = sum(((n - 1 + 1) // 2) * ((n - 1) // 2) * head_dim for n, _ in schedule)
    assert _counted(tiny_vit, x) == model_flops(tiny_vit, schedule) + matching
    assert model_flops(tiny_vit, schedule) < model_flops(tiny_vit, None)


def test_block_flops_rejects_growth():
    with pytest.raises(ValueError, match="cannot go from 10 to 11"):
        block_flops(10, 11, 8)


def test_measure_speed_keeps_every_repeat(tiny_vit):
    from paperlab.vision.speed import measure_speed

    speeds = measure_speed({"a": tiny_vit, "b": tiny_vit}, batch_size=2, repeats=3)
    for s in speeds.values():
        assert len(s.times) == len(s.cpu_times) == 3 and min(s.times) > 0
        assert s.latency_ms == pytest.approx(1e3 * sorted(s.times)[1])
