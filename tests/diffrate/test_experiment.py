"""The reproduction and the benchmark end to end at toy size (real CIFAR-10 JPEGs; skipped
when they are not staged)."""

from __future__ import annotations

import json

import pytest

from paperlab.diffrate.experiment import Config
from paperlab.diffrate.model import SearchConfig, rule_tokens
from paperlab.diffrate.rates import Rates
from paperlab.vision.models import CifarResNetSpec, ViTSpec
from paperlab.vision.train import TrainConfig

TOY = Config(
    vit=ViTSpec(dim=16, depth=3, heads=2, drop_path=0.0, distilled=True),
    train=TrainConfig(epochs=1, batch_size=50, warmup_epochs=0.5, augment=False),
    teacher=(CifarResNetSpec(widths=(4, 4, 8, 8), blocks=(1, 1, 1, 1)),
             TrainConfig(epochs=1, batch_size=50, optimizer="sgd", lr=0.05, warmup_epochs=0.5,
                         augment=False)),
    train_per_class=10,
    eval_images=60,
    targets=(0.8, 0.63),
    search=SearchConfig(epochs=2, batch_size=10, lr=0.1, lr_min=0.01),
    search_per_class=3,
    speed_batch=8,
    speed_repeats=2,
    bench_batches=(1, 4),
    bench_repeats=1,
    text=None,  # the text comparison has its own test (test_text.py)
)


def within(point, ci, slack=1e-12):
    """``lo <= point <= hi`` up to float rounding (a difference of two means vs its bound)."""
    return ci["lo"] - slack <= point <= ci["hi"] + slack


@pytest.fixture
def ctx(cifar_run_context):
    return cifar_run_context("diffrate")


def test_run_toy(ctx):
    from paperlab.diffrate.experiment import run

    result = run(ctx, TOY)
    assert set(result.summary) == {"acc_full", "acc_diffrate_mid", "acc_uniform_same_flops",
                                   "acc_tome_same_flops", "flops_reduction_mid",
                                   "throughput_ratio_mid", "acc_diffrate_pitome_rule_mid",
                                   "flops_reduction_diffrate_pitome_rule_mid",
                                   "p_diffrate_vs_pitome_rule_mid",
                                   "acc_diffrate_mid_minus_full_ci95",
                                   "acc_diffrate_mid_minus_uniform_ci95",
                                   "throughput_ratio_mid_ci95"}
    s = result.summary
    for key, point in (
        ("acc_diffrate_mid_minus_full_ci95", s["acc_diffrate_mid"] - s["acc_full"]),
        ("acc_diffrate_mid_minus_uniform_ci95",
         s["acc_diffrate_mid"] - s["acc_uniform_same_flops"]),
        ("throughput_ratio_mid_ci95", s["throughput_ratio_mid"]),
    ):
        assert s[key]["level"] == 0.95 and within(point, s[key]), key
    assert all(within(r["acc"], r["acc_ci95"]) for r in result.results)
    assert all(within(t["acc_diffrate"] - t["acc_other"], t["acc_diff_ci95"])
               for t in result.data["mcnemar"])
    rows = {(r["method"], r["target"]): r for r in result.results}
    assert len(rows) == 1 + 4 * 2
    for target in TOY.targets:
        ours, uni, tome = (rows[(m, target)] for m in ("DiffRate", "uniform", "ToMe"))
        assert tome["mflops"] >= uni["mflops"] and tome["kept"][-1] >= uni["kept"][-1]
        assert ours["mflops"] < rows[("full", 1.0)]["mflops"]
        assert ours["kept"][0] == 66 and ours["kept"] == sorted(ours["kept"], reverse=True)
        saved = Rates.load(ctx.out_dir / f"diffrate_rates_{target}.json")
        assert list(saved.merge) == ours["kept"]
        combo = rows[("DiffRate+PiToMe rule", target)]
        assert combo["kept"] == [out for _, out in rule_tokens(saved, "pitome")]
        assert combo["mflops"] >= ours["mflops"]
    assert result.summary["flops_reduction_mid"] == rows[("DiffRate", 0.63)]["flops_reduction"]
    assert len(result.data["mcnemar"]) == 4 * 2 and result.data["eval_images"] == 60
    versus_rule = next(t for t in result.data["mcnemar"]
                       if t["target"] == 0.63 and t["versus"] == "DiffRate+PiToMe rule")
    assert result.summary["p_diffrate_vs_pitome_rule_mid"] == versus_rule["p_value"]
    assert result.summary["acc_diffrate_pitome_rule_mid"] == versus_rule["acc_other"]
    assert (ctx.out_dir / "diffrate_rates.png").exists()
    assert (ctx.out_dir / "diffrate_accuracy_flops.png").exists()
    json.dumps(result.data)


def test_bench_toy(ctx):
    from paperlab.diffrate.experiment import bench

    result = bench(ctx, TOY)
    assert {r["batch"] for r in result.results} == {1, 4}
    assert {r["method"] for r in result.results} == {"full", "DiffRate", "uniform", "ToMe"}
    assert result.summary["search_minutes"] > 0 and "speedup_b4" in result.summary
    assert all(r["speedup_vs_full"] == 1.0 for r in result.results if r["method"] == "full")


def test_options_reach_the_config():
    cfg = Config.full().with_options({"retrain": 1, "epochs": 7, "eval_images": 500,
                                      "search_epochs": 2})
    assert cfg.retrain and cfg.train.epochs == 7 and cfg.eval_images == 500
    assert cfg.search.epochs == 2
    with pytest.raises(ValueError, match="mid=0.5 must be one of the targets"):
        Config(targets=(0.8, 0.6), mid=0.5)
    with pytest.raises(ValueError, match="speed_repeats must be >= 2"):
        Config(speed_repeats=1)
