"""Readers for the four few-shot benchmarks under ``<data_root>/text/`` (see its PROVENANCE).

Each returns a :class:`TextDataset`: training pool (few-shot subsets are sampled from it) and
test split, with string labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from paperlab.core.data import require

HOW_TO_GET = ("The few-shot benchmarks (SST-2, TREC, SNIPS, emotion) are read in their original "
              "files from <data root>/text/.")


@dataclass(frozen=True)
class TextDataset:
    name: str
    train_texts: list[str]
    train_labels: list[str]
    test_texts: list[str]
    test_labels: list[str]

    @property
    def classes(self) -> list[str]:
        return sorted(set(self.train_labels))


def _lines(path: Path) -> list[str]:
    """Non-empty stripped lines; UTF-8, or Latin-1 for files that are not (TREC's)."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return [ln.strip() for ln in text.splitlines() if ln.strip()]


def _label_first(path: Path) -> tuple[list[str], list[str]]:
    """``label<space>text`` lines (SST-2 / TREC as in harvardnlp's copies)."""
    texts, labels = [], []
    for i, line in enumerate(_lines(path)):
        label, _, text = line.partition(" ")
        if not text:
            raise ValueError(f"{path}:{i + 1}: expected 'label text', got {line[:60]!r}")
        texts.append(text)
        labels.append(label)
    return texts, labels


def _snips(folder: Path) -> tuple[list[str], list[str]]:
    texts, labels = _lines(folder / "seq.in"), _lines(folder / "label")
    if len(texts) != len(labels):
        raise ValueError(f"{folder}: {len(texts)} utterances but {len(labels)} labels")
    return texts, labels


def _emotion(path: Path) -> tuple[list[str], list[str]]:
    """``text;label_name`` lines after a header."""
    lines = _lines(path)
    if lines and lines[0] == "text;label_name":
        lines = lines[1:]
    texts, labels = [], []
    for i, line in enumerate(lines):
        text, sep, label = line.rpartition(";")
        if not sep or not text:
            raise ValueError(f"{path}:{i + 2}: expected 'text;label', got {line[:60]!r}")
        texts.append(text)
        labels.append(label)
    return texts, labels


_FILES = {
    "sst2": ("text/sst2_stsa/stsa.binary.train", "text/sst2_stsa/stsa.binary.test", _label_first),
    "trec": ("text/trec/TREC.train.all", "text/trec/TREC.test.all", _label_first),
    "snips": ("text/snips/train", "text/snips/test", _snips),
    "emotion": ("text/emotion/train.txt", "text/emotion/test.txt", _emotion),
}
DATASETS = tuple(_FILES)


def load_dataset(name: str, root: str | Path | None = None) -> TextDataset:
    """One of :data:`DATASETS` (``sst2``, ``trec``, ``snips``, ``emotion``)."""
    if name not in _FILES:
        raise ValueError(f"unknown data set {name!r}; choose from {', '.join(DATASETS)}")
    train_rel, test_rel, reader = _FILES[name]
    train = reader(require(train_rel, HOW_TO_GET, root=root))
    test = reader(require(test_rel, HOW_TO_GET, root=root))
    return TextDataset(name, train[0], train[1], test[0], test[1])
