"""Token merging on the pretrained MiniLM (a BERT encoder): padding, [CLS], equality, FLOPs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from paperlab.merging import bert, tome
from paperlab.merging.plan import merge_state
from paperlab.text.minilm import load_classifier
from tests.text.conftest import SENTENCES


def classifier(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return load_classifier(2).eval()


def logits(model, tokenizer, texts):
    enc = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        return model(**enc).logits


def test_r0_equals_the_unpatched_model(tokenizer):
    plain, patched = classifier(), tome.patch(classifier(), r=0)
    assert torch.allclose(logits(plain, tokenizer, SENTENCES),
                          logits(patched, tokenizer, SENTENCES), atol=1e-5)


def test_padded_batch_gives_each_sentence_its_output_alone(tokenizer):
    model = tome.patch(classifier(), r=3)
    batch = logits(model, tokenizer, SENTENCES)
    alone = torch.cat([logits(model, tokenizer, [s]) for s in SENTENCES])
    assert torch.allclose(batch, alone, atol=1e-5)
    # ...and merging changed the model's answer somewhere (the check can fail).
    assert not torch.allclose(batch, logits(classifier(), tokenizer, SENTENCES), atol=1e-5)


def test_sizes_sum_to_each_sentence_and_cls_stays_first(tokenizer):
    model = tome.patch(classifier(), r=4)
    enc = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    with torch.no_grad():
        model(**enc)
    state = merge_state(model)
    real = enc["attention_mask"].sum(dim=1)
    assert torch.equal(state.size[..., 0].sum(dim=1), real.float())
    assert torch.all(state.size[:, 0, 0] == 1)  # [CLS] never merged
    assert torch.equal(state.mask.sum(dim=1), (state.size[..., 0] > 0).sum(dim=1))
    assert state.mask.shape[1] < enc["input_ids"].shape[1]  # the mask shrank with the tokens
    # the shortest sentence ("bad .": [CLS] bad . [SEP]) merges at most half each layer
    assert int(state.mask[3].sum()) >= 2


def test_cls_is_first_in_the_merged_order(tokenizer):
    torch.manual_seed(0)
    model = load_classifier(2).eval()
    enc = tokenizer(SENTENCES[:1], return_tensors="pt")
    with torch.no_grad():
        plain = model.bert(**enc).last_hidden_state[:, 0]
    tome.patch(model, r=[0, 0, 0, 0, 0, 2])  # merging only after the last layer's attention
    with torch.no_grad():
        merged = model.bert(**enc).last_hidden_state[:, 0]
    # [CLS] attends before the only merge, so its output is unchanged.
    assert torch.allclose(plain, merged, atol=1e-5)


def test_any_attention_implementation_is_handled(tokenizer):
    plain = classifier()
    sdpa = classifier()
    sdpa.config._attn_implementation = "sdpa"
    tome.patch(sdpa, r=0)
    assert torch.allclose(logits(plain, tokenizer, SENTENCES), logits(sdpa, tokenizer, SENTENCES),
                          atol=1e-5)


def test_other_models_and_bad_options_are_refused():
    with pytest.raises(TypeError, match="BERT"):
        bert.bert_encoder(nn.Linear(2, 2))
    with pytest.raises(TypeError):
        tome.patch(nn.Sequential(nn.Linear(2, 2)), r=1)
    with pytest.raises(ValueError, match="r must be >= 0, got -1"):
        tome.patch(classifier(), r=-1)
    with pytest.raises(ValueError, match="6 layers|entries"):
        tome.patch(classifier(), r=[1, 2])
    with pytest.raises(ValueError, match="attention mask"):
        bert.valid_tokens(torch.ones(2, 3, 4), 2, 4)


def test_bert_flops_agree_with_torch_flop_counter(tokenizer):
    from torch.utils.flop_counter import FlopCounterMode

    model = tome.patch(classifier(), r=2)
    enc = tokenizer(SENTENCES[2:3], return_tensors="pt")
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(**enc)
    state = merge_state(model)
    ours = bert.bert_flops(model.config, state.tokens, num_labels=2)
    # flop_counter counts a multiply-add as 2 FLOPs and also counts ToMe's matching (A x B
    # similarities over a head's width), which the papers leave out, as bert_flops does.
    head = model.config.hidden_size // model.config.num_attention_heads
    matching = sum(((n - 1) // 2) * (n - 1 - (n - 1) // 2) * head for n, _ in state.tokens)
    assert counter.get_total_flops() / 2 - matching == pytest.approx(ours, rel=1e-9)
    full = bert.bert_flops(model.config, [(n, n) for n, _ in state.tokens[:1]] * 6, 2)
    assert ours < full



def test_matched_tome_follows_pitome_counts_on_every_sentence(tokenizer):
    from paperlab.merging.energy import PiToMeRule, layer_margins

    rule = PiToMeRule(0.7, layer_margins(6), (True,) * 6)
    for text in SENTENCES:
        enc = tokenizer([text], return_tensors="pt")
        n = int(enc["input_ids"].shape[1])
        model = tome.patch_matched(classifier(), rule)
        with torch.no_grad():
            model(**enc)
        assert merge_state(model).tokens == rule.schedule(n, 6, 1)


def test_key_weights_exclude_keys_exactly(tokenizer):
    """A key of weight 0 is as if it were not there: the other tokens' outputs equal those of
    the sequence without it (the search's masked attention relies on it)."""
    model = classifier()
    layer = model.bert.encoder.layer[0]
    enc = tokenizer(SENTENCES[:1], return_tensors="pt")
    with torch.no_grad():
        x = model.bert.embeddings(enc["input_ids"])
        keep = torch.ones(x.shape[:2])
        keep[0, 3] = 0
        masked, _, probs = bert.self_attention(layer, x, key_weights=keep)
        alone, _, _ = bert.self_attention(layer, x[:, keep[0] > 0])
    assert torch.allclose(masked[:, keep[0] > 0], alone, atol=1e-5)
    assert torch.all(probs[..., 3] == 0) and torch.allclose(probs.sum(-1), torch.ones(1))


def test_mean_bert_flops_counts_each_length():
    config = classifier().config
    schedule = lambda n: [(n, n), (n, n - 1)] + [(n - 1, n - 1)] * 4  # noqa: E731
    lengths = [5, 9, 9, 30]
    want = sum(bert.bert_flops(config, schedule(n), 2) for n in lengths) / 4
    assert bert.mean_bert_flops(config, schedule, lengths, 2) == pytest.approx(want)
    with pytest.raises(ValueError, match="at least one"):
        bert.mean_bert_flops(config, schedule, [], 2)


def test_a_merging_patch_does_not_stack_on_another_reduction():
    class _Other:  # stands for another token reduction's encoder mixin (DiffRate's)
        patch_name = "another reduction"

    model = classifier()
    bert.patch_encoder(model, _Other)
    with pytest.raises(ValueError, match="already patched by another reduction"):
        tome.patch(model, r=1)
