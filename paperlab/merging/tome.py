"""ToMe (Bolya et al., ICLR 2023), the baseline of both token-reduction papers.

In every block, after attention: keys averaged over heads and L2-normalised are the metric;
patch tokens alternate into sets A and B; the ``r`` A tokens whose most similar B token is most
similar merge into it (size-weighted average, sizes tracked); the class token is never merged.
Proportional attention adds log(size) to the attention logits.

    from paperlab.merging import tome
    tome.patch(model, r=8)          # a timm VisionTransformer, patched in place
    model.eval()(images)            # r tokens fewer after every block
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

from paperlab.core.checks import describe
from paperlab.merging import bert
from paperlab.merging.bert import bert_depth, is_bert
from paperlab.merging.plan import MergePlan, match, merge_schedule, normalized, per_layer
from paperlab.merging.vit import apply_rule, vit_depth


def bipartite_soft_matching(metric: torch.Tensor, r: int, prefix: int = 1) -> MergePlan:
    """ToMe's merge plan for one layer.

    Args:
        metric: ``(B, N, C)`` keys averaged over heads (the first ``prefix`` are the class
            token and other prefix tokens, never merged).
        r: tokens to remove, ``0 <= r <= (N - prefix) // 2``.
        prefix: number of leading tokens kept in front untouched.

    Returns:
        the plan: output ``[prefix, unmerged A, B]`` with ``N - r`` tokens, where B holds the
        patch tokens at even offsets from the prefix and A those at odd offsets (with one class
        token this is ToMe's split: A = even positions minus the class token, B = odd).
    """
    b, n, _ = metric.shape
    patches = n - prefix
    if not 0 <= r <= patches // 2:
        raise ValueError(f"r={r} out of range: {patches} patch tokens allow 0..{patches // 2}")
    device = metric.device
    a_idx = torch.arange(prefix + 1, n, 2, device=device).expand(b, -1)
    b_idx = torch.arange(prefix, n, 2, device=device).expand(b, -1)
    front = torch.arange(prefix, device=device).expand(b, -1)
    return match(normalized(metric), a_idx, b_idx, r, front)


@dataclass(frozen=True)
class ToMeRule:
    """Merge ``r[layer]`` tokens in each layer (see :func:`bipartite_soft_matching`).

    With ``clip`` a layer merges at most half its tokens (for text, where sentences are shorter
    than some ``r``, as ToMe's text patches do); without, such an ``r`` is an error.
    """

    r: tuple[int, ...]
    clip: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.r, Sequence):
            raise TypeError(f"r must be a sequence of per-layer counts, got {describe(self.r)}")
        object.__setattr__(self, "r", tuple(per_layer(self.r, len(self.r), "r")))

    def _r(self, layer: int, n: int, prefix: int) -> int:
        r = self.r[layer]
        return min(r, (n - prefix) // 2) if self.clip else r

    def plan(self, metric: torch.Tensor, layer: int, prefix: int) -> MergePlan | None:
        r = self._r(layer, metric.shape[1], prefix)
        return bipartite_soft_matching(metric, r, prefix) if r else None

    def schedule(self, num_tokens: int, depth: int, prefix: int) -> list[tuple[int, int]]:
        if len(self.r) != depth:
            raise ValueError(f"r has {len(self.r)} entries for {depth} blocks")
        return merge_schedule(lambda layer, n: self._r(layer, n, prefix), num_tokens, depth,
                              prefix, f"r={self.r[0] if len(set(self.r)) == 1 else self.r}")


class CountedRule(Protocol):
    """A rule that says how many tokens each layer merges (PiToMe's :class:`PiToMeRule`)."""

    def merges(self, layer: int, num_tokens: int, prefix: int) -> int: ...

    def schedule(self, num_tokens: int, depth: int, prefix: int) -> list[tuple[int, int]]: ...


@dataclass(frozen=True)
class MatchedToMeRule:
    """ToMe's bipartite matching, merging in every layer as many tokens as ``reference`` does
    (the same token counts, so the same FLOPs: the reference code's ToMe baseline). Works for
    any input length, e.g. sentences, since the count follows the tokens that come in."""

    reference: CountedRule

    def plan(self, metric: torch.Tensor, layer: int, prefix: int) -> MergePlan | None:
        r = self.reference.merges(layer, metric.shape[1], prefix)
        return bipartite_soft_matching(metric, r, prefix) if r else None

    def schedule(self, num_tokens: int, depth: int, prefix: int) -> list[tuple[int, int]]:
        return self.reference.schedule(num_tokens, depth, prefix)


def patch_matched(model: nn.Module, reference: CountedRule, prop_attn: bool = True
                  ) -> nn.Module:
    """Apply ToMe with ``reference``'s merge counts (:class:`MatchedToMeRule`) to a timm ViT or
    a BERT model in place; returns it."""
    rule = MatchedToMeRule(reference)
    if is_bert(model):
        return bert.apply_rule(model, rule, prop_attn=prop_attn)
    return apply_rule(model, rule, prop_attn=prop_attn)


def tome_counts(tokens: list[tuple[int, int]], prefix: int = 1) -> list[int]:
    """Per-block ToMe ``r`` that follows a token schedule ``[(tokens in, tokens out), ...]``
    (another method's), each capped at half the non-prefix tokens (what bipartite matching can
    merge) with the shortfall carried to the next blocks (so ToMe can end with more tokens, and
    FLOPs)."""
    out, n, owed = [], tokens[0][0], 0
    for n_in, n_out in tokens:
        owed += n_in - n_out
        r = min(owed, (n - prefix) // 2)
        out.append(r)
        owed, n = owed - r, n - r
    return out


def patch(
    model: nn.Module,
    r: int | Sequence[int],
    prop_attn: bool = True,
    *,
    trace_source: bool = False,
    fused: bool | None = None,
) -> nn.Module:
    """Apply ToMe to a timm ``VisionTransformer`` or a Hugging Face BERT model in place
    (weights untouched); returns it.

    On BERT (``BertModel``, ``BertForSequenceClassification``, ...) ``[CLS]`` is the class
    token, a layer merges at most half of a sentence's tokens (short sentences merge fewer) and
    padding is never merged (see :mod:`paperlab.merging.bert`); ``trace_source`` and ``fused``
    apply to ViTs only.

    Args:
        model: a timm ViT with a class token (built with ``pretrained=False`` works offline),
            or a BERT model.
        r: tokens merged per block: one int for every block, or one per block (Python or
            NumPy integers, 0-d tensors, a 1-d array).
        prop_attn: proportional attention (on for supervised models off the shelf).
        trace_source: record which patches each token holds (``merge_state(model).source``).
        fused: force fused (True) or explicit (False) attention; None keeps timm's choice.

    Raises:
        TypeError: not a timm ViT or a BERT model; ``r`` not integers (a float, a bool).
        ValueError: ``r`` negative, of the wrong length, or larger than half the patch tokens
            left at some block; a model already patched by another token reduction
            (DiffRate).
    """
    text = is_bert(model)
    rs = per_layer(r, bert_depth(model) if text else vit_depth(model), "r")
    if text:
        return bert.apply_rule(model, ToMeRule(tuple(rs), clip=True), prop_attn=prop_attn)
    return apply_rule(
        model, ToMeRule(tuple(rs)), prop_attn=prop_attn, trace_source=trace_source, fused=fused
    )
