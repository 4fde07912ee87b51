"""The text comparison end to end at toy size on the pretrained MiniLM (staged SST-2)."""

from __future__ import annotations

import dataclasses

import pytest

from paperlab.diffrate.model import SearchConfig
from paperlab.diffrate.rates import Rates
from paperlab.diffrate.text import TextConfig, run_text
from paperlab.text.train import FinetuneConfig

TOY = TextConfig(seeds=2, train_examples=48, eval_examples=40,
                 finetune=FinetuneConfig(epochs=1, batch_size=16, max_length=24),
                 search=SearchConfig(epochs=1, batch_size=8, lr=0.1, lr_min=0.01),
                 search_examples=16, threads=1)


@pytest.fixture
def ctx(sst2_run_context):
    return sst2_run_context("diffrate")


def within(point, ci, slack=1e-12):
    return ci["lo"] - slack <= point <= ci["hi"] + slack


def test_text_comparison_at_toy_size(ctx):
    rows, summary, data, _ = run_text(ctx, TOY)
    by = {r["method"]: r for r in rows}
    merge_only, tome_at = "DiffRate counts, merge only", "ToMe at DiffRate's counts"
    assert list(by) == ["full", "DiffRate", "uniform", "ToMe", merge_only, tome_at]
    assert all(r["task"] == "text/sst2" for r in rows)
    full = by["full"]
    assert full["flops_reduction"] == 0
    for method in ("DiffRate", "uniform", "ToMe", merge_only, tome_at):
        assert 0 < by[method]["flops_reduction"] < 1
    # the ablations: DiffRate's token counts without pruning (the same FLOPs), and ToMe given
    # them (at most half a layer's tokens merge, so at least DiffRate's FLOPs)
    assert by[merge_only]["mflops"] == pytest.approx(by["DiffRate"]["mflops"])
    assert by[tome_at]["mflops"] >= by["DiffRate"]["mflops"] - 1e-9
    # uniform is matched to DiffRate's FLOPs, ToMe to the target (PiToMe keep 0.65's schedule)
    assert by["uniform"]["mflops"] == pytest.approx(by["DiffRate"]["mflops"], rel=0.03)
    assert summary["text_flops_reduction_target"] == by["ToMe"]["flops_reduction"]
    assert summary["text_flops_reduction"] == by["DiffRate"]["flops_reduction"]
    for r in rows:
        assert within(r["acc"], r["acc_ci95"]) and r["acc_std_over_seeds"] is not None
    for other, key in (("ToMe", "tome"), ("uniform", "uniform"), ("full", "full"),
                       (merge_only, "merge_only"), (tome_at, "tome_at_diffrate_counts")):
        acc = by[other]["acc"]
        assert summary.get(f"text_acc_{key}", acc) == pytest.approx(acc)
        gap = summary["text_acc_diffrate"] - acc
        assert within(gap, summary[f"text_acc_diffrate_minus_{key}_ci95"]), other
    assert len(summary["text_p_diffrate_vs_tome"]) == 2  # one McNemar test per seed
    assert data["eval_sentences"] == 40 and data["search_sentences"] == 16
    for seed in data["seeds"]:
        saved = Rates.load(ctx.out_dir / f"diffrate_text_rates_seed{seed['seed']}.json")
        assert saved.to_dict() == seed["rates"] and saved.num_tokens <= 24
    assert (ctx.out_dir / "diffrate_text_accuracy_flops.png").exists()
    again, _, data2, _ = run_text(ctx, TOY)  # the fine-tuned classifiers come from the cache
    assert all(s["finetune_cached"] for s in data2["seeds"])
    assert [r["acc"] for r in again] == [r["acc"] for r in rows]


def test_text_config_is_checked():
    with pytest.raises(ValueError, match="seeds"):
        TextConfig(seeds=0)
    with pytest.raises(ValueError, match="target_keep"):
        TextConfig(target_keep=0.3)
    with pytest.raises(ValueError, match="search_examples"):
        TextConfig(search_examples=0)


def test_run_with_the_text_part_only(ctx):
    from paperlab.diffrate.experiment import Config, run

    tiny = dataclasses.replace(TOY, seeds=1, train_examples=16, eval_examples=16,
                               search_examples=8)
    result = run(ctx, Config(vision=False, text=tiny))
    assert {r["task"] for r in result.results} == {"text/sst2"}
    assert "acc_full" not in result.summary and "text_acc_diffrate" in result.summary
    with pytest.raises(ValueError, match="nothing to run"):
        run(ctx, Config(vision=False, text=None))


def test_parts_and_text_seeds_options():
    from paperlab.diffrate import SYSTEM
    from paperlab.diffrate.experiment import Config

    options = {o.name: o for o in SYSTEM.options}
    assert options["parts"].parse("text") == ("text",)
    with pytest.raises(ValueError, match="parts must be"):
        options["parts"].parse("audio")
    with pytest.raises(ValueError, match="parts must be"):
        options["parts"].parse("text,text")
    cfg = Config.full().with_options({"parts": ("text",), "text_seeds": 3})
    assert not cfg.vision and cfg.text is not None and cfg.text.seeds == 3
    cfg = Config.quick().with_options({"parts": ("vision",)})
    assert cfg.vision and cfg.text is None
    both = Config.quick()
    assert both.vision and both.text == TextConfig.quick()
    # the fine-tuning recipe is PiToMe's text comparison's, so the cached classifiers are shared
    assert Config.full().text.finetune == FinetuneConfig()
    assert TextConfig.quick().finetune == FinetuneConfig(epochs=2)
