"""Model builders from kept libraries, set up for 32x32 CIFAR images.

* :class:`ViTSpec` -> timm's ``VisionTransformer`` (patch 4: 64 patches + a class token,
  class-token pooling, no pretrained weights).
* :class:`ResNetSpec` -> torchvision's ResNet-18 with the CIFAR stem (3x3 stride-1 first
  convolution, no max-pool).

A spec is a frozen dataclass: ``spec.build()`` makes a fresh model and ``spec.key()`` names it
in the checkpoint cache (:mod:`paperlab.vision.train`).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Protocol

from torch import nn


class ModelSpec(Protocol):
    """What the trainer needs of a model description."""

    def build(self) -> nn.Module: ...

    def key(self) -> str: ...


def _key(spec: object) -> str:
    fields = dataclasses.asdict(spec)  # type: ignore[call-overload]
    return type(spec).__name__ + json.dumps(fields, sort_keys=True)


@dataclass(frozen=True)
class ViTSpec:
    """A timm ``VisionTransformer`` for small images.

    Attributes:
        dim: token width C. depth: number of blocks L. heads: attention heads (dim % heads == 0).
        mlp_ratio: MLP hidden width / C. img_size, patch_size: input side and patch side in
        pixels (32 / 4 -> 64 patch tokens + 1 class token). num_classes: classifier outputs.
        drop_path: stochastic-depth rate used while training (0 at eval).
    """

    dim: int = 192
    depth: int = 6
    heads: int = 3
    mlp_ratio: float = 4.0
    img_size: int = 32
    patch_size: int = 4
    num_classes: int = 10
    drop_path: float = 0.1

    def __post_init__(self) -> None:
        if self.dim % self.heads:
            raise ValueError(f"dim {self.dim} is not divisible by heads {self.heads}")
        if self.img_size % self.patch_size:
            raise ValueError(f"img_size {self.img_size} is not a multiple of {self.patch_size}")

    @property
    def num_patches(self) -> int:
        return (self.img_size // self.patch_size) ** 2

    def build(self) -> nn.Module:
        """A freshly initialised timm ``VisionTransformer`` (class token, token pooling)."""
        from timm.models.vision_transformer import VisionTransformer

        return VisionTransformer(
            img_size=self.img_size,
            patch_size=self.patch_size,
            num_classes=self.num_classes,
            embed_dim=self.dim,
            depth=self.depth,
            num_heads=self.heads,
            mlp_ratio=self.mlp_ratio,
            class_token=True,
            global_pool="token",
            drop_path_rate=self.drop_path,
        )

    def key(self) -> str:
        return _key(self)


@dataclass(frozen=True)
class ResNetSpec:
    """torchvision ResNet-18 with the CIFAR stem (conv 3x3 stride 1, no max-pool)."""

    num_classes: int = 10

    def build(self) -> nn.Module:
        from torchvision.models import resnet18

        model = resnet18(weights=None, num_classes=self.num_classes)
        model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
        return model

    def key(self) -> str:
        return _key(self)
