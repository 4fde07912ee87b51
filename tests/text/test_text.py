"""The text substrate: staged readers, the offline MiniLM classifier, the fine-tuning cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from paperlab.core.data import DataNotFoundError
from paperlab.text import data, train


def _staged() -> bool:
    try:
        data.read_sst2("dev")
        data.read_rotten_tomatoes("test")
    except DataNotFoundError:
        return False
    return True


needs_data = pytest.mark.skipif(not _staged(), reason="text data not staged")


@needs_data
def test_sst2_splits_have_the_published_sizes():
    sizes = {s: len(data.read_sst2(s)) for s in ("train", "dev", "test")}
    assert sizes == {"train": 6920, "dev": 872, "test": 1821}
    dev = data.read_sst2("dev")
    assert set(np.unique(dev.labels)) == {0, 1} and dev.name == "sst2/dev"


@needs_data
def test_rotten_tomatoes_is_the_standard_disjoint_balanced_split():
    splits = {s: data.read_rotten_tomatoes(s) for s in data.RT_SPLITS}
    assert [len(splits[s]) for s in data.RT_SPLITS] == [8530, 1066, 1066]
    for s in splits.values():
        assert s.labels.mean() == 0.5
    seen = [set(splits[s].texts) for s in data.RT_SPLITS]
    # MR has a few duplicate sentences across the file; the split is by position, so allow them.
    assert len(seen[0] & seen[2]) < 10 and len(seen[1] & seen[2]) < 10


def test_readers_name_a_malformed_line_and_a_missing_file(tmp_path):
    folder = tmp_path / "text" / "sst2_stsa"
    folder.mkdir(parents=True)
    (folder / "stsa.binary.dev").write_text("1 good film\n2 what\n")
    with pytest.raises(ValueError, match="line 2"):
        data.read_sst2("dev", root=tmp_path)
    with pytest.raises(DataNotFoundError, match="paperlab data fetch pitome"):
        data.read_rotten_tomatoes("train", root=tmp_path)
    with pytest.raises(ValueError, match="split"):
        data.read_sst2("validation", root=tmp_path)
    with pytest.raises(ValueError, match="unknown text data set"):
        data.read("imdb", "test", root=tmp_path)


def test_subset_is_seeded_and_keeps_order():
    s = data.TextSet(tuple(f"s{i}" for i in range(20)), np.arange(20) % 2, "toy")
    a, b = s.subset(5, seed=1), s.subset(5, seed=1)
    assert a.texts == b.texts and list(a.texts) == sorted(a.texts, key=lambda t: int(t[1:]))
    assert s.subset(50) is s


def test_config_is_validated():
    for bad in ({"epochs": 0}, {"lr": -1.0}, {"warmup": 1.0}, {"max_length": 2},
                {"batch_size": 1.5}):
        with pytest.raises(ValueError):
            train.FinetuneConfig(**bad)
    cfg = train.FinetuneConfig(warmup=0.1)
    rates = [cfg.lr_at(s, 100) for s in range(100)]
    assert max(rates) == pytest.approx(cfg.lr) and rates[0] < rates[9] and rates[-1] < rates[50]


TOY = data.TextSet(
    tuple(["a wonderful , moving film"] * 8 + ["a dull , tedious mess"] * 8),
    np.array([1] * 8 + [0] * 8), "toy")


def test_finetune_learns_an_easy_split_and_caches_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PAPERLAB_CACHE", str(tmp_path))
    cfg = train.FinetuneConfig(epochs=3, batch_size=8, lr=1e-4, max_length=16, warmup=0.0)
    fitted = train.finetune(TOY, cfg)
    assert not fitted.cached and fitted.path.exists() and len(fitted.history) == 3
    pred = train.predict(fitted.model, fitted.tokenizer, TOY.texts, max_length=16)
    assert pred.dtype == np.int64 and (pred == TOY.labels).all()
    again = train.finetune(TOY, cfg)
    assert again.cached and again.history == fitted.history
    for (n, p), q in zip(fitted.model.state_dict().items(), again.model.state_dict().values(),
                         strict=True):
        assert torch.equal(p, q), n


def test_finetune_refuses_bad_data():
    with pytest.raises(ValueError, match="labels must be in"):
        train.finetune(data.TextSet(("a", "b"), np.array([0, 2]), "bad"),
                       train.FinetuneConfig(), cache=False)
    with pytest.raises(ValueError, match="empty"):
        train.finetune(data.TextSet(("a", " "), np.array([0, 1]), "bad"),
                       train.FinetuneConfig(), cache=False)
    with pytest.raises(ValueError, match="texts but"):
        data.TextSet(("a",), np.array([0, 1]), "bad")


def test_finetune_early_stops_on_validation_and_keeps_the_best_restart(tmp_path, monkeypatch):
    monkeypatch.setenv("PAPERLAB_CACHE", str(tmp_path))
    cfg = train.FinetuneConfig(epochs=6, batch_size=8, lr=1e-4, max_length=16, warmup=0.0)
    val = data.TextSet(("a wonderful film", "a tedious mess"), np.array([1, 0]), "toy/val")
    fitted = train.finetune(TOY, cfg, validation=val, patience=1, restarts=2)
    restarts = [h["restart"] for h in fitted.history]
    assert set(restarts) == {0, 1} and restarts == sorted(restarts)
    sel = fitted.selected
    assert sel["epochs"] == len(fitted.history)
    # each restart keeps its first best validation accuracy and stops `patience` epochs
    # after it (or at cfg.epochs); the kept weights of lowest validation loss win
    kept = {}
    for r in (0, 1):
        runs = [h for h in fitted.history if h["restart"] == r]
        accs = [h["val_acc"] for h in runs]
        kept[r] = runs[accs.index(max(accs))]
        assert len(runs) == min(cfg.epochs, accs.index(max(accs)) + 2)
    losses = {r: h["val_loss"] for r, h in kept.items()}
    assert sel["restart"] == min(losses, key=losses.get)
    assert sel["val_loss"] == pytest.approx(losses[sel["restart"]])
    acc, loss = train.evaluate(fitted.model, fitted.tokenizer, val, max_length=16)
    assert acc == pytest.approx(sel["val_acc"]) and loss == pytest.approx(sel["val_loss"],
                                                                          rel=1e-4)
    # the cache key covers the validation set and the restarts; a second call loads it
    assert fitted.path != train.checkpoint_path(TOY, cfg, 2)
    assert fitted.path != train.checkpoint_path(TOY, cfg, 2, val, patience=1, restarts=1)
    again = train.finetune(TOY, cfg, validation=val, patience=1, restarts=2)
    assert again.cached and again.selected == sel


def test_finetune_refuses_restarts_without_validation():
    with pytest.raises(ValueError, match="validation"):
        train.finetune(TOY, train.FinetuneConfig(), restarts=2, cache=False)
    with pytest.raises(ValueError, match="patience"):
        train.finetune(TOY, train.FinetuneConfig(), validation=TOY, patience=0, cache=False)
