"""Analytic FLOPs of a ViT whose blocks may reduce their tokens (counted as multiply-adds).

A block that takes ``N`` tokens and leaves ``N'`` after its merge step (merging sits between
attention and the MLP) costs, at width ``C`` and MLP ratio 4:

    attention  4 N C^2 + 2 N^2 C      (qkv and output projections; QK^T and AV)
    MLP        8 N' C^2               (2 * mlp_ratio * N' C^2 in general)

plus the patch embedding (``num_patches * patch_size^2 * in_chans * C``) and the classifier
(``C * num_classes``; DeiT's distilled ViT has a second linear head on its distillation token,
``head_dist``, counted the same way). Norms, softmax, GELU and the merge itself are not counted,
as in the papers. This gives DeiT-S 4.60 G and ViT-H/14 167.3 G, the published figures.
``torch.utils.flop_counter`` misses fused attention on CPU, so this counter is checked against
it on an explicit-attention model in the tests.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn


def block_flops(n_in: int, n_out: int, dim: int, mlp_ratio: float = 4.0) -> float:
    """Multiply-adds of one block: attention over ``n_in`` tokens, MLP over ``n_out``."""
    if n_out > n_in or n_out < 1:
        raise ValueError(f"a block cannot go from {n_in} to {n_out} tokens")
    return 4 * n_in * dim**2 + 2 * n_in**2 * dim + 2 * mlp_ratio * n_out * dim**2


def vit_flops(
    dim: int,
    tokens: Sequence[tuple[int, int]],
    *,
    num_patches: int,
    patch_size: int,
    in_chans: int = 3,
    num_classes: int = 1000,
    mlp_ratio: float = 4.0,
) -> float:
    """Multiply-adds of one image through a ViT.

    Args:
        dim: token width C.
        tokens: ``(tokens in, tokens out)`` of each block, class token included; an unreduced
            block is ``(N, N)``.
        num_patches: patches per image (the patch embedding's outputs).
        patch_size: side of a patch, in pixels (the embedding is a ``patch_size`` convolution).
        in_chans: input channels of the image.
        num_classes: outputs of the linear heads on C-wide tokens (0: no head; a distilled ViT's
            two heads count ``2 * classes``).
        mlp_ratio: MLP hidden width / C.
    """
    embed = num_patches * patch_size**2 * in_chans * dim
    blocks = sum(block_flops(n_in, n_out, dim, mlp_ratio) for n_in, n_out in tokens)
    return embed + blocks + dim * num_classes


def full_tokens(model: nn.Module) -> list[tuple[int, int]]:
    """``(N, N)`` for every block of an unreduced timm ViT (patches + prefix tokens)."""
    n = model.patch_embed.num_patches + getattr(model, "num_prefix_tokens", 1)
    return [(n, n)] * len(model.blocks)


def head_outputs(model: nn.Module) -> int:
    """Outputs of a timm ViT's linear heads: ``head`` and, on DeiT's
    ``VisionTransformerDistilled``, ``head_dist`` (on the distillation token); 0 without."""
    heads = (getattr(model, name, None) for name in ("head", "head_dist"))
    return sum(int(head.out_features) for head in heads if isinstance(head, nn.Linear))


def model_flops(model: nn.Module, tokens: Sequence[tuple[int, int]] | None = None) -> float:
    """:func:`vit_flops` of a timm ``VisionTransformer`` or ``VisionTransformerDistilled``
    (``tokens``: default unreduced)."""
    proj = model.patch_embed.proj
    dim = int(model.embed_dim)
    return vit_flops(
        dim,
        full_tokens(model) if tokens is None else tokens,
        num_patches=int(model.patch_embed.num_patches),
        patch_size=int(proj.kernel_size[0]),
        in_chans=int(proj.in_channels),
        num_classes=head_outputs(model),
        mlp_ratio=model.blocks[0].mlp.fc1.out_features / dim,
    )
