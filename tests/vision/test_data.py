"""The CIFAR-10 reader: layout, labels, and errors that name the bad file."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from paperlab.core.data import DataNotFoundError
from paperlab.vision.data import (
    CLASSES,
    ImageFileError,
    ImageSet,
    cifar10_dir,
    load_cifar10,
    normalize,
    read_folder,
)


def _write(folder, classes=("a", "b"), per_class=3, size=32):
    rng = np.random.default_rng(0)
    for name in classes:
        (folder / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / name / f"{i:04d}.png")


def test_read_folder_layout_and_labels(tmp_path):
    _write(tmp_path)
    data = read_folder(tmp_path, classes=("a", "b"))
    assert data.images.shape == (6, 3, 32, 32) and data.images.dtype == torch.uint8
    assert data.labels.tolist() == [0, 0, 0, 1, 1, 1]
    first = np.array(Image.open(tmp_path / "a" / "0000.png")).transpose(2, 0, 1).copy()
    assert torch.equal(data.images[0], torch.from_numpy(first))
    assert len(read_folder(tmp_path, classes=("a", "b"), per_class=2)) == 4


def test_corrupt_file_is_named(tmp_path):
    _write(tmp_path)
    bad = tmp_path / "b" / "0001.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(ImageFileError, match="0001.png"):
        read_folder(tmp_path, classes=("a", "b"))


def test_missing_class_and_wrong_size_are_named(tmp_path):
    _write(tmp_path, classes=("a",))
    with pytest.raises(ImageFileError, match="class folder missing: .*b"):
        read_folder(tmp_path, classes=("a", "b"))
    with pytest.raises(ImageFileError, match="0000.png is 32x32, expected 16x16"):
        read_folder(tmp_path, classes=("a",), size=16)


def test_imageset_checks_and_normalize():
    with pytest.raises(ValueError, match="uint8"):
        ImageSet(torch.zeros(2, 3, 4, 4), torch.zeros(2, dtype=torch.long), ("a",), "x")
    with pytest.raises(ValueError, match="labels"):
        ImageSet(torch.zeros(2, 3, 4, 4, dtype=torch.uint8), torch.zeros(3), ("a",), "x")
    with pytest.raises(TypeError, match="uint8"):
        normalize(torch.zeros(1, 3, 2, 2))
    white = normalize(torch.full((1, 3, 2, 2), 255, dtype=torch.uint8))
    assert white[0, 0, 0, 0] == pytest.approx((1 - 0.4914) / 0.2470, rel=1e-5)


def test_unknown_split_and_missing_root(tmp_path):
    with pytest.raises(ValueError, match="split"):
        cifar10_dir("validation")
    with pytest.raises(DataNotFoundError, match="cifar10-images"):
        cifar10_dir("test", root=tmp_path)


def test_staged_cifar10_test_split():
    try:
        data = load_cifar10("test", per_class=3)
    except DataNotFoundError:
        pytest.skip("CIFAR-10 JPEGs not staged under the data root")
    assert data.classes == CLASSES
    assert data.images.shape == (30, 3, 32, 32)
    assert torch.bincount(data.labels).tolist() == [3] * 10
