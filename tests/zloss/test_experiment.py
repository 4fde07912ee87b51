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
    run,
    sweep_summary,
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


def test_sweep_rows_and_summary():
    rows = vocabulary_sweep(TINY_SWEEP, seed=0)
    assert [r["vocab_size"] for r in rows] == [50, 400]
    for r in rows:
        assert r["speedup_vs_softmax"] == r["full_softmax_s"] / r["zloss_factored_s"]
        assert r["speedup_vs_adaptive"] == r["adaptive_softmax_s"] / r["zloss_factored_s"]
    summary = sweep_summary(rows)
    assert summary["step_time_growth_50_to_400"] == pytest.approx(
        rows[1]["zloss_factored_s"] / rows[0]["zloss_factored_s"])
    assert "speedup_vs_softmax_at_793k" not in summary
    big = [{**row, "vocab_size": size} for row, size in zip(rows, (10_000, 793_471), strict=True)]
    summary = sweep_summary(big)
    assert "step_time_growth_softmax_10k_to_793k" in summary
    assert summary["speedup_vs_softmax_at_793k"] == rows[1]["speedup_vs_softmax"]


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
