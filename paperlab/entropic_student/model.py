"""The Entropic Student model and its split deployment.

* :class:`TeacherSpec` -- torchvision ResNet-18 with its standard stem (7x7 stride-2 conv +
  max-pool), so that stage 1 (``layer1``) of a 32x32 image is 8x8x64: the paper's geometry at 1/7
  scale (see the spec). Trained with :func:`paperlab.vision.train.fit`.
* :class:`EntropicStudent` -- encoder (Conv5x5 s2, GDN, Conv5x5 s2, GDN, Conv2x2; no biases;
  32 -> 16 -> 8 -> 7, ``b`` channels), the entropy bottleneck,
  decoder (Conv2x2 pad 1, IGDN, Conv2x2, IGDN, Conv2x2 pad 1; 7 -> 8 -> 7 -> 8, ``T`` channels)
  in place of conv1..layer1, then copies of the teacher's ``layer2..4``, pooling and head.
* :func:`encode` (edge side): ``uint8`` images ``(N, 3, 32, 32)`` -> one bitstream (bytes),
  ``chunk_size`` images at a time (memory bounded by a chunk, not by ``N``);
  :func:`decode_and_classify` (server side): bitstream -> class ids ``(N,)``.
* :func:`save_student` / :func:`load_student`; :func:`read_checkpoint` refuses a file that is
  not such a checkpoint (garbage bytes, another program's archive) with :class:`CheckpointError`.
* Checks at the public entry points: :func:`check_teacher`, :func:`check_images`,
  :func:`check_image_set`.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch
from torch import nn

from paperlab.core import checkpoint, checks
from paperlab.core.checkpoint import CheckpointError
from paperlab.entropic_student.codec import GDN, BitstreamError, EntropyBottleneck, pack, unpack
from paperlab.vision.data import ImageSet, normalize

IMAGE_SIZE = 32
MAX_WIDTH = 255  # latent channels: the container stores C in one byte
CHUNK = 256  # images analysed (or classified) at once: memory per chunk, not per batch
RESNET_PARTS = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4",
                "avgpool", "fc")


@dataclass(frozen=True)
class TeacherSpec:
    """torchvision ResNet-18 with the standard stride-4 stem, ``num_classes`` outputs."""

    num_classes: int = 10

    def __post_init__(self) -> None:
        object.__setattr__(self, "num_classes",
                           checks.integer(self.num_classes, "num_classes", low=1))

    def build(self) -> nn.Module:
        from torchvision.models import resnet18

        return resnet18(weights=None, num_classes=self.num_classes)

    def key(self) -> str:
        return type(self).__name__ + json.dumps(dataclasses.asdict(self), sort_keys=True)


def _stride(module: nn.Module) -> int:
    stride = getattr(module, "stride", 1)
    return int(stride[0] if isinstance(stride, tuple) else stride)


def check_teacher(teacher: object) -> None:
    """Raise ``TypeError`` unless ``teacher`` is a torchvision ResNet (the parts
    :func:`teacher_features` and :class:`EntropicStudent` use, ``fc`` a ``Linear``, ``layer2``
    of ResNet blocks), ``ValueError`` unless its stem takes RGB with total stride 4 (stage 1 of a
    32x32 image is 8x8, the student decoder's output)."""
    what = f"a torchvision ResNet ({', '.join(RESNET_PARTS)})"
    if not isinstance(teacher, nn.Module):
        raise TypeError(f"teacher must be {what}, got {checks.describe(teacher)}")
    missing = [p for p in RESNET_PARTS if not isinstance(getattr(teacher, p, None), nn.Module)]
    if missing:
        raise TypeError(f"teacher must be {what}; this {type(teacher).__name__} has no "
                        f"{', '.join(missing)}")
    if not isinstance(teacher.fc, nn.Linear):
        raise TypeError(f"teacher.fc must be a Linear head, got {type(teacher.fc).__name__}")
    layer2 = teacher.layer2
    if not (isinstance(layer2, nn.Sequential) and len(layer2)
            and isinstance(getattr(layer2[0], "conv1", None), nn.Conv2d)):
        raise TypeError("teacher.layer2 must be a Sequential of ResNet blocks (BasicBlock or "
                        f"Bottleneck, each with conv1), got {type(layer2).__name__}")
    conv1 = teacher.conv1
    stride = _stride(conv1) * _stride(teacher.maxpool)
    if not isinstance(conv1, nn.Conv2d) or conv1.in_channels != 3 or stride != 4:
        raise ValueError("teacher's stem must take 3 channels with total stride 4 (torchvision's "
                         "stride-2 conv1 + stride-2 max-pool: stage 1 of a 32x32 image is 8x8); "
                         f"got conv1 {conv1}, max-pool stride {_stride(teacher.maxpool)}")


def teacher_features(teacher: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """``[layer1, layer2, layer3, layer4, logits]`` of a torchvision ResNet on normalized ``x``
    ``(N, 3, H, W)`` float."""
    check_teacher(teacher)
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.ndim != 4:
        got = f"{x.dtype} {tuple(x.shape)}" if isinstance(x, torch.Tensor) else checks.describe(x)
        raise TypeError(f"x must be normalized float images (N, 3, H, W), got {got}")
    h = teacher.maxpool(teacher.relu(teacher.bn1(teacher.conv1(x))))
    out = []
    for layer in (teacher.layer1, teacher.layer2, teacher.layer3, teacher.layer4):
        h = layer(h)
        out.append(h)
    out.append(teacher.fc(torch.flatten(teacher.avgpool(h), 1)))
    return out


def _width(b: object) -> int:
    return checks.integer(b, "bottleneck width b", low=1, high=MAX_WIDTH)


def make_encoder(b: int) -> nn.Sequential:
    """3 -> 4b -> 2b -> b channels, 32x32 -> 7x7 (no biases)."""
    b = _width(b)
    return nn.Sequential(
        nn.Conv2d(3, 4 * b, 5, stride=2, padding=2, bias=False), GDN(4 * b),
        nn.Conv2d(4 * b, 2 * b, 5, stride=2, padding=2, bias=False), GDN(2 * b),
        nn.Conv2d(2 * b, b, 2, stride=1, padding=0, bias=False),
    )


def make_decoder(b: int, t: int) -> nn.Sequential:
    """b -> 2T -> T -> T channels, 7x7 -> 8x8 (the teacher's stage-1 output shape)."""
    b, t = _width(b), checks.integer(t, "stage-1 channels t", low=1)
    return nn.Sequential(
        nn.Conv2d(b, 2 * t, 2, padding=1, bias=False), GDN(2 * t, inverse=True),
        nn.Conv2d(2 * t, t, 2, padding=0, bias=False), GDN(t, inverse=True),
        nn.Conv2d(t, t, 2, padding=1, bias=False),
    )


class EntropicStudent(nn.Module):
    """Encoder + entropy bottleneck + decoder + the teacher's later stages (copied).

    Args:
        teacher: a torchvision ResNet (``layer2..4``, ``avgpool``, ``fc`` are deep-copied) with
            the standard stride-4 stem (:func:`check_teacher`).
        b: latent channels (paper: 24), an integer in ``1..255`` (a NumPy or 0-d tensor
            integer is accepted).
    """

    def __init__(self, teacher: nn.Module, b: int = 24) -> None:
        super().__init__()
        check_teacher(teacher)
        b = _width(b)
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


def check_images(images: torch.Tensor, size: int = IMAGE_SIZE, name: str = "images") -> None:
    """Raise ``TypeError``/``ValueError`` unless ``images`` is a non-empty ``uint8``
    ``(N, 3, size, size)`` tensor (``name`` names it in the message)."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(images).__name__}")
    if images.dtype != torch.uint8:
        raise TypeError(f"{name} must be uint8 (0..255), got {images.dtype}")
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"{name} must be (N, 3, H, W), got shape {tuple(images.shape)}")
    if images.shape[0] == 0:
        raise ValueError(f"empty batch: no {name}")
    if tuple(images.shape[2:]) != (size, size):
        raise ValueError(f"{name} must be {size}x{size}, got "
                         f"{images.shape[2]}x{images.shape[3]}")


def check_image_set(data: object, name: str = "data", num_classes: int | None = None) -> None:
    """Raise ``TypeError``/``ValueError`` unless ``data`` is a
    :class:`~paperlab.vision.data.ImageSet` of ``uint8 (N, 3, 32, 32)`` images with integer
    labels (in ``0..num_classes-1`` when given)."""
    if not isinstance(data, ImageSet):
        hint = (" (wrap images and labels as paperlab.vision.data.ImageSet(images, labels, "
                "classes, source))" if isinstance(data, torch.Tensor) else "")
        raise TypeError(f"{name} must be an ImageSet, got {checks.describe(data)}{hint}")
    check_images(data.images, name=f"{name}.images")
    labels = data.labels
    if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
        raise TypeError(f"{name}.labels must be integer class ids, got {labels.dtype}")
    if num_classes is not None and len(labels) and not (
            0 <= int(labels.min()) and int(labels.max()) < num_classes):
        raise ValueError(f"{name}.labels must be in 0..{num_classes - 1} (the model's classes), "
                         f"got {int(labels.min())}..{int(labels.max())}")


class LatentCoder(Protocol):
    """What :func:`encode` / :func:`decode_latent` need of a model (the student, or the neural
    image codec of :mod:`paperlab.entropic_student.image_codec`)."""

    bottleneck: EntropyBottleneck

    @property
    def latent_shape(self) -> tuple[int, int, int]: ...

    def analyze(self, images: torch.Tensor) -> torch.Tensor: ...

    def eval(self) -> nn.Module: ...


def check_coder(model: object) -> None:
    """Raise ``TypeError`` unless ``model`` is a :class:`LatentCoder` (the student or the image
    codec)."""
    if not (isinstance(model, nn.Module) and callable(getattr(model, "analyze", None))
            and isinstance(getattr(model, "bottleneck", None), EntropyBottleneck)):
        raise TypeError("model must be an EntropicStudent or an ImageCodec (a module with "
                        f"analyze(), bottleneck and latent_shape), got {checks.describe(model)}")


def _chunk(chunk_size: object) -> int:
    return checks.integer(chunk_size, "chunk_size", low=1)


def _latents(model: LatentCoder, images: torch.Tensor, chunk_size: int
             ) -> Iterator[torch.Tensor]:
    """The unrounded latents of ``images``, ``chunk_size`` images at a time."""
    for i in range(0, images.shape[0], chunk_size):
        yield model.analyze(images[i : i + chunk_size])


@torch.inference_mode()
def quantized_latent(model: LatentCoder, images: torch.Tensor,
                     chunk_size: int = CHUNK) -> torch.Tensor:
    """The median-rounded latent ``(N, *model.latent_shape)`` that :func:`encode` transmits
    (analysed ``chunk_size`` images at a time)."""
    check_coder(model)
    check_images(images)
    chunk_size = _chunk(chunk_size)
    model.eval()
    return torch.cat([model.bottleneck.quantize(y)
                      for y in _latents(model, images, chunk_size)])


@torch.inference_mode()
def encode(model: LatentCoder, images: torch.Tensor, chunk_size: int = CHUNK) -> bytes:
    """Edge side: ``uint8`` images ``(N, 3, 32, 32)`` -> one bitstream (the container of
    :func:`~paperlab.entropic_student.codec.pack`, each image range-coded on its own).
    ``len(result)`` is the number of bytes sent. The images are analysed and coded
    ``chunk_size`` at a time, so memory is one chunk's activations plus the output (the bytes
    do not depend on ``chunk_size``). The model's coding tables must be frozen
    (``model.bottleneck.update()``); a latent that is NaN or inf (a model with NaN weights)
    raises ``ValueError`` naming the images."""
    check_coder(model)
    check_images(images)
    chunk_size = _chunk(chunk_size)
    model.eval()
    return pack(*model.bottleneck.compress_chunks(_latents(model, images, chunk_size)))


@torch.inference_mode()
def decode_latent(model: LatentCoder, data: bytes) -> torch.Tensor:
    """Server side: a bitstream -> the rounded latent ``(N, *model.latent_shape)``; raises
    :class:`~paperlab.entropic_student.codec.BitstreamError` on a bad bitstream (truncated,
    corrupted, another model's, or a payload not written for its header)."""
    check_coder(model)
    payload, shape = unpack(data)
    if shape[1:] != model.latent_shape:
        raise BitstreamError(f"bitstream latent {shape[1:]} does not fit the model "
                             f"{model.latent_shape}")
    return model.bottleneck.decompress(payload, shape)


@torch.inference_mode()
def decode_and_classify(model: EntropicStudent, data: bytes,
                        chunk_size: int = CHUNK) -> torch.Tensor:
    """Server side: a bitstream -> predicted class ids ``int64 (N,)``, classified
    ``chunk_size`` images at a time. Logits that are NaN or inf (a student with NaN weights)
    raise ``ValueError`` rather than an arbitrary label."""
    if not isinstance(model, EntropicStudent):
        raise TypeError(f"model must be an EntropicStudent, got {checks.describe(model)}")
    chunk_size = _chunk(chunk_size)
    model.eval()
    y_hat = decode_latent(model, data)
    labels = []
    for i in range(0, y_hat.shape[0], chunk_size):
        logits = model.classify_latent(y_hat[i : i + chunk_size])
        if not bool(torch.isfinite(logits).all()):
            raise ValueError("the student's logits are not finite (NaN or inf) for images "
                             f"{i}..{i + logits.shape[0] - 1}: its weights are not finite")
        labels.append(logits.argmax(-1))
    return torch.cat(labels)


def read_checkpoint(path: str | os.PathLike[str], writer: str,
                    sizes: Mapping[str, tuple[int, int]]
                    ) -> tuple[dict[str, int], dict[str, torch.Tensor]]:
    """The integer ``sizes`` (each within its ``(low, high)``) and the ``state`` dict of a
    checkpoint that ``writer`` wrote (``torch.save``, read with ``weights_only=True``).

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError: the file is not a ``torch.save`` archive (garbage bytes, another
            program's zip) or lacks the fields; the message names the file.
    """
    path = Path(path)
    payload = checkpoint.load(path, (*sizes, "state"), f"a checkpoint written by {writer}")
    values = {}
    for key, (low, high) in sizes.items():
        value = payload[key]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise CheckpointError(f"{path}: {key} must be an integer in {low}..{high}, got "
                                  f"{checks.describe(value)}")
        values[key] = value
    state = payload["state"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor)
                                              for v in state.values()):
        raise CheckpointError(f"{path}: state must be a dict of tensors")
    return values, state


def load_state(model: nn.Module, state: Mapping[str, torch.Tensor],
               path: str | os.PathLike[str]) -> None:
    """``model.load_state_dict(state)`` after checking that ``state`` (read from ``path``) has
    exactly the model's keys and shapes (a buffer the model has not filled yet, such as the
    coding tables before ``update()``, takes the stored shape); :class:`CheckpointError`
    naming the file and the first mismatches otherwise."""
    own = model.state_dict()
    missing, extra = sorted(own.keys() - state.keys()), sorted(state.keys() - own.keys())
    wrong = [f"{k} {tuple(state[k].shape)} (expected {tuple(own[k].shape)})" for k in own
             if k in state and own[k].numel() and state[k].shape != own[k].shape]
    if missing or extra or wrong:
        parts = [f"{label}: {', '.join(keys[:3])}{', ...' if len(keys) > 3 else ''}"
                 for label, keys in (("missing", missing), ("unexpected", extra),
                                     ("shape", wrong)) if keys]
        raise CheckpointError(f"{path} does not fit a {type(model).__name__} of these sizes "
                              f"({'; '.join(parts)})")
    model.load_state_dict(state)


def save_student(model: EntropicStudent, path: str | os.PathLike[str]) -> None:
    """Write the student (its width and state) for :func:`load_student`."""
    if not isinstance(model, EntropicStudent):
        raise TypeError(f"model must be an EntropicStudent, got {checks.describe(model)}")
    torch.save({"b": model.b, "num_classes": model.num_classes, "state": model.state_dict()},
               path)


def load_student(path: str | os.PathLike[str]) -> EntropicStudent:
    """Read a student written by :func:`save_student` (``weights_only=True``); a file that is
    not one raises :class:`CheckpointError` naming it."""
    sizes, state = read_checkpoint(path, "save_student",
                                   {"b": (1, MAX_WIDTH), "num_classes": (1, 1 << 20)})
    model = EntropicStudent(TeacherSpec(sizes["num_classes"]).build(), sizes["b"])
    load_state(model, state, path)
    return model.eval()
