"""PiToMe on a BERT encoder (the pretrained MiniLM): padding-exact, [CLS] kept, keep 1 equal."""

from __future__ import annotations

import pytest
import torch

from paperlab import pitome
from paperlab.merging.energy import TEXT_SCHEDULES
from paperlab.merging.plan import merge_state
from tests.merging.test_bert import classifier, logits
from tests.text.conftest import SENTENCES


@pytest.mark.parametrize("schedule", TEXT_SCHEDULES)
def test_pitome_on_bert_is_padding_exact_and_keeps_cls(tokenizer, schedule):
    model = pitome.patch(classifier(), keep_ratio=0.8, schedule=schedule)
    batch = logits(model, tokenizer, SENTENCES)
    alone = torch.cat([logits(model, tokenizer, [s]) for s in SENTENCES])
    assert torch.allclose(batch, alone, atol=1e-5)
    enc = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    with torch.no_grad():
        model(**enc)
    state = merge_state(model)
    assert torch.equal(state.size[..., 0].sum(dim=1), enc["attention_mask"].sum(dim=1).float())
    assert torch.all(state.size[:, 0, 0] == 1)
    # The longest sentence (keep 0.8 of T) loses tokens where the schedule merges: the first
    # three layers only in the reference's text schedule, every layer otherwise.
    lost = [n_in > n_out for n_in, n_out in state.tokens]
    assert lost == ([True] * 3 + [False] * 3 if schedule == "reference" else [True] * 6)
    keep_all = pitome.patch(classifier(), keep_ratio=1.0)
    assert torch.allclose(logits(keep_all, tokenizer, SENTENCES),
                          logits(classifier(), tokenizer, SENTENCES), atol=1e-5)
    with pytest.raises(TypeError, match="keep_ratio must be a real number, got True"):
        pitome.patch(classifier(), keep_ratio=True)


def test_unknown_text_schedule_is_refused():
    with pytest.raises(ValueError, match="every-layer"):
        pitome.patch(classifier(), keep_ratio=0.9, schedule="halves")
