"""The Entropic Student model and its split deployment.

* The teacher: a ResNet in torchvision's attribute layout with the CIFAR stem (3x3 stride-1
  ``conv1``, no max-pool), so stage 1 (``layer1``) of a 32x32 image keeps all 32x32 positions:
  :data:`paperlab.vision.train.CIFAR_TEACHER` (stage outputs 32x32x32, 16x16x64, 8x8x128,
  4x4x256), or the CIFAR-stem ResNet-18 of :class:`paperlab.vision.models.ResNetSpec`.
* :class:`EntropicStudent` -- encoder (Conv5x5 s2, GDN, Conv s2 or s1, GDN, Conv3x3; no biases;
  ``b`` channels at ``32 / stride`` a side), the entropy bottleneck, decoder (Conv3x3, IGDN, one
  transposed Conv4x4 s2 + IGDN per factor 2 of ``stride``, Conv3x3, with biases; ``T`` channels
  at 32x32) in place of ``conv1..layer1``, then copies of the teacher's ``layer2..4``, pooling
  and head.
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
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Protocol

import torch
from torch import nn

from paperlab.core import checkpoint, checks
from paperlab.core.checkpoint import CheckpointError
from paperlab.entropic_student.codec import GDN, BitstreamError, EntropyBottleneck, pack, unpack
from paperlab.vision.data import ImageSet, normalize
from paperlab.vision.models import CifarResNetSpec

IMAGE_SIZE = 32
MAX_WIDTH = 255  # latent channels: the container stores C in one byte
STRIDES = (2, 4)  # the encoder's total stride: a 16x16 or an 8x8 latent of a 32x32 image
CHUNK = 256  # images analysed (or classified) at once: memory per chunk, not per batch
RESNET_PARTS = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4",
                "avgpool", "fc")
STAGES = ("layer1", "layer2", "layer3", "layer4")


def _stride(module: nn.Module) -> int:
    stride = getattr(module, "stride", 1)
    return int(stride[0] if isinstance(stride, tuple) else stride)


def check_teacher(teacher: object) -> None:
    """Raise ``TypeError`` unless ``teacher`` is a ResNet in torchvision's layout (the parts
    :func:`teacher_features` and :class:`EntropicStudent` use, ``fc`` a ``Linear``,
    ``layer1..4`` non-empty ``Sequential`` s of torchvision ``BasicBlock`` s), ``ValueError``
    unless its stem takes RGB at stride 1 (the CIFAR stem: stage 1 of a 32x32 image is 32x32,
    the student decoder's output)."""
    from torchvision.models.resnet import BasicBlock

    what = f"a ResNet in torchvision's layout ({', '.join(RESNET_PARTS)})"
    if not isinstance(teacher, nn.Module):
        raise TypeError(f"teacher must be {what}, got {checks.describe(teacher)}")
    missing = [p for p in RESNET_PARTS if not isinstance(getattr(teacher, p, None), nn.Module)]
    if missing:
        raise TypeError(f"teacher must be {what}; this {type(teacher).__name__} has no "
                        f"{', '.join(missing)}")
    if not isinstance(teacher.fc, nn.Linear):
        raise TypeError(f"teacher.fc must be a Linear head, got {type(teacher.fc).__name__}")
    for name in STAGES:
        layer = getattr(teacher, name)
        if not (isinstance(layer, nn.Sequential) and len(layer)
                and all(isinstance(block, BasicBlock) for block in layer)):
            raise TypeError(f"teacher.{name} must be a Sequential of torchvision BasicBlocks "
                            f"(as in ResNet-18 and the CIFAR teacher), got "
                            f"{type(layer).__name__}"
                            + (f" of {', '.join(sorted({type(m).__name__ for m in layer}))}"
                               if isinstance(layer, nn.Sequential) and len(layer) else ""))
    conv1 = teacher.conv1
    stride = _stride(conv1) * _stride(teacher.maxpool)
    if not isinstance(conv1, nn.Conv2d) or conv1.in_channels != 3 or stride != 1:
        raise ValueError("teacher's stem must take 3 channels at stride 1 (the CIFAR stem: 3x3 "
                         "stride-1 conv1, no max-pool, so stage 1 of a 32x32 image is 32x32); "
                         f"got conv1 {conv1}, total stem stride {stride} (conv1 "
                         f"{_stride(conv1)} x max-pool {_stride(teacher.maxpool)})")


def teacher_features(teacher: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """``[layer1, layer2, layer3, layer4, logits]`` of a teacher (:func:`check_teacher`) on
    normalized ``x`` ``(N, 3, H, W)`` float."""
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


def _stride_of(stride: object) -> int:
    stride = checks.integer(stride, "encoder stride", low=1)
    if stride not in STRIDES:
        raise ValueError(f"encoder stride must be one of {STRIDES} (a "
                         f"{IMAGE_SIZE // 2}x{IMAGE_SIZE // 2} or {IMAGE_SIZE // 4}x"
                         f"{IMAGE_SIZE // 4} latent of a {IMAGE_SIZE}x{IMAGE_SIZE} image), "
                         f"got {stride}")
    return stride


def make_encoder(b: int, stride: int = 4) -> nn.Sequential:
    """3 -> 4b -> 2b -> b channels, ``32x32 -> (32/stride)x(32/stride)``, no biases:
    Conv5x5 s2, GDN, then Conv5x5 s2 (``stride`` 4) or Conv3x3 s1 (``stride`` 2), GDN,
    Conv3x3."""
    b, stride = _width(b), _stride_of(stride)
    second = (nn.Conv2d(4 * b, 2 * b, 5, stride=2, padding=2, bias=False) if stride == 4
              else nn.Conv2d(4 * b, 2 * b, 3, stride=1, padding=1, bias=False))
    return nn.Sequential(
        nn.Conv2d(3, 4 * b, 5, stride=2, padding=2, bias=False), GDN(4 * b),
        second, GDN(2 * b),
        nn.Conv2d(2 * b, b, 3, stride=1, padding=1, bias=False),
    )


def make_decoder(b: int, t: int, stride: int = 4) -> nn.Sequential:
    """b -> 2T -> T channels, ``(32/stride)`` -> 32 a side (the teacher's stage-1 shape):
    Conv3x3 b->2T, IGDN, then per factor 2 of ``stride`` a transposed Conv4x4 s2 and IGDN, then
    Conv3x3 T->T. Unlike the authors' decoder its convolutions have biases: without them the
    decoder is an odd function of the latent and cannot put out the post-ReLU features' mean
    in a short training (measured: see the README)."""
    b, stride = _width(b), _stride_of(stride)
    t = checks.integer(t, "stage-1 channels t", low=1)
    layers: list[nn.Module] = [nn.Conv2d(b, 2 * t, 3, padding=1), GDN(2 * t, inverse=True)]
    channels = 2 * t
    for _ in range(stride.bit_length() - 1):
        layers += [nn.ConvTranspose2d(channels, t, 4, stride=2, padding=1), GDN(t, inverse=True)]
        channels = t
    layers.append(nn.Conv2d(t, t, 3, padding=1))
    return nn.Sequential(*layers)


def _tail_shape(teacher: nn.Module) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The teacher's stage widths ``(layer1..4)`` and block counts ``(layer2..4)``."""
    widths = (teacher.layer2[0].conv1.in_channels,
              *(getattr(teacher, n)[-1].conv2.out_channels for n in STAGES[1:]))
    return widths, tuple(len(getattr(teacher, n)) for n in STAGES[1:])


class EntropicStudent(nn.Module):
    """Encoder + entropy bottleneck + decoder + the teacher's later stages (copied).

    Args:
        teacher: a ResNet with the CIFAR stem (:func:`check_teacher`); its ``layer2..4``,
            ``avgpool`` and ``fc`` are deep-copied.
        b: latent channels (paper: 24), an integer in ``1..255`` (a NumPy or 0-d tensor
            integer is accepted).
        stride: the encoder's total stride, 4 (an ``8x8`` latent, the default) or 2
            (``16x16``).
    """

    def __init__(self, teacher: nn.Module, b: int = 24, stride: int = 4) -> None:
        super().__init__()
        check_teacher(teacher)
        b, stride = _width(b), _stride_of(stride)
        self.widths, self.blocks = _tail_shape(teacher)
        t = self.widths[0]
        self.b, self.t, self.stride = b, t, stride
        self.num_classes = teacher.fc.out_features
        self.encoder = make_encoder(b, stride)
        self.bottleneck = EntropyBottleneck(b)
        self.decoder = make_decoder(b, t, stride)
        self.layer2 = copy.deepcopy(teacher.layer2)
        self.layer3 = copy.deepcopy(teacher.layer3)
        self.layer4 = copy.deepcopy(teacher.layer4)
        self.avgpool = copy.deepcopy(teacher.avgpool)
        self.fc = copy.deepcopy(teacher.fc)

    def tail(self, stage1: torch.Tensor) -> list[torch.Tensor]:
        """``[layer2, layer3, layer4, logits]`` from a stage-1 feature map ``(N, T, 32, 32)``."""
        out = []
        h = stage1
        for layer in (self.layer2, self.layer3, self.layer4):
            h = layer(h)
            out.append(h)
        out.append(self.fc(torch.flatten(self.avgpool(h), 1)))
        return out

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Normalized images ``(N, 3, 32, 32)`` -> (``[stage1, layer2, layer3, layer4,
        logits]``, likelihoods ``(N, *latent_shape)``); noisy latents in training, rounded in
        eval."""
        y_tilde, likelihoods = self.bottleneck(self.encoder(x))
        stage1 = self.decoder(y_tilde)
        return [stage1, *self.tail(stage1)], likelihoods

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        """``(b, 32 / stride, 32 / stride)``: one image's latent."""
        side = IMAGE_SIZE // self.stride
        return (self.b, side, side)

    def analyze(self, images: torch.Tensor) -> torch.Tensor:
        """``uint8`` images ``(N, 3, 32, 32)`` -> unrounded latent ``(N, *latent_shape)``."""
        return self.encoder(normalize(images))

    def classify_latent(self, y_hat: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, classes)`` from a (rounded) latent ``(N, *latent_shape)``."""
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
                    sizes: Mapping[str, tuple[int, ...]]
                    ) -> tuple[dict[str, int | tuple[int, ...]], dict[str, torch.Tensor]]:
    """The integer ``sizes`` and the ``state`` dict of a checkpoint that ``writer`` wrote
    (``torch.save``, read with ``weights_only=True``). ``sizes`` maps each field to ``(low,
    high)`` (one integer in ``low..high``) or ``(low, high, length)`` (a list of ``length``
    such integers, returned as a tuple).

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError: the file is not a ``torch.save`` archive (garbage bytes, another
            program's zip) or lacks the fields; the message names the file.
    """
    path = Path(path)
    payload = checkpoint.load(path, (*sizes, "state"), f"a checkpoint written by {writer}")

    def integer(value: object, low: int, high: int) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high

    values: dict[str, int | tuple[int, ...]] = {}
    for key, (low, high, *length) in sizes.items():
        value = payload[key]
        if not length and not integer(value, low, high):
            raise CheckpointError(f"{path}: {key} must be an integer in {low}..{high}, got "
                                  f"{checks.describe(value)}")
        if length and not (isinstance(value, (list, tuple)) and len(value) == length[0]
                           and all(integer(v, low, high) for v in value)):
            raise CheckpointError(f"{path}: {key} must be {length[0]} integers in "
                                  f"{low}..{high}, got {checks.describe(value)}")
        values[key] = tuple(value) if length else value
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
    """Write the student (its sizes, the shape of its teacher's stages, and its state) for
    :func:`load_student`."""
    if not isinstance(model, EntropicStudent):
        raise TypeError(f"model must be an EntropicStudent, got {checks.describe(model)}")
    torch.save({"b": model.b, "stride": model.stride, "num_classes": model.num_classes,
                "widths": list(model.widths), "blocks": list(model.blocks),
                "state": model.state_dict()}, path)


def load_student(path: str | os.PathLike[str]) -> EntropicStudent:
    """Read a student written by :func:`save_student` (``weights_only=True``); a file that is
    not one raises :class:`CheckpointError` naming it. The student's copied stages are
    rebuilt as a :class:`~paperlab.vision.models.CifarResNet`'s of the stored widths and block
    counts (torchvision's layout), then the stored state is loaded into them."""
    sizes, state = read_checkpoint(
        path, "save_student",
        {"b": (1, MAX_WIDTH), "stride": (min(STRIDES), max(STRIDES)),
         "num_classes": (1, 1 << 20), "widths": (1, 1 << 16, 4), "blocks": (1, 1 << 10, 3)})
    if sizes["stride"] not in STRIDES:
        raise CheckpointError(f"{path}: stride must be one of {STRIDES}, got {sizes['stride']}")
    skeleton = CifarResNetSpec(widths=sizes["widths"], blocks=(1, *sizes["blocks"]),
                               num_classes=sizes["num_classes"]).build()
    model = EntropicStudent(skeleton, sizes["b"], sizes["stride"])
    load_state(model, state, path)
    return model.eval()
