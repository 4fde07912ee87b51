"""The Brown corpus as a word-level language-modelling stream (read from NLTK's zip).

``brown.zip`` holds 500 files ``brown/c<genre><nn>``; each sentence is a line of
``word/TAG`` tokens. We lower-case the words, end every sentence with ``</s>`` and split
by file (every 10th file is test, the next-to-last of each ten is validation), so that the
three parts are disjoint documents. Words not in the training vocabulary map to ``<unk>``.
"""

from __future__ import annotations

import re
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BROWN_RELPATH = "text/nltk_data/corpora/brown.zip"
HOW_TO_GET = ("The Brown corpus zip of nltk_data (packages/corpora/brown.zip) is read from "
              "<data root>/text/nltk_data/corpora/.")
EXPECTED_FILES = 500
EXPECTED_TOKENS = 1_161_192  # PROVENANCE.md of shared/data/text
END, UNK = "</s>", "<unk>"
_FILE_NAME = re.compile(r"brown/c[a-r]\d\d")


class CorpusFormatError(ValueError):
    """The zip does not look like NLTK's tagged Brown corpus."""


def read_brown(path: Path) -> dict[str, list[list[str]]]:
    """Sentences (lists of lower-cased words) per file name, validated.

    Raises ``CorpusFormatError`` when the archive holds no ``brown/c??NN`` files, a token has
    no ``/TAG`` part, or a file cannot be decoded.
    """
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise CorpusFormatError(f"{path} is not a readable zip file: {err}") from err
    docs: dict[str, list[list[str]]] = {}
    with archive:
        for name in sorted(n for n in archive.namelist() if _FILE_NAME.fullmatch(n)):
            try:
                text = archive.read(name).decode("utf-8")
            except UnicodeDecodeError as err:
                raise CorpusFormatError(f"{path}:{name} is not UTF-8 text") from err
            docs[name] = [_words(line, name) for line in text.splitlines() if line.strip()]
    if not docs:
        raise CorpusFormatError(f"{path} holds no brown/c??NN files; is it NLTK's brown.zip?")
    return docs


def _words(line: str, name: str) -> list[str]:
    words = []
    for token in line.split():
        word, slash, tag = token.rpartition("/")
        if not slash or not word or not tag:
            raise CorpusFormatError(f"{name}: token {token!r} is not of the form word/TAG")
        words.append(word.lower())
    return words


@dataclass
class LMCorpus:
    """Token-id streams of the three splits and the vocabulary (``itos[i]`` is word ``i``)."""

    itos: list[str]
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    num_files: int
    num_tokens: int  # words in the corpus, before adding ``</s>``

    @property
    def vocab_size(self) -> int:
        return len(self.itos)


def build_corpus(docs: dict[str, list[list[str]]]) -> LMCorpus:
    """Split by file (test: every 10th, valid: the 9th of each ten) and index the words.

    The vocabulary is every training word plus ``</s>`` and ``<unk>``, most frequent first.
    """
    names = sorted(docs)
    parts: dict[str, list[str]] = {"train": [], "valid": [], "test": []}
    for i, name in enumerate(names):
        split = "test" if i % 10 == 9 else "valid" if i % 10 == 8 else "train"
        for sentence in docs[name]:
            parts[split].extend(sentence)
            parts[split].append(END)
    counts = Counter(parts["train"])
    itos = [UNK] + [w for w, _ in counts.most_common()]
    stoi = {w: i for i, w in enumerate(itos)}
    ids = {k: np.array([stoi.get(w, 0) for w in v], dtype=np.int64) for k, v in parts.items()}
    num_tokens = sum(len(s) for doc in docs.values() for s in doc)
    return LMCorpus(itos, ids["train"], ids["valid"], ids["test"], len(names), num_tokens)


def ngram_examples(stream: np.ndarray, context: int) -> tuple[np.ndarray, np.ndarray]:
    """``(contexts (N, context), next words (N,))`` for every position with a full context."""
    stream = np.asarray(stream)
    if stream.ndim != 1 or stream.dtype.kind not in "iu":
        raise ValueError(f"stream must be a 1-D array of word ids, got {stream.dtype} "
                         f"{stream.shape}")
    if not isinstance(context, int | np.integer) or context < 1:
        raise ValueError(f"context must be a positive number of words, got {context!r}")
    if len(stream) <= context:
        raise ValueError(f"stream of {len(stream)} tokens is too short for context {context}")
    windows = np.lib.stride_tricks.sliding_window_view(stream, context + 1)
    return windows[:, :context].copy(), windows[:, context].copy()
