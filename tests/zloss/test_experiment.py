"""The experiment end to end at toy sizes: the LM learns an easy stream; the sweep and run()."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from paperlab.core.data import DataNotFoundError, require
from paperlab.core.results import RunContext
from paperlab.core.seed import torch_threads
from paperlab.zloss.data import BROWN_RELPATH, HOW_TO_GET, LMCorpus
from paperlab.zloss.experiment import (
    Config,
    LMConfig,
    SweepConfig,
    bench,
    equal_time_summary,
    run,
    sweep_summary,
    top10_difference_interval,
    train_lm,
    vocabulary_sweep,
)

TINY_LM = LMConfig(context=2, embed_dim=8, hidden_dim=16, batch_size=32, epochs=4,
                   encoder_lr=0.02, test_examples=200,
                   output_lr={"log_softmax": 0.5, "z": 0.1, "taylor_softmax": 0.5})
TINY_SWEEP = SweepConfig(sizes=(50, 400), dim=8, batch_size=16, warmup=0, repeats=1)


def cyclic_corpus(vocab: int = 30, length: int = 1500) -> LMCorpus:
    """Word t+1 is word t plus one (mod vocab): a stream any working LM predicts exactly."""
    stream = np.arange(length) % vocab
    return LMCorpus([f"w{i}" for i in range(vocab)], stream, stream[:300], stream[:300], 1, length)


@pytest.mark.parametrize("method", ["log_softmax", "z", "taylor_softmax"])
def test_lm_learns_an_easy_stream(method):
    row = train_lm(method, cyclic_corpus(), TINY_LM, seed=0)
    assert row["top1"] > 0.9, row
    assert row["top10"] >= row["top5"] >= row["top1"]
    assert (row["perplexity"] is None) == (method == "z")
    hits = row["top10_hits"]  # one per test example, for paired intervals
    assert hits.dtype == bool and len(hits) == row["eval_examples"] == 200
    assert hits.mean() == pytest.approx(row["top10"])


def test_two_methods_pair_example_by_example():
    corpus = cyclic_corpus()
    cfg = replace(TINY_LM, epochs=1, output_lr={"log_softmax": 0.5, "z": 1e-4})
    z, softmax = (train_lm(m, corpus, cfg, seed=0) for m in ("z", "log_softmax"))
    ci = top10_difference_interval(z, softmax)
    assert ci["lo"] <= z["top10"] - softmax["top10"] <= ci["hi"]
    assert "of 200 examples" in ci["method"]
    with pytest.raises(ValueError, match="do not pair"):
        top10_difference_interval(z, {"top10_hits": softmax["top10_hits"][:10]})


def test_equal_time_summary_pairs_the_checkpoints_it_compares():
    hits = np.zeros(100, bool)

    def point(cpu_s, examples, right):
        h = hits.copy()
        h[:right] = True
        return {"train_cpu_s": cpu_s, "examples": examples, "top10": right / 100,
                "eval_examples": 100, "top10_hits": h}

    softmax = {"curve": [point(5.0, 50, 20), point(10.0, 100, 30)]}
    zloss = {"curve": [point(1.0, 50, 25), point(9.0, 800, 36), point(20.0, 1600, 40)]}
    out = equal_time_summary(softmax, zloss, {"a": 1.0, "b": 30.0, "output_lr": 0.3})
    assert out["top10_zloss_at_softmax_time"] == 0.36  # the last checkpoint within 10 s
    ci = out["top10_zloss_at_softmax_time_minus_softmax_ci95"]
    # 6 examples only the Z-loss got, none only the softmax: +0.06, exact paired interval
    assert "6 discordant of 100" in ci["method"] and ci["lo"] <= 0.06 <= ci["hi"]
    assert ci["lo"] > 0


def test_sweep_rows_and_summary():
    rows = vocabulary_sweep(replace(TINY_SWEEP, repeats=3), seed=0)
    assert [r["vocab_size"] for r in rows] == [50, 400]
    for r in rows:
        assert r["speedup_vs_softmax"] == r["full_softmax_s"] / r["zloss_factored_s"]
        assert r["speedup_vs_adaptive"] == r["adaptive_softmax_s"] / r["zloss_factored_s"]
        assert r["full_softmax_s"] == np.median(r["full_softmax_repeats_s"])
        assert len(r["zloss_factored_repeats_s"]) == 3
    summary = sweep_summary(rows)
    assert summary["step_time_growth_50_to_400"] == pytest.approx(
        rows[1]["zloss_factored_s"] / rows[0]["zloss_factored_s"])
    assert "speedup_vs_softmax_at_793k" not in summary
    big = [{**row, "vocab_size": size} for row, size in zip(rows, (10_000, 793_471), strict=True)]
    summary = sweep_summary(big)
    assert "step_time_growth_softmax_10k_to_793k" in summary
    assert summary["speedup_vs_softmax_at_793k"] == rows[1]["speedup_vs_softmax"]
    ci = summary["speedup_vs_softmax_at_793k_ci95"]
    assert ci["lo"] <= summary["speedup_vs_softmax_at_793k"] <= ci["hi"]
    assert "3 and 3 repeats" in ci["method"]
    one = [{**row, "full_softmax_repeats_s": row["full_softmax_repeats_s"][:1]} for row in big]
    assert sweep_summary(one)["speedup_vs_softmax_at_793k_ci95"] is None  # no spread to show


def test_run_on_brown_at_toy_size(tmp_path):
    try:
        require(BROWN_RELPATH, HOW_TO_GET)
    except DataNotFoundError:
        pytest.skip("Brown corpus not staged")
    cfg = Config(LMConfig(embed_dim=4, hidden_dim=8, train_examples=256, test_examples=64,
                          methods=("log_softmax", "z")), TINY_SWEEP, bench_sweep=TINY_SWEEP)
    with torch_threads(2):  # run and bench pin their own count, then give this one back
        result = run(RunContext("zloss", quick=True, out_dir=tmp_path), cfg)
        assert torch.get_num_threads() == 2
    assert {"top10_acc_softmax", "top10_acc_zloss"} <= set(result.summary)
    ci = result.summary["top10_zloss_minus_softmax_ci95"]
    diff = result.summary["top10_acc_zloss"] - result.summary["top10_acc_softmax"]
    assert ci["lo"] <= diff <= ci["hi"] and "of 64 examples" in ci["method"]
    assert all("top10_hits" not in r and r["eval_examples"] == 64
               for r in result.results if "top10" in r)
    assert result.data["vocab_size"] >= 40_000
    assert (tmp_path / "zloss_topk.png").exists() and (tmp_path / "zloss_step_time.png").exists()
    out = bench(RunContext("zloss", quick=True, out_dir=tmp_path), cfg)
    assert [r["vocab_size"] for r in out.results] == [50, 400]
    assert out.results and (tmp_path / "zloss_bench_step_time.png").exists()


def test_divergence_is_reported_not_raised():
    cfg = replace(TINY_LM, output_lr={"mse": 1e4}, epochs=1)
    row = train_lm("mse", cyclic_corpus(), cfg, seed=0)
    assert "diverged" in row and "top1" not in row


def test_train_examples_option_sizes_the_lm_and_curves_only(tmp_path):
    from paperlab.core.config import resolve_config
    from paperlab.zloss import SYSTEM

    (option,) = SYSTEM.options
    assert option.flag == "--train-examples" and option.parse("100000") == 100_000
    with pytest.raises(ValueError, match="--train-examples must be >= 1000"):
        option.parse("10")
    ctx = RunContext("zloss", quick=False, out_dir=tmp_path, options={"train_examples": 100_000})
    cfg = resolve_config(ctx, Config)
    full = Config.full()
    assert cfg.lm.train_examples == 100_000 and full.lm.train_examples == 300_000
    assert cfg == replace(full, lm=replace(full.lm, train_examples=100_000))  # nothing else
    unset = RunContext("zloss", quick=True, out_dir=tmp_path, options={"train_examples": None})
    assert resolve_config(unset, Config) == Config.quick()
