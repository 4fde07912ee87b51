"""Model builders from kept libraries, set up for 32x32 CIFAR images.

* :class:`ViTSpec` -> timm's ``VisionTransformer`` (patch 4: 64 patches + a class token,
  class-token pooling, no pretrained weights); ``distilled=True`` gives timm's DeiT class,
  ``VisionTransformerDistilled``, with a distillation token and head (2 prefix tokens).
* :class:`ResNetSpec` -> torchvision's ResNet-18 with the CIFAR stem (3x3 stride-1 first
  convolution, no max-pool).
* :class:`CifarResNetSpec` -> a narrow residual network in torchvision's ResNet layout
  (``conv1, bn1, relu, maxpool, layer1..4, avgpool, fc``) with the CIFAR stem and chosen
  widths: the substrate's CNN teacher (:data:`paperlab.vision.train.CIFAR_TEACHER`), sized to
  train on this CPU.

A spec is a frozen dataclass: ``spec.build()`` makes a fresh model and ``spec.key()`` names it
in the checkpoint cache (:mod:`paperlab.vision.train`).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Protocol

import torch
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
        distilled: DeiT's distillation token and head (timm ``VisionTransformerDistilled``):
            the model then has 2 prefix tokens, and its eval output is the mean of the class
            and distillation heads.
    """

    dim: int = 192
    depth: int = 6
    heads: int = 3
    mlp_ratio: float = 4.0
    img_size: int = 32
    patch_size: int = 4
    num_classes: int = 10
    drop_path: float = 0.1
    distilled: bool = False

    def __post_init__(self) -> None:
        if self.dim % self.heads:
            raise ValueError(f"dim {self.dim} is not divisible by heads {self.heads}")
        if self.img_size % self.patch_size:
            raise ValueError(f"img_size {self.img_size} is not a multiple of {self.patch_size}")

    @property
    def num_patches(self) -> int:
        return (self.img_size // self.patch_size) ** 2

    def build(self) -> nn.Module:
        """A freshly initialised timm ``VisionTransformer`` (class token, token pooling), or
        ``VisionTransformerDistilled`` when ``distilled``."""
        from timm.models.deit import VisionTransformerDistilled
        from timm.models.vision_transformer import VisionTransformer

        cls = VisionTransformerDistilled if self.distilled else VisionTransformer
        return cls(
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


class CifarResNet(nn.Module):
    """A ResNet of torchvision ``BasicBlock`` stages in torchvision's attribute layout.

    ``conv1`` (3x3, stride 1), ``bn1``, ``relu``, ``maxpool`` (identity), ``layer1..4`` (stride
    1, 2, 2, 2), ``avgpool``, ``fc``: a 32x32 image gives stage outputs of 32, 16, 8 and 4 pixels
    a side. Code written for torchvision's ResNet (feature taps at ``layer1..4``) works on it.
    """

    def __init__(self, widths: tuple[int, int, int, int], blocks: tuple[int, int, int, int],
                 num_classes: int) -> None:
        super().__init__()
        from torchvision.models.resnet import BasicBlock

        self.conv1 = nn.Conv2d(3, widths[0], kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity()
        stages = []
        inplanes = widths[0]
        for i, (width, count) in enumerate(zip(widths, blocks, strict=True)):
            stride = 1 if i == 0 else 2
            downsample = None
            if stride != 1 or inplanes != width:
                downsample = nn.Sequential(
                    nn.Conv2d(inplanes, width, kernel_size=1, stride=stride, bias=False),
                    nn.BatchNorm2d(width))
            layer = [BasicBlock(inplanes, width, stride, downsample)]
            layer += [BasicBlock(width, width) for _ in range(count - 1)]
            stages.append(nn.Sequential(*layer))
            inplanes = width
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[-1], num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        # zero-init the last norm of each residual branch: every block starts as the identity,
        # which lets a short schedule use a large learning rate
        for m in self.modules():
            if isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalized images ``(N, 3, H, W)`` -> logits ``(N, num_classes)``."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


@dataclass(frozen=True)
class CifarResNetSpec:
    """A :class:`CifarResNet`: ``widths`` channels and ``blocks`` BasicBlocks per stage."""

    widths: tuple[int, int, int, int] = (32, 64, 128, 256)
    blocks: tuple[int, int, int, int] = (1, 1, 1, 1)
    num_classes: int = 10

    def __post_init__(self) -> None:
        if len(self.widths) != 4 or len(self.blocks) != 4:
            raise ValueError(f"widths and blocks need 4 stages, got {self.widths}, {self.blocks}")
        if min(self.widths) < 1 or min(self.blocks) < 1:
            raise ValueError(f"widths and blocks must be >= 1, got {self.widths}, {self.blocks}")

    def build(self) -> nn.Module:
        """A freshly initialised :class:`CifarResNet`."""
        return CifarResNet(tuple(self.widths), tuple(self.blocks), self.num_classes)

    def key(self) -> str:
        return _key(self)
