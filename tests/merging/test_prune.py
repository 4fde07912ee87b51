"""Pruning by class attention, then merging (merging/prune.py), on hand-made tokens."""

from __future__ import annotations

import pytest
import torch

from paperlab.merging.prune import energy_merges, most_similar, prune_merge, rank


def test_rank_keeps_the_prefix_in_front():
    cls_attn = torch.tensor([[0.1, 0.5, 0.2, 0.5]])
    assert rank(cls_attn, prefix=1).tolist() == [[0, 2, 4, 3, 1]]  # ties by position
    assert rank(cls_attn, prefix=2).tolist() == [[0, 1, 3, 5, 4, 2]]


@pytest.mark.parametrize("prefix", [1, 2])
def test_prune_merge_keeps_prefix_drops_the_lowest_and_merges_the_middle(prefix):
    torch.manual_seed(0)
    n, c = 9, 6
    x = torch.randn(2, n, c)
    size = torch.ones(2, n, 1)
    cls_attn = torch.arange(n - prefix, 0, -1, dtype=torch.float).expand(2, -1)  # index order
    out, out_size = prune_merge(x, size, cls_attn, prune=7, merge=5, prefix=prefix)
    assert out.shape == (2, 5, c) and out_size.shape == (2, 5, 1)
    assert torch.equal(out[:, :prefix], x[:, :prefix]) and torch.all(out_size[:, :prefix] == 1)
    # tokens 5 and 6 merge into their most similar of the kept non-prefix tokens; 7, 8 dropped
    sim, dst = most_similar(x, torch.arange(n).expand(2, -1).ge(prefix) & torch.arange(n).lt(5))
    want = x[:, :5].clone()
    grown = torch.ones(2, 5)
    for b in range(2):
        for src in (5, 6):
            grown[b, dst[b, src]] += sim[b, src].clamp(min=0)
        for d in range(prefix, 5):
            group = [d] + [s for s in (5, 6) if dst[b, s] == d]
            want[b, d] = x[b, group].mean(dim=0)
    assert torch.allclose(out, want, atol=1e-6)
    assert torch.allclose(out_size[..., 0], grown, atol=1e-6)


def test_merging_copies_gives_counts():
    """Tokens that merge into an identical token have similarity 1, so the sizes add up to the
    tokens held: nothing pruned, every size is a count and they sum to the input's."""
    base = torch.randn(1, 4, 8)
    x = torch.cat([base, base[:, 1:3]], dim=1)  # tokens 4 and 5 copy tokens 1 and 2
    cls_attn = torch.tensor([[5.0, 4.0, 3.0, 0.2, 0.1]])
    out, size = prune_merge(x, torch.ones(1, 6, 1), cls_attn, prune=6, merge=4)
    assert size.sum() == pytest.approx(6.0) and size[0, :, 0].tolist() == pytest.approx(
        [1, 2, 2, 1])
    assert torch.allclose(out, base, atol=1e-6)


def test_bad_counts_and_energy_cap():
    x = torch.randn(1, 5, 4)
    with pytest.raises(ValueError, match="need 2 <= merge"):
        prune_merge(x, torch.ones(1, 5, 1), torch.rand(1, 3), prune=4, merge=1, prefix=2)
    assert energy_merges(60, 10) == 29 and energy_merges(60, 10, prefix=2) == 29
    assert energy_merges(61, 10, prefix=2) == 29 and energy_merges(20, 15) == 5
