"""Token merging on a timm ``VisionTransformer``, any merge rule.

The pattern is ToMe's: :func:`apply_rule` swaps the classes of an existing timm
``VisionTransformer``, its ``Block``s and their ``Attention``s (weights untouched), so that each
block does

    attention (keys averaged over heads -> metric; + log(size) on the logits if prop_attn)
    -> rule.plan(metric, layer) -> size-weighted merge of the tokens (sizes tracked) -> MLP

The rules and plans are model-independent (:mod:`paperlab.merging.plan`); a system that needs
another rule writes a :class:`~paperlab.merging.plan.MergeRule` and calls :func:`apply_rule`,
never importing another system.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from paperlab.core.checks import describe
from paperlab.merging.plan import (
    MergeRule,
    MergeState,
    check_unpatched,
    merge_source,
    merge_wavg,
    mixin_class,
)


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

    patch_name = "token merging (paperlab.merging: tome.patch, pitome.patch)"
    _merge_state: MergeState

    def forward_features(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        check_images(self, x)
        self._merge_state.reset()
        return super().forward_features(x, *args, **kwargs)  # type: ignore[misc]


def check_images(model: nn.Module, x: torch.Tensor) -> None:
    """Check that ``x`` is a ``(B, C, H, W)`` batch the ViT's patch embedding takes: a tensor of
    the right shape (timm's own check is an ``assert``, and a wrong size would silently change
    the token count every merge schedule is computed for), of the model's floating dtype and
    on its device (else torch fails deep inside the convolution).

    Raises:
        TypeError: not a tensor, or another dtype than the model's (e.g. ``uint8`` pixels).
        ValueError: another shape, or another device than the model's.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"expected images as a torch.Tensor (B, C, H, W), got {describe(x)}")
    embed = model.patch_embed
    want = (int(embed.proj.in_channels), *(int(s) for s in embed.img_size))
    if x.ndim != 4 or tuple(x.shape[1:]) != want:
        raise ValueError(
            f"expected images of shape (B, {want[0]}, {want[1]}, {want[2]}), got {tuple(x.shape)}"
        )
    weight = embed.proj.weight
    if x.dtype != weight.dtype:
        hint = "" if x.is_floating_point() else (
            " (scale and normalise integer pixels first, e.g. "
            "paperlab.vision.data.normalize for uint8 CIFAR images)")
        raise TypeError(f"expected images of dtype {weight.dtype} (the model's), got "
                        f"{x.dtype}{hint}")
    if x.device != weight.device:
        raise ValueError(f"expected images on {weight.device} (the model's device), got "
                         f"{x.device}")


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

    Patching an already patched model only replaces the rule and the options; a model patched
    by another token reduction (``diffrate.apply``) is refused, since the two do not stack.

    Args:
        model: a timm ``VisionTransformer`` with a class token (weights are not touched).
        rule: the :class:`MergeRule`; its schedule is checked now against the model's tokens.
        prop_attn: add log(token size) to the attention logits.
        trace_source: keep ``model._merge_state.source`` (which patches each token holds).
        fused: use fused attention (SDPA) in the patched attention; None keeps timm's setting.

    Raises:
        TypeError: not a timm ``VisionTransformer`` with timm ``Block``s.
        ValueError: no class token, the rule leaves too few tokens, or the model is patched
            by another token reduction.
    """
    _, block_cls, attn_cls = _timm_classes()
    depth = vit_depth(model)
    check_unpatched(model, _MergeViT)
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
