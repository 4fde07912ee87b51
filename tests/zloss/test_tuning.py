"""The Z-loss (a, b) search and the equal-training-time comparison (issue #20)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from paperlab.zloss import experiment
from paperlab.zloss.data import LMCorpus
from paperlab.zloss.experiment import (
    LMConfig,
    TuneConfig,
    at_time,
    best_setting,
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
    # epoch 1 ends on a short batch (1498 = 46 * 32 + 26): steps after it count from 1498
    examples = {p["step"]: p["examples"] for p in curve}
    assert examples[45] == 45 * 32 and examples[60] == 1498 + 13 * 32
    assert curve[-1]["top1"] > 0.9  # the last checkpoint is the trained model


class NoTestSplit(LMCorpus):
    """A corpus whose test split fails the test when anything reads it."""

    def __getattribute__(self, name: str):
        if name == "test":
            raise AssertionError("the search read the test split")
        return super().__getattribute__(name)


def test_search_halves_the_grid_on_the_validation_split_only():
    stream = np.arange(1500) % 30
    corpus = NoTestSplit([f"w{i}" for i in range(30)], stream, stream[:300], stream[:300], 1, 1500)
    tune = TuneConfig(a_values=(0.3, 1.0), b_values=(3.0,), lr_values=(0.1, 0.3),
                      search_examples=400, search_eval=100, search_keep=2, search_epochs=2)
    rows = search_zloss(corpus, TINY_LM, tune, seed=0)
    assert [(r["a"], r["b"], r["output_lr"]) for r in rows[:4]] == [
        (0.3, 3.0, 0.1), (0.3, 3.0, 0.3), (1.0, 3.0, 0.1), (1.0, 3.0, 0.3)]
    assert [r["search_epochs"] for r in rows] == [1, 1, 1, 1, 2, 2]
    assert [r["train_examples"] for r in rows] == [400] * 4 + [800] * 2
    first = sorted(rows[:4], key=lambda r: -r["top10"])
    assert {(r["a"], r["output_lr"]) for r in rows[4:]} == {
        (r["a"], r["output_lr"]) for r in first[:2]}
    assert best_setting(rows) in rows[4:]


def test_search_prefers_a_late_starter(monkeypatch):
    """Behind after one epoch, ahead after several: the several-epoch round decides."""
    top10 = {(3.0, 1): 0.316, (3.0, 4): 0.317, (0.3, 1): 0.315, (0.3, 4): 0.36,
             (1.0, 1): 0.20, (1.0, 4): 0.40}  # a = 1 would win late but is pruned after one
    splits = []

    def fake_train_lm(method, corpus, cfg, seed, split="test", **kwargs):
        splits.append(split)
        return {"method": method, "top10": top10[(cfg.z_a, cfg.epochs)],
                "train_examples": cfg.train_examples * cfg.epochs}

    monkeypatch.setattr(experiment, "train_lm", fake_train_lm)
    tune = TuneConfig(a_values=(3.0, 0.3, 1.0), b_values=(10.0,), lr_values=(0.1,),
                      search_keep=2, search_epochs=4)
    rows = search_zloss(cyclic_corpus(), TINY_LM, tune, seed=0)
    assert max(rows[:3], key=lambda r: r["top10"])["a"] == 3.0
    best = best_setting(rows)
    assert (best["a"], best["search_epochs"], best["top10"]) == (0.3, 4, 0.36)
    assert len(rows) == 5 and set(splits) == {"valid"}
    one_round = search_zloss(cyclic_corpus(), TINY_LM, replace(tune, search_epochs=1), seed=0)
    assert len(one_round) == 3 and best_setting(one_round)["a"] == 3.0
    assert best_setting([{"diverged": "nan", "search_epochs": 1}]) is None


def test_equal_time_picks_the_last_checkpoint_within_the_softmax_time():
    def point(cpu_s, examples, top10):  # the first top10 x 20 of 20 examples right
        return {"train_cpu_s": cpu_s, "examples": examples, "top10": top10,
                "top10_hits": np.arange(20) < round(20 * top10)}

    softmax = {"curve": [point(5.0, 100, 0.2), point(10.0, 200, 0.3)]}
    z = {"curve": [point(0.5, 100, 0.1), point(1.0, 200, 0.15), point(9.9, 2000, 0.35),
                   point(10.1, 2020, 0.9)]}
    out = equal_time_summary(softmax, z, {"a": 1.0, "b": 3.0, "output_lr": 0.1})
    assert out["top10_zloss_at_softmax_time"] == 0.35
    # 7 of 20 right against 6 of 20, the same 6 among them: one discordant example
    assert "1 discordant of 20" in out["top10_zloss_at_softmax_time_minus_softmax_ci95"]["method"]
    assert out["top10_zloss_tuned_equal_epochs"] == 0.15
    assert out["top10_softmax_curve_end"] == 0.3
    assert out["zloss_cpu_share_of_softmax_per_epoch"] == pytest.approx((10.1 / 2020) / 0.05)
    assert at_time(z["curve"], 0.1)["top10"] == 0.1  # nothing within: the first point


def test_no_checkpoints_means_no_curve():
    row = train_lm("z", cyclic_corpus(), replace(TINY_LM, epochs=1), seed=0)
    assert "curve" not in row and row["train_cpu_s"] > 0
