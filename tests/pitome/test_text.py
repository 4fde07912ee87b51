"""The text comparison end to end at toy size on the pretrained MiniLM (staged SST-2)."""

from __future__ import annotations

import dataclasses

import pytest

from paperlab.core.results import RunContext
from paperlab.pitome.text import TextConfig, run_text, text_settings
from paperlab.text.train import FinetuneConfig

TOY = TextConfig(datasets=("sst2",), seeds=2, train_examples=48, eval_examples=40,
                 finetune=FinetuneConfig(epochs=1, batch_size=16, max_length=24),
                 keep_ratios=(0.8, 0.6), every_layer_ratios=(0.8,), tome_r=(1,), threads=1)


@pytest.fixture
def ctx(sst2_run_context):
    return sst2_run_context("pitome")


def test_text_comparison_at_toy_size(ctx):
    rows, summary, data, _ = run_text(ctx, TOY)
    by = {(r["method"], r["setting"]): r for r in rows}
    assert len(rows) == len(text_settings(TOY))
    full = by[("full", "-")]
    for k in (0.8, 0.6):
        pit = by[("PiToMe", f"keep={k}")]
        for prop in ("on", "off"):
            matched = by[(f"ToMe matched (prop_attn={prop})", f"keep={k}")]
            assert matched["mflops"] == pytest.approx(pit["mflops"])  # matched FLOPs
        assert pit["mflops"] < full["mflops"]
    # The smaller keep ratio saves more, and every-layer merging more than the first three.
    assert by[("PiToMe", "keep=0.6")]["flops_reduction"] > by[("PiToMe", "keep=0.8")][
        "flops_reduction"] > 0
    assert by[("PiToMe every layer", "keep=0.8")]["flops_reduction"] > by[
        ("PiToMe", "keep=0.8")]["flops_reduction"]
    for r in rows:
        assert r["acc_ci95"]["lo"] <= r["acc"] <= r["acc_ci95"]["hi"]
        assert r["acc_std_over_seeds"] is not None
    gap = summary["text_sst2_acc_pitome"] - summary["text_sst2_acc_tome_matched"]
    ci = summary["text_sst2_acc_pitome_minus_tome_matched_ci95"]
    assert ci["lo"] - 1e-12 <= gap <= ci["hi"] + 1e-12
    assert len(summary["text_sst2_p_pitome_vs_tome"]) == 2  # one McNemar test per seed
    assert summary["text_sst2_flops_reduction"] == pytest.approx(
        by[("PiToMe", "keep=0.6")]["flops_reduction"])
    assert data["datasets"]["sst2"]["eval_sentences"] == 40
    assert (ctx.out_dir / "pitome_text_accuracy_flops.png").exists()
    again, _, data2, _ = run_text(ctx, TOY)  # the fine-tuned classifiers come from the cache
    assert all(f["cached"] for f in data2["datasets"]["sst2"]["finetuned"])
    assert [r["acc"] for r in again] == [r["acc"] for r in rows]


def test_text_config_is_checked():
    with pytest.raises(ValueError, match="datasets"):
        TextConfig(datasets=("imdb",))
    with pytest.raises(ValueError, match="keep_ratios"):
        TextConfig(keep_ratios=(0.4,))
    with pytest.raises(ValueError, match="seeds"):
        TextConfig(seeds=0)


def test_run_with_the_text_part_only(ctx):
    from paperlab.pitome.experiment import Config, run

    result = run(ctx, Config(vision=False, text=TOY))
    assert {r["task"] for r in result.results} == {"text/sst2"}
    assert "acc_full" not in result.summary and "text_sst2_acc_pitome" in result.summary


def test_parts_option():
    from paperlab.pitome import SYSTEM
    from paperlab.pitome.experiment import Config

    (parts,) = [o for o in SYSTEM.options if o.name == "parts"]
    assert parts.parse("text") == ("text",)
    for bad in ("audio", "text,text", ""):
        with pytest.raises(ValueError):
            parts.parse(bad)
    only_text = Config.full().with_options({"parts": ("text",)})
    assert not only_text.vision and only_text.text == TextConfig()
    only_vision = Config.quick().with_options({"parts": ("vision",)})
    assert only_vision.vision and only_vision.text is None
    assert only_vision.bench_text_lengths == () and only_text.bench_text_lengths == (256, 512)
    two = Config.full().with_options({"parts": ("text",), "text_seeds": 2})
    assert two.text.seeds == 2 and two.text.finetune == TextConfig().finetune


def test_bench_with_the_text_part_only(tmp_path):
    from paperlab.pitome.experiment import Config, bench

    cfg = Config.quick().with_options({"parts": ("text",)})
    cfg = dataclasses.replace(cfg, bench_text_lengths=(16,), bench_text_batches=(2,),
                              bench_repeats=1)
    result = bench(RunContext(system="pitome", quick=True, out_dir=tmp_path), cfg)
    assert {r["model"] for r in result.results} == {"MiniLM-L6 (text)"}
    assert {r["method"] for r in result.results} == {
        "full", "PiToMe (first 3 layers)", "ToMe matched (first 3 layers)",
        "PiToMe (every layer)", "ToMe matched (every layer)"}
    assert "text_speedup_pitome_0.65_L16_b2" in result.summary
    no_text = bench(RunContext(system="pitome", quick=True, out_dir=tmp_path),
                    dataclasses.replace(Config.quick().with_options({"parts": ("vision",)}),
                                        bench_ratios=(1.0, 0.9), bench_batches=(1,),
                                        bench_repeats=1))
    assert all(r["model"] != "MiniLM-L6 (text)" for r in no_text.results)
