"""DiffRate's patch of a timm ``VisionTransformer`` (a class swap of the model and its blocks,
weights untouched), for applying a schedule and for the search.

Every block does attention (``+ log(size)`` on the logits; masked keys during the search) and
its residual, then :func:`~paperlab.diffrate.steps.reduce_block` (apply) or
:func:`~paperlab.diffrate.steps.search_step` (search), then the MLP. The prefix tokens (the
class token, and the distillation token of a DeiT ``VisionTransformerDistilled``) are never
pruned or merged; the ranking is the class token's attention to the other tokens.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from paperlab.diffrate.steps import State, reduce_block, search_step, search_tokens
from paperlab.merging.plan import check_unpatched, mixin_class
from paperlab.merging.vit import check_images, vit_depth


def attention(attn: nn.Module, x: torch.Tensor, size: torch.Tensor | None,
              key_mask: torch.Tensor | None = None, need_cls: bool = True, prefix: int = 1
              ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """A timm ``Attention`` forward with ``log(size)`` on the logits and masked keys.

    Args:
        attn: the block's timm ``Attention`` (its weights are used as they are).
        x: ``(B, N, C)`` normalised tokens.
        size: ``(B, N, 1)`` token sizes or None (all ones).
        key_mask: ``(B, N)`` key weights (0 = excluded; differentiable) or None.
        need_cls: compute the class token's attention (skipped where a block reduces nothing).
        prefix: leading tokens (class token first), left out of the class attention.

    Returns:
        the projected output ``(B, N, C)``, the class token's attention to the non-prefix
        tokens ``(B, N - prefix)``, averaged over heads (None unless ``need_cls``), and the
        keys averaged over heads ``(B, N, C / heads)`` (the energy rule's metric).
    """
    b, n, _ = x.shape
    qkv = attn.qkv(x).reshape(b, n, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)
    q, k = attn.q_norm(q), attn.k_norm(k)
    bias = None if size is None else size.log()[:, None, None, :, 0]
    if key_mask is None and attn.fused_attn:
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        cls = None
        if need_cls:
            logits = (q[:, :, :1] * attn.scale) @ k.transpose(-2, -1)
            cls = (logits if bias is None else logits + bias).softmax(-1)[:, :, 0]
    else:
        logits = (q * attn.scale) @ k.transpose(-2, -1)
        weights = (logits if bias is None else logits + bias).softmax(-1)
        if key_mask is not None:
            weights = weights * key_mask[:, None, None, :]
            weights = weights / weights.sum(-1, keepdim=True)
        out = weights @ v
        cls = weights[:, :, 0]
    out = out.transpose(1, 2).reshape(b, n, attn.num_heads * attn.head_dim)
    out = getattr(attn, "norm", nn.Identity())(out)
    return attn.proj(out), None if cls is None else cls.mean(1)[:, prefix:], k.mean(1)


class _DiffRateBlock(nn.Module):
    _diffrate: State
    _diffrate_layer: int

    def forward(  # type: ignore[override]
        self, x: torch.Tensor, attn_mask: torch.Tensor | None = None, is_causal: bool = False
    ) -> torch.Tensor:
        if attn_mask is not None or is_causal:
            raise ValueError("DiffRate does not support attention masks or causal attention")
        state, layer = self._diffrate, self._diffrate_layer
        if state.size is None:
            state.size = torch.ones_like(x[..., :1])
        n_in = x.shape[1]
        reduce = layer > 0 if state.rates is None else state.rates.merge[layer] < n_in
        x_attn, cls_attn, metric = attention(
            self.attn, self.norm1(x), state.size if state.prop_attn else None, state.mask,
            reduce, state.prefix)
        x = x + self.drop_path1(self.ls1(x_attn))
        if state.proxies is None:
            assert state.rates is not None
            if reduce:
                x, state.size = reduce_block(state, layer, x, state.size, metric, cls_attn,
                                             state.rates)
            state.tokens.append((n_in, x.shape[1]))
        elif layer > 0:
            prune, merge = state.proxies[layer - 1]
            x, state.size, state.mask = search_step(x, state.size, state.mask, cls_attn,
                                                    prune.mask(n_in), merge.mask(n_in),
                                                    state.prefix)
            state.tokens.append(search_tokens(state.tokens[-1][1], prune, merge))
        else:
            state.mask = torch.ones_like(x[..., 0])
            state.tokens.append((x.new_tensor(float(n_in)),) * 2)
        return x + self.drop_path2(self.ls2(self.mlp(self.norm2(x))))


class _DiffRateViT:
    patch_name = "DiffRate (diffrate.apply)"
    _diffrate: State

    def forward_features(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        check_images(self, x)
        self._diffrate.reset()
        return super().forward_features(x, *args, **kwargs)  # type: ignore[misc]


def prefix_tokens(model: nn.Module) -> int:
    """Leading tokens of a timm ViT never pruned or merged: the class token, a distillation
    token (DeiT), register tokens (``num_prefix_tokens``)."""
    return int(getattr(model, "num_prefix_tokens", 1))


def num_tokens(model: nn.Module) -> int:
    """Tokens entering block 0 (patches + prefix tokens)."""
    return int(model.patch_embed.num_patches) + prefix_tokens(model)


def patch(model: nn.Module, state: State) -> nn.Module:
    """Swap the classes of ``model`` and its blocks in place so they run with ``state``.

    Raises:
        TypeError: not a timm ViT with timm ``Block``s and ``Attention``.
        ValueError: no class token, no class-token pooling, or patched for token merging.
    """
    from timm.layers import Attention
    from timm.models.vision_transformer import Block

    vit_depth(model)
    check_unpatched(model, _DiffRateViT)
    if getattr(model, "cls_token", None) is None:
        raise ValueError("DiffRate needs a class token (it ranks the tokens by its attention)")
    if getattr(model, "global_pool", "token") != "token":
        raise ValueError("DiffRate needs class-token pooling (global_pool='token')")
    for layer, block in enumerate(model.blocks):
        if not isinstance(block, (Block, _DiffRateBlock)) or not isinstance(block.attn,
                                                                             Attention):
            raise TypeError(f"block {layer} is not a timm vision_transformer.Block with "
                            "Attention")
    if not isinstance(model, _DiffRateViT):
        model.__class__ = mixin_class(_DiffRateViT, type(model))
    model._diffrate = state
    for layer, block in enumerate(model.blocks):
        if not isinstance(block, _DiffRateBlock):
            block.__class__ = mixin_class(_DiffRateBlock, type(block))
        block._diffrate, block._diffrate_layer = state, layer
    return model
