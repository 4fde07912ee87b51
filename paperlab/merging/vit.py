"""Token-merging machinery for timm ViTs, with a plug-in point for the merging rule.

The pattern is ToMe's: :func:`apply_rule` swaps the classes of an existing timm
``VisionTransformer``, its ``Block``s and their ``Attention``s (weights untouched), so that each
block does

    attention (keys averaged over heads -> metric; + log(size) on the logits if prop_attn)
    -> rule.plan(metric, layer) -> size-weighted merge of the tokens (sizes tracked) -> MLP

What a rule decides is a :class:`MergePlan`: which tokens stay (and in which order), and which
tokens merge into which staying token. ToMe (:mod:`paperlab.vision.tome`) and PiToMe
(``paperlab.pitome``) are both rules; a system that needs another one (DiffRate) writes a
:class:`MergeRule` and calls :func:`apply_rule`, never importing another system. Bipartite
matching between two token sets, the core of both ToMe and PiToMe, is :func:`match`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class MergePlan:
    """One layer's merge as index tensors (batch ``B``, ``N`` tokens in, ``K`` tokens out).

    Attributes:
        keep: ``(B, K)`` indices of the input tokens that stay, in output order.
        src: ``(B, R)`` indices of the input tokens merged away (disjoint from ``keep``).
        dst: ``(B, R)`` output positions (``0 <= dst < K``) each ``src`` token merges into.

    Tokens in neither ``keep`` nor ``src`` are dropped (pruning); ToMe and PiToMe drop none.
    """

    keep: torch.Tensor
    src: torch.Tensor
    dst: torch.Tensor

    @property
    def num_out(self) -> int:
        return int(self.keep.shape[1])

    def merge(self, x: torch.Tensor, mode: str = "sum") -> torch.Tensor:
        """Reduce ``x`` ``(B, N, C)`` to ``(B, K, C)``: kept rows, ``src`` rows reduced into
        their ``dst`` rows with ``mode`` (``"sum"``, ``"mean"``, ``"amax"``; kept rows count)."""
        c = x.shape[-1]
        out = x.gather(1, self.keep[..., None].expand(-1, -1, c))
        if self.src.shape[1] == 0:
            return out
        moved = x.gather(1, self.src[..., None].expand(-1, -1, c))
        return out.scatter_reduce(1, self.dst[..., None].expand(-1, -1, c), moved, reduce=mode)


def merge_wavg(
    plan: MergePlan, x: torch.Tensor, size: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Size-weighted average merge: returns the merged ``x`` ``(B, K, C)`` and the new sizes
    ``(B, K, 1)`` (each the number of original patches a token stands for; None = all ones)."""
    if size is None:
        size = torch.ones_like(x[..., :1])
    x = plan.merge(x * size, "sum")
    size = plan.merge(size, "sum")
    return x / size, size


def merge_source(
    plan: MergePlan, x: torch.Tensor, source: torch.Tensor | None = None
) -> torch.Tensor:
    """Track which original tokens each token holds: ``(B, K, N0)`` 0/1 (None = identity)."""
    if source is None:
        b, n, _ = x.shape
        source = torch.eye(n, device=x.device, dtype=x.dtype)[None].expand(b, n, n)
    return plan.merge(source, "amax")


def match(
    metric: torch.Tensor,
    a_idx: torch.Tensor,
    b_idx: torch.Tensor,
    r: int,
    front: torch.Tensor | None = None,
) -> MergePlan:
    """Bipartite soft matching: the ``r`` tokens of set A whose most similar B token is most
    similar merge into it; the other A tokens and all B tokens stay.

    Args:
        metric: ``(B, N, C)`` token features, L2-normalised (similarity = dot product).
        a_idx, b_idx: ``(B, Na)`` and ``(B, Nb)`` token indices of the two sets (disjoint).
        r: how many A tokens merge, ``0 <= r <= Na``.
        front: ``(B, F)`` indices of tokens that stay untouched and come first (class token,
            protected tokens); None for none.

    Returns:
        a :class:`MergePlan` with output order ``[front, unmerged A (index order), B]``.
    """
    na = a_idx.shape[1]
    if not 0 <= r <= na:
        raise ValueError(f"cannot merge {r} tokens of a set of {na}")
    c = metric.shape[-1]
    ma = metric.gather(1, a_idx[..., None].expand(-1, -1, c))
    mb = metric.gather(1, b_idx[..., None].expand(-1, -1, c))
    best, partner = (ma @ mb.transpose(1, 2)).max(dim=-1)
    order = best.argsort(dim=-1, descending=True)
    merged, unmerged = order[:, :r], order[:, r:]
    unmerged_idx = a_idx.gather(1, unmerged).sort(dim=-1).values
    if front is None:
        front = a_idx[:, :0]
    keep = torch.cat([front, unmerged_idx, b_idx], dim=1)
    offset = front.shape[1] + na - r
    dst = partner.gather(1, merged) + offset
    return MergePlan(keep=keep, src=a_idx.gather(1, merged), dst=dst)


