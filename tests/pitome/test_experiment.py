"""The reproduction and the benchmark end to end at toy size (real CIFAR-10 JPEGs; skipped
when they are not staged)."""

from __future__ import annotations

import json

import pytest

from paperlab.pitome.experiment import Config
from paperlab.vision.models import CifarResNetSpec, ViTSpec
from paperlab.vision.train import TrainConfig

TOY = Config(
    vit=ViTSpec(dim=16, depth=2, heads=2, drop_path=0.0, distilled=True),
    train=TrainConfig(epochs=1, batch_size=50, warmup_epochs=0.5, augment=False),
    teacher=(CifarResNetSpec(widths=(4, 4, 8, 8)),
             TrainConfig(epochs=1, batch_size=50, optimizer="sgd", lr=0.05, warmup_epochs=0)),
    train_per_class=10,
    eval_images=60,
    tome_r=(2,),
    keep_ratios=(0.95, 0.9),
    speed_repeats=2,
    viz_images=2,
    bench_batches=(1, 4),
    bench_ratios=(1.0, 0.9),
    bench_repeats=1,
    bench_timm="vit_tiny_patch16_224",
    bench_timm_ratios=(1.0, 0.9),
    text=None,  # the text comparison has its own test (test_text.py)
    bench_text_lengths=(32,),
    bench_text_batches=(2,),
    bench_text_ratios=(0.8,),
)


def within(point, ci, slack=1e-12):
    """``lo <= point <= hi`` up to float rounding (a difference of two means vs its bound)."""
    return ci["lo"] - slack <= point <= ci["hi"] + slack


@pytest.fixture
def ctx(cifar_run_context):
    return cifar_run_context("pitome")


def test_run_toy(ctx):
    from paperlab.pitome.experiment import run, trained_vit

    result = run(ctx, TOY)
    assert set(result.summary) >= {"acc_full", "acc_pitome_at_0.9", "acc_tome_at_matched_flops",
                                   "flops_reduction_at_0.9", "throughput_ratio_at_0.9"}
    rows = {(r["method"], r["setting"]): r for r in result.results}
    full = rows[("full", "-")]
    pit, matched = rows[("PiToMe", "keep=0.9")], rows[("ToMe matched (prop_attn=on)", "keep=0.9")]
    assert pit["mflops"] == matched["mflops"] < full["mflops"]
    # 64 patches + class and distillation tokens; keep 0.9 merges 6 then 5 patch tokens
    assert pit["tokens_out"] == matched["tokens_out"] == 66 - 6 - 5
    assert result.summary["flops_reduction_at_0.9"] == pytest.approx(1 - pit["mflops"]
                                                                     / full["mflops"])
    assert len(result.data["mcnemar"]) == 4 and result.data["eval_images"] == 60
    assert 0 <= result.summary["mcnemar_p_vs_tome_prop_on_at_0.9"] <= 1
    s = result.summary
    for key, point in (
        ("acc_pitome_minus_tome_at_matched_flops_ci95",
         s["acc_pitome_at_0.9"] - s["acc_tome_at_matched_flops"]),
        ("throughput_ratio_at_0.9_ci95", s["throughput_ratio_at_0.9"]),
    ):
        assert s[key]["level"] == 0.95 and within(point, s[key]), key
    assert all(within(r["acc"], r["acc_ci95"]) for r in result.results)
    assert all(within(t["acc_pitome"] - t["acc_tome"], t["acc_diff_ci95"])
               for t in result.data["mcnemar"])
    assert s["acc_pitome_minus_tome_at_matched_flops_ci95"] == next(
        t["acc_diff_ci95"] for t in result.data["mcnemar"]
        if t["keep_ratio"] == 0.9 and t["tome_prop_attn"] == "on")
    assert (ctx.out_dir / "pitome_accuracy_flops.png").exists()
    assert (ctx.out_dir / "pitome_merged_groups.png").exists()
    json.dumps(result.data)
    assert not result.data["train"]["cached"]
    _, info = trained_vit(ctx, TOY)  # the checkpoint is cached now
    assert info["cached"] and info["checkpoint"] == result.data["train"]["checkpoint"]


def test_bench_toy(ctx):
    from paperlab.pitome.experiment import bench

    result = bench(ctx, TOY)
    vision = [r for r in result.results if "attention" in r]
    assert {r["batch"] for r in vision} == {1, 4}
    assert {r["attention"] for r in vision} == {"fused", "explicit"}
    text = [r for r in result.results if r["model"] == "MiniLM-L6 (text)"]
    assert {(r["method"], r["tokens"], r["batch"]) for r in text} == {
        (m, 32, 2) for m in ("full", "PiToMe (first 3 layers)", "ToMe matched (first 3 layers)",
                             "PiToMe (every layer)", "ToMe matched (every layer)")}
    by = {r["method"]: r for r in text}
    assert by["PiToMe (every layer)"]["mflops"] < by["PiToMe (first 3 layers)"]["mflops"] < by[
        "full"]["mflops"]
    assert by["ToMe matched (every layer)"]["mflops"] == by["PiToMe (every layer)"]["mflops"]
    assert by["full"]["speedup_vs_full"] == 1.0
    assert "text_speedup_pitome_0.8_L32_b2" in result.summary
    assert "break_even_keep_ratio_explicit_b1" in result.summary
    assert "vit_tiny_patch16_224_break_even_keep_ratio_fused_b1" in result.summary
    full = [r for r in vision if r["method"] == "full" and r["attention"] == "fused"]
    assert all(r["speedup_vs_full_fused"] == 1.0 for r in full)


def test_the_throughput_interval_needs_two_repeats():
    with pytest.raises(ValueError, match="speed_repeats must be >= 2"):
        Config(speed_repeats=1)


def test_options_reach_the_config():
    cfg = Config.full().with_options({"retrain": 1, "epochs": 7, "eval_images": 500,
                                      "keep_ratios": (0.8, 0.7), "tome_r": (3,)})
    assert cfg.retrain and cfg.train.epochs == 7 and cfg.eval_images == 500
    assert cfg.keep_ratios == (0.8, 0.7) and cfg.pure_ratios == (0.7,) and cfg.tome_r == (3,)
    from paperlab.pitome import SYSTEM

    option = {o.name: o for o in SYSTEM.options}["keep_ratios"]
    assert option.parse("0.9,0.8") == (0.9, 0.8)
    with pytest.raises(ValueError):
        option.parse("0.9,0.3")
