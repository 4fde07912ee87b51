"""What DiffRate does between attention and the feed-forward, for every model family: the
deploy-time reduction of a block (:func:`reduce_block`) and the masked, differentiable step of
the search (:func:`search_step`), with the state a patched model shares with its blocks.

The deploy-time reduction is the substrate's (:mod:`paperlab.merging.prune`): tokens ranked by
the class token's attention, pruned, then merged by DiffRate's rule or PiToMe's energy rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from paperlab.diffrate.rates import RateProxy, Rates
from paperlab.merging.prune import most_similar, prune_energy_merge, prune_merge, rank

MERGE_RULES = ("diffrate", "pitome")


def check_rule(merge_rule: str) -> None:
    """``ValueError`` naming the choices unless ``merge_rule`` is one of :data:`MERGE_RULES`."""
    if merge_rule not in MERGE_RULES:
        raise ValueError(f"merge_rule must be one of {MERGE_RULES}, got {merge_rule!r}")


@dataclass
class State:
    """Shared by a patched model and its blocks; ``size``/``mask``/``tokens``/``flops`` are
    reset at every forward.

    Attributes:
        rates: the schedule (apply), or None (search).
        proxies: ``(prune, merge)`` :class:`RateProxy` pairs of blocks 1 .. L-1 (search).
        prop_attn: add ``log(size)`` to the attention logits.
        prefix: leading tokens never pruned or merged.
        num_tokens: the length the schedule or the proxies are defined at.
        margins, protect: per block, the energy rule's (``merge_rule="pitome"``), else None.
        num_labels: classifier outputs counted in a text model's FLOPs.
        size: the last forward's token sizes ``(B, K, 1)`` (0 at a text batch's padding).
        mask: ViT search: the running token mask; text: real tokens ``(B, K)`` after the
            encoder.
        tokens: ``(tokens in, tokens out)`` per block (the longest sentence's for text;
            differentiable tensors during a ViT search).
        flops: text search: ``(sentences, FLOPs per sentence (differentiable), full FLOPs per
            sentence)`` of each group of equal length of the last forward.
    """

    rates: Rates | None
    proxies: nn.ModuleList | None = None
    prop_attn: bool = True
    prefix: int = 1
    num_tokens: int = 0
    margins: tuple[float, ...] | None = None
    protect: tuple[bool, ...] | None = None
    num_labels: int = 0
    size: torch.Tensor | None = None
    mask: torch.Tensor | None = None
    tokens: list[tuple[Any, Any]] = field(default_factory=list)
    flops: list[tuple[int, torch.Tensor, float]] = field(default_factory=list)

    def reset(self) -> None:
        """Forget the last forward."""
        self.size, self.mask, self.tokens, self.flops = None, None, [], []


def reduce_block(state: State, layer: int, x: torch.Tensor, size: torch.Tensor,
                 metric: torch.Tensor, cls_attn: torch.Tensor, rates: Rates
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Block ``layer``'s reduction by ``rates`` (the schedule of this sequence length): tokens
    ``(B, N, C)`` and sizes ``(B, N, 1)`` to ``rates.merge[layer]`` tokens, by DiffRate's merge
    or, with ``state.margins``, PiToMe's energy rule on the pruned tokens. ``metric`` are the
    keys averaged over heads, ``cls_attn`` ``(B, N - prefix)`` the class token's attention."""
    prune, merge = rates.prune[layer], rates.merge[layer]
    if merge >= x.shape[1]:
        return x, size
    if state.margins is None:
        return prune_merge(x, size, cls_attn, prune, merge, rates.prefix)
    assert state.protect is not None
    return prune_energy_merge(x, size, metric, cls_attn, prune, merge, state.margins[layer],
                              state.protect[layer], rates.prefix)


def search_step(x: torch.Tensor, size: torch.Tensor, mask: torch.Tensor,
                cls_attn: torch.Tensor, prune_mask: torch.Tensor, merge_mask: torch.Tensor,
                prefix: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One block of the search, no token dropped: sort the tokens by class attention, mask the
    pruned and merged ones, merge by the proxy-weighted mean (each merged token into its most
    similar kept one, detached features), grow the sizes as :func:`reduce_block` does.

    Args:
        x: ``(B, N, C)`` tokens, in the previous block's order.
        size: ``(B, N, 1)`` their sizes.
        mask: ``(B, N)`` the running mask (1 = still a token).
        cls_attn: ``(B, N - prefix)`` the class token's attention (key-masked).
        prune_mask: ``(N,)`` the pruning proxy's mask over sorted positions.
        merge_mask: ``(N,)`` the merging proxy's mask over sorted positions.
        prefix: leading tokens never pruned or merged.

    Returns:
        the sorted, merged tokens, their sizes and the new mask (all ``N`` positions).
    """
    order = rank(cls_attn, prefix)
    x = x.gather(1, order[..., None].expand_as(x))
    size = size.gather(1, order[..., None])
    mask = mask.gather(1, order)
    kept_p = mask * prune_mask
    kept_m = kept_p * merge_mask
    weight = kept_p - kept_m  # 1 (forward) for tokens that merge
    dest = kept_m.detach() > 0.5
    dest[:, :prefix] = False
    sim, dst = most_similar(x, dest)
    weight = weight * dest.any(-1, keepdim=True)
    index = dst.clamp(min=0)[..., None]
    num = x.scatter_add(1, index.expand_as(x), weight[..., None] * x)
    den = (1 + torch.zeros_like(weight).scatter_add(1, dst.clamp(min=0), weight))[..., None]
    x = torch.where(dest[..., None], num / den, x)
    grow = weight[..., None] * sim.clamp(min=0)[..., None] * size
    size = size + torch.zeros_like(size).scatter_add(1, index, grow)
    return x, size, kept_m


def search_tokens(n_in: torch.Tensor, prune: RateProxy, merge: RateProxy,
                  patches: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """A search block's differentiable ``(tokens in, tokens out)``: out is
    ``min(in, kept by pruning, kept by merging)`` for ``patches`` non-prefix tokens (straight-
    through, so the FLOPs loss reaches the logits)."""
    return n_in, torch.minimum(n_in, torch.minimum(prune.kept(patches), merge.kept(patches)))