def normalized(metric: torch.Tensor) -> torch.Tensor:
    """L2-normalise features over the last axis (the cosine-similarity metric)."""
    return F.normalize(metric, p=2, dim=-1)


class MergeRule(Protocol):
    """What a token-reduction method plugs into :func:`apply_rule`.

    ``plan`` is called in every block with the block's metric (keys averaged over heads,
    ``(B, N, C/heads)``, prefix tokens first) and returns a :class:`MergePlan`, or None to leave
    the tokens as they are. ``schedule`` gives the ``(tokens in, tokens out)`` of every block for
    ``num_tokens`` input tokens (analytic FLOPs use it) and raises ``ValueError`` when the rule
    would leave too few tokens.
    """

    def plan(self, metric: torch.Tensor, layer: int, prefix: int) -> MergePlan | None: ...

    def schedule(self, num_tokens: int, depth: int, prefix: int) -> list[tuple[int, int]]: ...


@dataclass
class MergeState:
    """Shared by a patched model and its blocks; reset at every forward."""

    rule: MergeRule
    prop_attn: bool
    trace_source: bool
    prefix: int
    size: torch.Tensor | None = None
    source: torch.Tensor | None = None
    tokens: list[tuple[int, int]] = field(default_factory=list)

    def reset(self) -> None:
        self.size, self.source, self.tokens = None, None, []


class MergeAttention(nn.Module):
    """timm ``Attention`` that also returns the keys averaged over heads and adds ``log(size)``
    to the attention logits (proportional attention). Fused (SDPA, the bias as a float mask)
    or explicit according to timm's ``fused_attn`` flag."""

    def forward(  # type: ignore[override]
        self, x: torch.Tensor, size: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        b, n, _ = x.shape
        gate = self.gate(x).sigmoid() if getattr(self, "gate", None) is not None else None
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        q, k = self.q_norm(q), self.k_norm(k)
        bias = None if size is None else size.log()[:, None, None, :, 0]
        if self.fused_attn:
            dropout = self.attn_drop.p if self.training else 0.0
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=dropout)
        else:
            attn = (q * self.scale) @ k.transpose(-2, -1)
            if bias is not None:
                attn = attn + bias
            out = self.attn_drop(attn.softmax(dim=-1)) @ v
        out = out.transpose(1, 2).reshape(b, n, self.num_heads * self.head_dim)
        out = getattr(self, "norm", nn.Identity())(out)
        if gate is not None:
            out = out * gate
        return self.proj_drop(self.proj(out)), k.mean(dim=1)


class MergeBlock(nn.Module):
    """timm ``Block`` with the rule's merge between attention and MLP."""

    _merge_state: MergeState
    _merge_layer: int

    def forward(  # type: ignore[override]
        self, x: torch.Tensor, attn_mask: torch.Tensor | None = None, is_causal: bool = False
    ) -> torch.Tensor:
        if attn_mask is not None or is_causal:
            raise ValueError("token merging does not support attention masks or causal attention")
        state = self._merge_state
        x_attn, metric = self.attn(self.norm1(x), state.size if state.prop_attn else None)
        x = x + self.drop_path1(self.ls1(x_attn))
        n_in = x.shape[1]
        plan = state.rule.plan(metric, self._merge_layer, state.prefix)
        if plan is not None:
            if state.trace_source:
                state.source = merge_source(plan, x, state.source)
            x, state.size = merge_wavg(plan, x, state.size)
        state.tokens.append((n_in, x.shape[1]))
        return x + self.drop_path2(self.ls2(self.mlp(self.norm2(x))))


