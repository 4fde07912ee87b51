"""Readers of the staged sentence-classification sets: SST-2 and Rotten Tomatoes (MR).

Both read the original files under the data root (see :mod:`paperlab.core.data`); a missing
file fails with the places looked and the ``paperlab data fetch`` command that downloads it; a
malformed line names its file and line number.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass

import numpy as np

from paperlab.core.data import require

HOW_TO_GET = ("SST-2 (harvardnlp's stsa.binary files) and Rotten Tomatoes (NLTK's "
              "sentence_polarity.zip) are read from <data root>/text/.")
SST2_SPLITS = {"train": "stsa.binary.train", "dev": "stsa.binary.dev", "test": "stsa.binary.test"}
RT_SPLITS = ("train", "validation", "test")
RT_ZIP = "text/nltk_data/corpora/sentence_polarity.zip"


@dataclass(frozen=True)
class TextSet:
    """Labelled sentences.

    Attributes:
        texts: the sentences, as in the file.
        labels: ``int64`` array ``(len(texts),)`` of class ids.
        name: data set and split, e.g. ``"sst2/dev"``.
    """

    texts: tuple[str, ...]
    labels: np.ndarray
    name: str

    def __post_init__(self) -> None:
        if len(self.texts) != len(self.labels):
            raise ValueError(f"{self.name}: {len(self.texts)} texts but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, n: int, seed: int = 0) -> TextSet:
        """``n`` examples drawn without replacement with a seeded generator (all if ``n`` is
        at least the size), in their original order."""
        if n >= len(self):
            return self
        idx = np.sort(np.random.default_rng(seed).choice(len(self), n, replace=False))
        return TextSet(tuple(self.texts[i] for i in idx), self.labels[idx], f"{self.name}[{n}]")


def read_sst2(split: str, root: str | os.PathLike[str] | None = None) -> TextSet:
    """SST-2 at sentence level (the harvardnlp ``stsa.binary`` files: ``label sentence``).

    Splits ``train`` (6,920), ``dev`` (872, where the paper reports), ``test`` (1,821);
    labels 0 negative, 1 positive.
    """
    if split not in SST2_SPLITS:
        raise ValueError(f"SST-2 split must be one of {sorted(SST2_SPLITS)}, got {split!r}")
    path = require(f"text/sst2_stsa/{SST2_SPLITS[split]}", HOW_TO_GET, root)
    texts, labels = [], []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            label, _, text = line.partition(" ")
            if label not in ("0", "1") or not text.strip():
                raise ValueError(f"{path}, line {number}: expected '0|1 sentence', got "
                                 f"{line[:60]!r}")
            texts.append(text.strip())
            labels.append(int(label))
    return TextSet(tuple(texts), np.asarray(labels, dtype=np.int64), f"sst2/{split}")


def read_rotten_tomatoes(split: str, root: str | os.PathLike[str] | None = None) -> TextSet:
    """Rotten Tomatoes (MR, Pang & Lee 2005: 5,331 positive and 5,331 negative sentences).

    The standard 8,530 / 1,066 / 1,066 split, made as the Hugging Face ``rotten_tomatoes``
    loader makes it: per class, in file order, the first 80 % (4,265) train, the next 10 %
    (533) validation, the rest (533) test; labels 0 negative, 1 positive. Read from NLTK's
    ``sentence_polarity.zip`` (the same ``rt-polarity.pos/.neg`` files, Latin-1).
    """
    if split not in RT_SPLITS:
        raise ValueError(f"Rotten Tomatoes split must be one of {list(RT_SPLITS)}, got {split!r}")
    path = require(RT_ZIP, HOW_TO_GET, root)
    texts: list[str] = []
    labels: list[int] = []
    with zipfile.ZipFile(path) as z:
        for label, member in ((1, "sentence_polarity/rt-polarity.pos"),
                              (0, "sentence_polarity/rt-polarity.neg")):
            try:
                lines = [t.strip() for t in z.read(member).decode("latin-1").splitlines()]
            except KeyError:
                raise ValueError(f"{path}: no {member} in the archive") from None
            lines = [t for t in lines if t]
            first, second = int(len(lines) * 0.8 + 0.5), int(len(lines) * 0.9 + 0.5)
            part = {"train": lines[:first], "validation": lines[first:second],
                    "test": lines[second:]}[split]
            texts += part
            labels += [label] * len(part)
    return TextSet(tuple(texts), np.asarray(labels, dtype=np.int64), f"rotten_tomatoes/{split}")


def read(name: str, split: str, root: str | os.PathLike[str] | None = None) -> TextSet:
    """``read("sst2", "dev")`` or ``read("rotten_tomatoes", "test")``."""
    readers = {"sst2": read_sst2, "rotten_tomatoes": read_rotten_tomatoes}
    if name not in readers:
        raise ValueError(f"unknown text data set {name!r}; expected one of {sorted(readers)}")
    return readers[name](split, root)
