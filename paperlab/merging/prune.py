"""Pruning by the class token's attention, then merging into the kept tokens (DiffRate's token
reduction, Chen et al., ICCV 2023), for any model family.

In a block with ``N`` tokens whose first ``prefix`` are prefix tokens (the class token first,
then e.g. a distillation token), after attention:

1. the other tokens are ranked by the class token's attention (mean over heads), highest first
   (:func:`rank`); prefix tokens stay in front, in their order, and are never pruned or merged;
2. prune: the prefix and the top ``prune - prefix`` stay, the rest are dropped;
3. merge: the tokens ranked ``merge - prefix .. prune - prefix - 1`` merge, each into its most
   cosine-similar token among the top ``merge - prefix`` (features detached), by an unweighted
   mean; the destination's size grows by the merged token's size times the similarity
   (clamped at 0).

Output: ``merge`` tokens, ``[prefix, kept tokens by rank]`` (:func:`prune_merge`). Sizes are
the proportional-attention weights DiffRate defines, not counts of original tokens: a pruned
token leaves nothing, and a merged one adds its size times its similarity, so a sequence's
sizes sum to at most its token count. :func:`prune_energy_merge` prunes the same way and then
merges by PiToMe's energy rule (:mod:`paperlab.merging.energy`) with summed sizes.
"""

from __future__ import annotations

import math

import torch

from paperlab.merging.energy import energy_plan
from paperlab.merging.plan import MergePlan, merge_wavg, normalized


def rank(cls_attn: torch.Tensor, prefix: int = 1) -> torch.Tensor:
    """``(B, N)`` token order: the ``prefix`` tokens, then the others by the class token's
    attention ``cls_attn`` ``(B, N - prefix)``, highest first (ties by position)."""
    order = cls_attn.argsort(dim=-1, descending=True, stable=True) + prefix
    front = torch.arange(prefix, device=order.device).expand(order.shape[0], -1)
    return torch.cat([front, order], dim=1)


def most_similar(x: torch.Tensor, dest: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each token's most cosine-similar allowed destination on detached features.

    Args:
        x: ``(B, N, C)`` tokens.
        dest: ``(B, N)`` bool, the allowed destinations.

    Returns:
        ``(similarity, index)``, both ``(B, N)`` (``-inf`` and 0 where no destination exists).
    """
    m = normalized(x.detach())
    sim = (m @ m.transpose(1, 2)).masked_fill(~dest[:, None, :], -math.inf)
    return sim.max(dim=-1)


def prune_merge(x: torch.Tensor, size: torch.Tensor, cls_attn: torch.Tensor, prune: int,
                merge: int, prefix: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """One block's reduction (see the module docstring).

    Args:
        x: ``(B, N, C)`` tokens, prefix tokens first.
        size: ``(B, N, 1)`` token sizes.
        cls_attn: ``(B, N - prefix)`` the class token's attention to the non-prefix tokens,
            averaged over heads.
        prune: tokens left after pruning, ``prefix <= prune <= N``.
        merge: tokens left after merging, ``prefix <= merge <= prune``.
        prefix: leading tokens never pruned or merged.

    Returns:
        the ``(B, merge, C)`` tokens and their ``(B, merge, 1)`` sizes.
    """
    if not prefix <= merge <= prune <= x.shape[1]:
        raise ValueError(f"need {prefix} <= merge ({merge}) <= prune ({prune}) <= tokens "
                         f"({x.shape[1]})")
    order = rank(cls_attn, prefix)
    keep, src = order[:, :merge], order[:, merge:prune]
    if src.shape[1] == 0 or merge == prefix:  # nothing merges, or no token to merge into
        plan = MergePlan(keep, src[:, :0], src[:, :0])
        return plan.merge(x), plan.merge(size)
    m = normalized(x.detach())
    c = m.shape[-1]
    m_src = m.gather(1, src[..., None].expand(-1, -1, c))
    m_dst = m.gather(1, keep[:, prefix:, None].expand(-1, -1, c))
    sim, dst = (m_src @ m_dst.transpose(1, 2)).max(dim=-1)
    plan = MergePlan(keep, src, dst + prefix)
    weight = torch.ones_like(size).scatter_(1, src[..., None], sim[..., None].clamp(min=0))
    return plan.merge(x, "mean"), plan.merge(size * weight, "sum")


def energy_merges(prune: int, merge: int, prefix: int = 1) -> int:
    """Tokens the energy rule merges away after pruning to ``prune`` tokens when the schedule
    asks for ``merge``: ``prune - merge``, capped at half the ``prune - prefix`` non-prefix
    tokens (the most one A/B split can merge; what is left over is pruned or merged by later
    blocks, whose counts are absolute)."""
    return min(prune - merge, (prune - prefix) // 2)


def prune_energy_merge(x: torch.Tensor, size: torch.Tensor, metric: torch.Tensor,
                       cls_attn: torch.Tensor, prune: int, merge: int, margin: float,
                       protect: bool, prefix: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """The pruning of :func:`prune_merge` (the prefix and the top ``prune - prefix`` tokens by
    class attention stay), then PiToMe's energy-score merge of :func:`energy_merges` tokens
    (``metric`` ``(B, N, C')`` the keys averaged over heads, ``margin`` and ``protect`` the
    block's, see :func:`~paperlab.merging.energy.energy_plan`) with the size-weighted average
    and summed sizes of :func:`~paperlab.merging.plan.merge_wavg`."""
    keep = rank(cls_attn, prefix)[:, :prune, None]
    x, size = x.gather(1, keep.expand(-1, -1, x.shape[-1])), size.gather(1, keep)
    metric = metric.gather(1, keep.expand(-1, -1, metric.shape[-1]))
    plan = energy_plan(metric, energy_merges(prune, merge, prefix), margin, prefix, protect)
    return (x, size) if plan is None else merge_wavg(plan, x, size)
