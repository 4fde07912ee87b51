"""DiffRate on the pretrained MiniLM (a BERT encoder): keep-all equality, padding invariance,
per-sentence schedules, [CLS] first, sizes, the search's masked forward, FLOPs, bad input."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from paperlab.diffrate.model import (
    SearchConfig,
    apply,
    flops_range,
    learned_rates,
    rates_flops,
    search,
    search_flops,
    searchable,
    uniform_rates,
)
from paperlab.diffrate.rates import RateProxy, Rates, flops_loss
from paperlab.merging import tome
from paperlab.merging.bert import bert_flops
from paperlab.text.data import TextSet
from paperlab.text.minilm import load_classifier
from paperlab.vision.data import ImageSet
from tests.text.conftest import SENTENCES

N = 41  # the length the test schedules are defined at (40 tokens besides [CLS])
RATES = Rates((N, 33, 25, 21, 17, 13), (N, 29, 21, 17, 13, 9), N)


@pytest.fixture(scope="module")
def base():
    torch.manual_seed(0)
    return load_classifier(2).eval()


def encoded(tokenizer, texts=SENTENCES):
    return tokenizer(texts, padding=True, return_tensors="pt")


def logits(model, batch):
    with torch.no_grad():
        return model(**batch).logits


def lengths_of(batch) -> list[int]:
    return batch["attention_mask"].sum(dim=1).tolist()


@pytest.mark.parametrize("merge_rule", ["diffrate", "pitome"])
def test_keep_all_equals_the_unpatched_model(base, tokenizer, merge_rule):
    batch = encoded(tokenizer)
    model = apply(copy.deepcopy(base), Rates.keep_all(N, 6), merge_rule=merge_rule)
    assert torch.allclose(logits(model, batch), logits(base, batch), atol=1e-5)


@pytest.mark.parametrize("merge_rule", ["diffrate", "pitome"])
def test_padded_batch_gives_each_sentence_its_output_alone(base, tokenizer, merge_rule):
    model = apply(copy.deepcopy(base), RATES, merge_rule=merge_rule)
    batch = logits(model, encoded(tokenizer))
    alone = torch.cat([logits(model, encoded(tokenizer, [s])) for s in SENTENCES])
    assert torch.allclose(batch, alone, atol=1e-5)
    # ...and the reduction changed the answers (the check can fail)
    assert not torch.allclose(batch, logits(base, encoded(tokenizer)), atol=1e-4)


def test_each_sentence_runs_the_schedule_at_its_own_length(base, tokenizer):
    assert RATES.for_length(N) is RATES
    for text in SENTENCES:
        batch = encoded(tokenizer, [text])
        length = int(batch["input_ids"].shape[1])
        model = apply(copy.deepcopy(base), RATES)
        logits(model, batch)
        scaled = RATES.for_length(length)
        assert model._diffrate.tokens == scaled.tokens()
        # the fraction of the tokens besides [CLS], rounded up
        assert scaled.merge[-1] == 1 + -(-(length - 1) * 8 // 40)


def test_sizes_mask_and_cls(base, tokenizer):
    batch = encoded(tokenizer)
    model = apply(copy.deepcopy(base), RATES)
    logits(model, batch)
    state = model._diffrate
    real = lengths_of(batch)
    kept = [RATES.for_length(n).merge[-1] for n in real]
    assert state.mask.sum(dim=1).tolist() == kept  # the attention mask shrank per sentence
    size = state.size[..., 0]
    assert torch.equal(size > 0, state.mask) and torch.all(size[state.mask] >= 1)
    assert torch.all(size[:, 0] == 1)  # [CLS] never pruned or merged
    # DiffRate's sizes weigh merges by similarity and drop what is pruned: at most the count
    assert torch.all(size.sum(dim=1) <= torch.tensor(real, dtype=size.dtype) + 1e-5)
    assert torch.all(size.sum(dim=1) > torch.tensor(kept, dtype=size.dtype))  # merges grew some


def test_cls_stays_first(base, tokenizer):
    """Reducing only after the last layer's attention leaves [CLS]'s output as it was: it
    attends before the reduction and is still the first token after it."""
    batch = encoded(tokenizer, SENTENCES[2:3])
    with torch.no_grad():
        plain = base.bert(**batch).last_hidden_state[:, 0]
    model = apply(copy.deepcopy(base), Rates((N,) * 6, (N,) * 5 + (5,), N))
    with torch.no_grad():
        reduced = model.bert(**batch).last_hidden_state
    assert reduced.shape[1] < batch["input_ids"].shape[1]
    assert torch.allclose(reduced[:, 0], plain, atol=1e-5)


def _one_hot(proxy: RateProxy, kept: int) -> None:
    with torch.no_grad():
        proxy.logits.zero_()
        proxy.logits[proxy.counts.tolist().index(kept - 1)] = 60.0


def test_search_forward_equals_the_applied_model_at_every_length(base, tokenizer):
    """With one-hot rate logits the masked search forward (no token dropped) of a padded batch
    of four lengths gives the logits of the model that really prunes and merges, and its
    differentiable FLOPs are the analytic FLOPs of the per-sentence schedules."""
    batch = encoded(tokenizer)
    net = copy.deepcopy(base)
    proxies = searchable(net, num_tokens=N)
    for (prune, merge), p, m in zip(proxies, RATES.prune[1:], RATES.merge[1:], strict=True):
        _one_hot(prune, p)
        _one_hot(merge, m)
    assert learned_rates(net) == RATES
    masked = logits(net, batch)
    real = logits(apply(copy.deepcopy(base), RATES), batch)
    assert torch.allclose(masked, real, atol=1e-5)
    assert search_flops(net).item() == pytest.approx(
        rates_flops(base, RATES, lengths=lengths_of(batch)), rel=1e-6)


def test_the_loss_reaches_every_layers_logits(base, tokenizer):
    net = copy.deepcopy(base)
    for p in net.parameters():
        p.requires_grad_(False)
    proxies = searchable(net, num_tokens=N)
    out = net(**encoded(tokenizer)).logits
    full = rates_flops(base, Rates.keep_all(N, 6), lengths=[N])
    (out.logsumexp(-1).sum() + flops_loss(search_flops(net), 0.5 * full, full)).backward()
    for prune, merge in proxies:
        assert prune.logits.grad.abs().sum() > 0 and merge.logits.grad.abs().sum() > 0


def _sentences(n: int = 16) -> TextSet:
    rng = np.random.default_rng(0)
    texts = tuple(SENTENCES[i % 4] for i in range(n))
    return TextSet(texts, rng.integers(0, 2, n), "toy")


def test_search_on_sentences(base, tokenizer):
    data = _sentences()
    lengths = [len(i) for i in tokenizer(list(data.texts))["input_ids"]]
    least, full = flops_range(base, lengths)
    trace: list[dict[str, float]] = []
    rates = search(base, data, 0.5 * full / 1e9, SearchConfig(epochs=2, batch_size=8, lr=0.1),
                   trace, tokenizer=tokenizer)
    assert len(trace) == 4 and rates.num_tokens == max(lengths) and rates.prefix == 1
    assert rates.prune[0] == rates.merge[0] == max(lengths)
    kept = [c for pair in zip(rates.prune, rates.merge, strict=True) for c in pair]
    assert all(a >= b for a, b in zip(kept, kept[1:], strict=False))
    assert least < rates_flops(base, rates, lengths=lengths) < full
    assert not hasattr(base, "_diffrate")  # the model itself is untouched


def test_flops_uniform_and_range(base):
    lengths = [5, 9, 9, 20, 41]
    least, full = flops_range(base, lengths)
    config = base.config
    assert full == pytest.approx(np.mean([bert_flops(config, [(n, n)] * 6, 2) for n in lengths]))
    assert least == pytest.approx(np.mean([bert_flops(config, [(n, n)] + [(n, 1)] + [(1, 1)] * 4,
                                                      2) for n in lengths]))
    assert rates_flops(base, RATES) == bert_flops(config, RATES.tokens(), 2)
    rates = uniform_rates(base, 0.6 * full, lengths)
    assert rates.num_tokens == 41 and rates.prune == rates.merge
    assert rates_flops(base, rates, lengths=lengths) == pytest.approx(0.6 * full, rel=0.03)


def test_bad_input_is_named(base, tokenizer):
    with pytest.raises(ValueError, match="needs lengths"):
        flops_range(base)
    with pytest.raises(ValueError, match="needs lengths"):
        uniform_rates(base, 1e8)
    with pytest.raises(ValueError, match=r"lengths\[1\] must be >= 2"):
        rates_flops(base, RATES, lengths=[5, 1])
    with pytest.raises(ValueError, match="rates keep 2 prefix token"):
        apply(copy.deepcopy(base), Rates.keep_all(N, 6, prefix=2))
    with pytest.raises(ValueError, match="2 blocks of 41 tokens; the model has 6"):
        apply(copy.deepcopy(base), Rates.keep_all(N, 2))
    data = _sentences()
    with pytest.raises(ValueError, match="needs its tokenizer"):
        search(base, data, 0.1)
    images = ImageSet(torch.zeros(2, 3, 32, 32, dtype=torch.uint8), torch.zeros(2),
                      ("a",), "toy")
    with pytest.raises(TypeError, match="searches on a paperlab.text.data.TextSet"):
        search(base, images, 0.1, tokenizer=tokenizer)
    labels = TextSet(data.texts, np.full(len(data), 3), "toy")
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\)"):
        search(base, labels, 0.1, tokenizer=tokenizer)
    with pytest.raises(ValueError, match="outside the reachable range"):
        search(base, data, 10.0, tokenizer=tokenizer)
    with pytest.raises(TypeError, match="timm VisionTransformer or a Hugging Face BERT"):
        apply(nn.Linear(2, 2), RATES)


def test_one_token_reduction_per_model(base):
    with pytest.raises(ValueError, match="already patched by token merging"):
        apply(tome.patch(copy.deepcopy(base), 2), RATES)
    with pytest.raises(ValueError, match="already patched by DiffRate"):
        tome.patch(apply(copy.deepcopy(base), RATES), 2)
    again = apply(apply(copy.deepcopy(base), RATES), Rates.keep_all(N, 6))
    assert again._diffrate.rates == Rates.keep_all(N, 6)  # applying again replaces the rates


def test_text_batches_cover_every_sentence_once_and_hold_similar_lengths():
    from paperlab.diffrate.model import _batches

    lengths = np.random.default_rng(0).integers(3, 64, 500).tolist()
    batches = list(_batches(500, 32, torch.Generator().manual_seed(0), lengths, pool=4))
    assert sorted(torch.cat(batches).tolist()) == list(range(500))
    spread = np.mean([np.ptp([lengths[i] for i in b.tolist()]) for b in batches])
    shuffled = list(_batches(500, 32, torch.Generator().manual_seed(0)))
    assert spread < 0.5 * np.mean([np.ptp([lengths[i] for i in b.tolist()]) for b in shuffled])
