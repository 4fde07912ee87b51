"""The Entropic Student model and its split deployment.

* :class:`TeacherSpec` -- torchvision ResNet-18 with its standard stem (7x7 stride-2 conv +
  max-pool), so that stage 1 (``layer1``) of a 32x32 image is 8x8x64: the paper's geometry at 1/7
  scale (see the spec). Trained with :func:`paperlab.vision.train.fit`.
* :class:`EntropicStudent` -- encoder (Conv5x5 s2, GDN, Conv5x5 s2, GDN, Conv2x2; no biases;
  32 -> 16 -> 8 -> 7, ``b`` channels), the entropy bottleneck,
  decoder (Conv2x2 pad 1, IGDN, Conv2x2, IGDN, Conv2x2 pad 1; 7 -> 8 -> 7 -> 8, ``T`` channels)
  in place of conv1..layer1, then copies of the teacher's ``layer2..4``, pooling and head.
* :func:`encode` (edge side): ``uint8`` images ``(N, 3, 32, 32)`` -> one bitstream (bytes);
  :func:`decode_and_classify` (server side): bitstream -> class ids ``(N,)``.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

from paperlab.entropic_student.codec import GDN, BitstreamError, EntropyBottleneck, pack, unpack
from paperlab.vision.data import normalize

IMAGE_SIZE = 32


@dataclass(frozen=True)
class TeacherSpec:
    """torchvision ResNet-18 with the standard stride-4 stem, ``num_classes`` outputs."""

    num_classes: int = 10

    def build(self) -> nn.Module:
        from torchvision.models import resnet18

        return resnet18(weights=None, num_classes=self.num_classes)

    def key(self) -> str:
        return type(self).__name__ + json.dumps(dataclasses.asdict(self), sort_keys=True)


def teacher_features(teacher: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """``[layer1, layer2, layer3, layer4, logits]`` of a torchvision ResNet on normalized ``x``."""
    h = teacher.maxpool(teacher.relu(teacher.bn1(teacher.conv1(x))))
    out = []
    for layer in (teacher.layer1, teacher.layer2, teacher.layer3, teacher.layer4):
        h = layer(h)
        out.append(h)
    out.append(teacher.fc(torch.flatten(teacher.avgpool(h), 1)))
    return out


def make_encoder(b: int) -> nn.Sequential:
    """3 -> 4b -> 2b -> b channels, 32x32 -> 7x7 (no biases)."""
    return nn.Sequential(
        nn.Conv2d(3, 4 * b, 5, stride=2, padding=2, bias=False), GDN(4 * b),
        nn.Conv2d(4 * b, 2 * b, 5, stride=2, padding=2, bias=False), GDN(2 * b),
        nn.Conv2d(2 * b, b, 2, stride=1, padding=0, bias=False),
    )


def make_decoder(b: int, t: int) -> nn.Sequential:
    """b -> 2T -> T -> T channels, 7x7 -> 8x8 (the teacher's stage-1 output shape)."""
    return nn.Sequential(
        nn.Conv2d(b, 2 * t, 2, padding=1, bias=False), GDN(2 * t, inverse=True),
        nn.Conv2d(2 * t, t, 2, padding=0, bias=False), GDN(t, inverse=True),
        nn.Conv2d(t, t, 2, padding=1, bias=False),
    )


class EntropicStudent(nn.Module):
    """Encoder + entropy bottleneck + decoder + the teacher's later stages (copied).

    Args:
        teacher: a torchvision ResNet (``layer2..4``, ``avgpool``, ``fc`` are deep-copied).
        b: latent channels (paper: 24).
    """

    def __init__(self, teacher: nn.Module, b: int = 24) -> None:
        super().__init__()
        t = teacher.layer2[0].conv1.in_channels
        self.b, self.t = b, t
        self.num_classes = teacher.fc.out_features
        self.encoder = make_encoder(b)
        self.bottleneck = EntropyBottleneck(b)
        self.decoder = make_decoder(b, t)
        self.layer2 = copy.deepcopy(teacher.layer2)
        self.layer3 = copy.deepcopy(teacher.layer3)
        self.layer4 = copy.deepcopy(teacher.layer4)
        self.avgpool = copy.deepcopy(teacher.avgpool)
        self.fc = copy.deepcopy(teacher.fc)

    def tail(self, stage1: torch.Tensor) -> list[torch.Tensor]:
        """``[layer2, layer3, layer4, logits]`` from a stage-1 feature map ``(N, T, 8, 8)``."""
        out = []
        h = stage1
        for layer in (self.layer2, self.layer3, self.layer4):
            h = layer(h)
            out.append(h)
        out.append(self.fc(torch.flatten(self.avgpool(h), 1)))
        return out

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Normalized images ``(N, 3, 32, 32)`` -> (``[stage1, layer2, layer3, layer4,
        logits]``, likelihoods ``(N, b, 7, 7)``); noisy latents in training, rounded in eval."""
        y_tilde, likelihoods = self.bottleneck(self.encoder(x))
        stage1 = self.decoder(y_tilde)
        return [stage1, *self.tail(stage1)], likelihoods

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        """``(b, 7, 7)``: one image's latent."""
        return (self.b, 7, 7)

    def analyze(self, images: torch.Tensor) -> torch.Tensor:
        """``uint8`` images ``(N, 3, 32, 32)`` -> unrounded latent ``(N, b, 7, 7)``."""
        return self.encoder(normalize(images))

    def classify_latent(self, y_hat: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, classes)`` from a (rounded) latent ``(N, b, 7, 7)``."""
        return self.tail(self.decoder(y_hat))[-1]


def check_images(images: torch.Tensor, size: int = IMAGE_SIZE) -> None:
    """Raise ``TypeError``/``ValueError`` unless ``images`` is a non-empty ``uint8``
    ``(N, 3, size, size)`` tensor."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a torch.Tensor, got {type(images).__name__}")
    if images.dtype != torch.uint8:
        raise TypeError(f"images must be uint8 (0..255), got {images.dtype}")
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be (N, 3, H, W), got shape {tuple(images.shape)}")
    if images.shape[0] == 0:
        raise ValueError("empty batch: no images to encode")
    if tuple(images.shape[2:]) != (size, size):
        raise ValueError(f"images must be {size}x{size}, got "
                         f"{images.shape[2]}x{images.shape[3]}")


