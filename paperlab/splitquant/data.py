"""Readers of the staged data sets, each validating its file's format.

* :func:`read_sms_spam`: the UCI SMS Spam Collection (``ham|spam<TAB>text`` per line);
* :func:`read_emotion`: dair-ai emotion as ``text;label_name`` with a header;
* :func:`read_cifar`: CIFAR-10 JPEGs in one folder per class.

A malformed line raises ``ValueError`` naming the file and line number.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

EMOTION_LABELS = ("sadness", "joy", "love", "anger", "fear", "surprise")  # HF dair-ai/emotion ids
CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                 "truck")
HOW_TEXT = "SMS spam and emotion are read in their original files from <data root>/text/."
HOW_CIFAR = "CIFAR-10 is read as one JPEG per image from <data root>/vision/cifar10-images/."


def read_sms_spam(path: Path) -> tuple[list[str], np.ndarray]:
    """UCI SMS Spam Collection: ``ham|spam<TAB>text`` per line -> (texts, labels; spam = 1)."""
    texts, labels = [], []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        label, sep, text = line.partition("\t")
        if not sep or label not in ("ham", "spam"):
            raise ValueError(f"{path}:{number}: expected 'ham|spam<TAB>text', got {line[:60]!r}")
        texts.append(text)
        labels.append(int(label == "spam"))
    return texts, np.array(labels)


def read_emotion(path: Path) -> tuple[list[str], np.ndarray]:
    """dair-ai emotion as ``text;label_name`` with a header -> (texts, HF label ids)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or lines[0].strip() != "text;label_name":
        raise ValueError(f"{path}: expected the header 'text;label_name'")
    texts, labels = [], []
    for number, line in enumerate(lines[1:], 2):
        text, sep, name = line.rpartition(";")
        if not sep or name not in EMOTION_LABELS:
            raise ValueError(f"{path}:{number}: expected 'text;<emotion>', got {line[:60]!r}")
        texts.append(text)
        labels.append(EMOTION_LABELS.index(name))
    return texts, np.array(labels)


def read_cifar(folder: Path, per_class: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``per_class`` JPEGs of each class folder -> (uint8 ``(N, 3, 32, 32)``, labels)."""
    from PIL import Image

    images, labels = [], []
    for label, name in enumerate(CIFAR_CLASSES):
        files = sorted((folder / name).glob("*.jpg"))[:per_class]
        if len(files) < per_class:
            raise ValueError(f"{folder / name}: {len(files)} images, need {per_class}")
        for f in files:
            with Image.open(f) as img:
                images.append(np.asarray(img.convert("RGB"), dtype=np.uint8))
        labels += [label] * per_class
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    if x.shape[1:] != (3, 32, 32):
        raise ValueError(f"{folder}: expected 32x32 RGB images, got {tuple(x.shape[1:])}")
    return x, torch.tensor(labels)