class _MergeViT:
    """Mixed into the model's own class: checks the input and resets the merge state."""

    _merge_state: MergeState

    def forward_features(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        check_images(self, x)
        self._merge_state.reset()
        return super().forward_features(x, *args, **kwargs)  # type: ignore[misc]


def check_images(model: nn.Module, x: torch.Tensor) -> None:
    """Raise ``ValueError`` unless ``x`` is a ``(B, C, H, W)`` batch the ViT's patch embedding
    takes (timm's own check is an ``assert``, and a wrong size would silently change the token
    count every merge schedule is computed for)."""
    embed = model.patch_embed
    want = (int(embed.proj.in_channels), *(int(s) for s in embed.img_size))
    if x.ndim != 4 or tuple(x.shape[1:]) != want:
        raise ValueError(
            f"expected images of shape (B, {want[0]}, {want[1]}, {want[2]}), got {tuple(x.shape)}"
        )


@functools.cache
def mixin_class(mixin: type, base: type) -> type:
    """``mixin`` layered over ``base`` (one class per pair, so patched modules share it): how a
    patch swaps a module's class in place (``module.__class__ = mixin_class(Mixin, type(m))``)."""
    return type(f"{mixin.__name__.lstrip('_')}[{base.__name__}]", (mixin, base), {})


def _timm_classes() -> tuple[type, type, type]:
    from timm.layers import Attention
    from timm.models.vision_transformer import Block, VisionTransformer

    return VisionTransformer, Block, Attention


def vit_depth(model: nn.Module) -> int:
    """Number of blocks of a timm ``VisionTransformer``; ``TypeError`` for any other model."""
    vit_cls, _, _ = _timm_classes()
    if not isinstance(model, vit_cls):
        raise TypeError(f"expected a timm VisionTransformer, got {type(model).__name__}")
    return len(model.blocks)


def apply_rule(
    model: nn.Module,
    rule: MergeRule,
    *,
    prop_attn: bool = True,
    trace_source: bool = False,
    fused: bool | None = None,
) -> nn.Module:
    """Patch a timm ``VisionTransformer`` in place to merge tokens by ``rule``; returns it.

    Patching an already patched model only replaces the rule and the options.

    Args:
        model: a timm ``VisionTransformer`` with a class token (weights are not touched).
        rule: the :class:`MergeRule`; its schedule is checked now against the model's tokens.
        prop_attn: add log(token size) to the attention logits.
        trace_source: keep ``model._merge_state.source`` (which patches each token holds).
        fused: use fused attention (SDPA) in the patched attention; None keeps timm's setting.

    Raises:
        TypeError: not a timm ``VisionTransformer`` with timm ``Block``s.
        ValueError: no class token, or the rule leaves too few tokens.
    """
    _, block_cls, attn_cls = _timm_classes()
    depth = vit_depth(model)
    if getattr(model, "cls_token", None) is None:
        raise ValueError("token merging needs a class token (the class token is never merged)")
    prefix = int(model.num_prefix_tokens)
    blocks = list(model.blocks)
    if not all(isinstance(b, (block_cls, MergeBlock)) for b in blocks):
        raise TypeError("every block must be a timm vision_transformer.Block")
    rule.schedule(model.patch_embed.num_patches + prefix, depth, prefix)
    state = MergeState(rule, prop_attn, trace_source, prefix)
    if not isinstance(model, _MergeViT):
        model.__class__ = mixin_class(_MergeViT, type(model))
    model._merge_state = state
    for layer, block in enumerate(blocks):
        if not isinstance(block, MergeBlock):
            block.__class__ = mixin_class(MergeBlock, type(block))
        if not isinstance(block.attn, MergeAttention):
            if not isinstance(block.attn, attn_cls):
                raise TypeError(f"block {layer} has {type(block.attn).__name__}, not Attention")
            block.attn.__class__ = mixin_class(MergeAttention, type(block.attn))
        if fused is not None:
            block.attn.fused_attn = fused
        block._merge_state = state
        block._merge_layer = layer
    return model


def merge_state(model: nn.Module) -> MergeState:
    """The :class:`MergeState` of a patched model (its last forward's sizes, sources, tokens)."""
    state = getattr(model, "_merge_state", None)
    if state is None:
        raise ValueError("the model is not patched for token merging (see apply_rule)")
    return state


def token_schedule(model: nn.Module) -> list[tuple[int, int]]:
    """``(tokens in, tokens out)`` per block of a patched or plain timm ViT (class token incl.)."""
    prefix = int(getattr(model, "num_prefix_tokens", 1))
    n = int(model.patch_embed.num_patches) + prefix
    state = getattr(model, "_merge_state", None)
    if state is None:
        return [(n, n)] * len(model.blocks)
    return state.rule.schedule(n, len(model.blocks), prefix)


def group_map(source: torch.Tensor, prefix: int, grid: int) -> torch.Tensor:
    """Which final token holds each patch: ``(B, grid, grid)`` group ids from a traced
    ``source`` ``(B, K, N0)`` (prefix tokens dropped from ``N0``)."""
    patches = source[:, :, prefix:]
    return patches.argmax(dim=1).reshape(-1, grid, grid)


def per_layer(value: int | Sequence[int], depth: int, name: str) -> list[int]:
    """``value`` for each of ``depth`` layers (an int repeats; a sequence must have ``depth``)."""
    values = [value] * depth if isinstance(value, int) else list(value)
    if len(values) != depth:
        raise ValueError(f"{name} has {len(values)} entries for {depth} layers")
    return values