class LatentCoder(Protocol):
    """What :func:`encode` / :func:`decode_latent` need of a model (the student, or the neural
    image codec of :mod:`paperlab.entropic_student.image_codec`)."""

    bottleneck: EntropyBottleneck

    @property
    def latent_shape(self) -> tuple[int, int, int]: ...

    def analyze(self, images: torch.Tensor) -> torch.Tensor: ...

    def eval(self) -> nn.Module: ...


@torch.inference_mode()
def quantized_latent(model: LatentCoder, images: torch.Tensor) -> torch.Tensor:
    """The median-rounded latent ``(N, *model.latent_shape)`` that :func:`encode` transmits."""
    check_images(images)
    model.eval()
    return model.bottleneck.quantize(model.analyze(images))


@torch.inference_mode()
def encode(model: LatentCoder, images: torch.Tensor) -> bytes:
    """Edge side: ``uint8`` images ``(N, 3, 32, 32)`` -> one bitstream (12-byte header +
    range-coded latent). ``len(result)`` is the number of bytes sent. The model's coding tables
    must be frozen (``model.bottleneck.update()``)."""
    check_images(images)
    model.eval()
    y = model.analyze(images)
    return pack(model.bottleneck.compress(y), tuple(y.shape))  # type: ignore[arg-type]


@torch.inference_mode()
def decode_latent(model: LatentCoder, data: bytes) -> torch.Tensor:
    """Server side: a bitstream -> the rounded latent ``(N, *model.latent_shape)``; raises
    :class:`~paperlab.entropic_student.codec.BitstreamError` on a bad bitstream (truncated,
    corrupted, or another model's)."""
    payload, shape = unpack(data)
    if shape[1:] != model.latent_shape:
        raise BitstreamError(f"bitstream latent {shape[1:]} does not fit the model "
                             f"{model.latent_shape}")
    return model.bottleneck.decompress(payload, shape)


@torch.inference_mode()
def decode_and_classify(model: EntropicStudent, data: bytes) -> torch.Tensor:
    """Server side: a bitstream -> predicted class ids ``int64 (N,)``."""
    model.eval()
    return model.classify_latent(decode_latent(model, data)).argmax(-1)


def save_student(model: EntropicStudent, path: str | os.PathLike[str]) -> None:
    """Write the student (its width and state) for :func:`load_student`."""
    torch.save({"b": model.b, "num_classes": model.num_classes, "state": model.state_dict()},
               path)


def load_student(path: str | os.PathLike[str]) -> EntropicStudent:
    """Read a student written by :func:`save_student` (``weights_only=True``)."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    model = EntropicStudent(TeacherSpec(int(payload["num_classes"])).build(), int(payload["b"]))
    model.load_state_dict(payload["state"])
    return model.eval()
