"""The Z-loss (a, b) search and the equal-training-time comparison (issue #20)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from paperlab.zloss.data import LMCorpus
from paperlab.zloss.experiment import (
    LMConfig,
    TuneConfig,
    at_time,
    equal_time_summary,
    search_zloss,
    train_lm,
)

TINY_LM = LMConfig(context=2, embed_dim=8, hidden_dim=16, batch_size=32, epochs=2,
                   encoder_lr=0.02, test_examples=200,
                   output_lr={"log_softmax": 0.5, "z": 0.1})


def cyclic_corpus(vocab: int = 30, length: int = 1500) -> LMCorpus:
    stream = np.arange(length) % vocab
    return LMCorpus([f"w{i}" for i in range(vocab)], stream, stream[:300], stream[:300], 1, length)


def test_curve_checkpoints_count_training_time_only():
    row = train_lm("z", cyclic_corpus(), TINY_LM, seed=0, checkpoints=3, curve_examples=50)
    curve = row["curve"]
    steps = [p["step"] for p in curve]
    batches = -(-1498 // 32)  # context 2 leaves 1498 examples
    assert steps == sorted(steps) and steps[-1] == 2 * batches and len(steps) >= 6
    seconds = [p["train_cpu_s"] for p in curve]
    assert np.all(np.diff(seconds) > 0)
    assert seconds[-1] == pytest.approx(row["train_cpu_s"])
    assert curve[-1]["examples"] == row["train_examples"]
    assert curve[-1]["top1"] > 0.9  # the last checkpoint is the trained model


def test_search_covers_the_grid_on_the_validation_split():
    tune = TuneConfig(a_values=(0.3, 1.0), b_values=(3.0,), lr_values=(0.1, 0.3),
                      search_examples=400, search_eval=100)
    rows = search_zloss(cyclic_corpus(), TINY_LM, tune, seed=0)
    assert [(r["a"], r["b"], r["output_lr"]) for r in rows] == [
        (0.3, 3.0, 0.1), (0.3, 3.0, 0.3), (1.0, 3.0, 0.1), (1.0, 3.0, 0.3)]
    assert all(r["train_examples"] == 400 for r in rows)


def test_equal_time_picks_the_last_checkpoint_within_the_softmax_time():
    softmax = {"curve": [{"train_cpu_s": 5.0, "examples": 100, "top10": 0.2},
                         {"train_cpu_s": 10.0, "examples": 200, "top10": 0.3}]}
    z = {"curve": [{"train_cpu_s": 0.5, "examples": 100, "top10": 0.1},
                   {"train_cpu_s": 1.0, "examples": 200, "top10": 0.15},
                   {"train_cpu_s": 9.9, "examples": 2000, "top10": 0.35},
                   {"train_cpu_s": 10.1, "examples": 2020, "top10": 0.9}]}
    out = equal_time_summary(softmax, z, {"a": 1.0, "b": 3.0, "output_lr": 0.1})
    assert out["top10_zloss_at_softmax_time"] == 0.35
    assert out["top10_zloss_tuned_equal_epochs"] == 0.15
    assert out["top10_softmax_curve_end"] == 0.3
    assert out["zloss_cpu_share_of_softmax_per_epoch"] == pytest.approx((10.1 / 2020) / 0.05)
    assert at_time(z["curve"], 0.1)["top10"] == 0.1  # nothing within: the first point


def test_no_checkpoints_means_no_curve():
    row = train_lm("z", cyclic_corpus(), replace(TINY_LM, epochs=1), seed=0)
    assert "curve" not in row and row["train_cpu_s"] > 0
