"""Reading the Brown zip defensively, splitting it, and making n-gram examples."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from paperlab.core.data import DataNotFoundError, require
from paperlab.zloss.data import (
    BROWN_RELPATH,
    EXPECTED_FILES,
    EXPECTED_TOKENS,
    HOW_TO_GET,
    CorpusFormatError,
    build_corpus,
    ngram_examples,
    read_brown,
)


def write_zip(path, files: dict[str, str]):
    with zipfile.ZipFile(path, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return path


def test_reads_tagged_sentences(tmp_path):
    text = "\n\n\tThe/at Jury/nn-tl said/vbd 1/2/cd ./.\n\n\tIt/pps ran/vbd ./.\n"
    docs = read_brown(write_zip(tmp_path / "b.zip", {"brown/ca01": text, "brown/README": "x"}))
    assert docs == {"brown/ca01": [["the", "jury", "said", "1/2", "."], ["it", "ran", "."]]}


@pytest.mark.parametrize("files,match", [
    ({"brown/ca01": "\tthe/at jury said/vbd\n"}, "word/TAG"),
    ({"brown/ca01": "\t/at\n"}, "word/TAG"),
    ({"other/file": "a/b\n"}, "no brown/c"),
])
def test_malformed_archives_are_rejected(tmp_path, files, match):
    with pytest.raises(CorpusFormatError, match=match):
        read_brown(write_zip(tmp_path / "b.zip", files))


def test_not_a_zip_is_rejected(tmp_path):
    (tmp_path / "b.zip").write_text("not a zip")
    with pytest.raises(CorpusFormatError, match="not a readable zip"):
        read_brown(tmp_path / "b.zip")


def test_split_by_file_vocabulary_and_unknown_words():
    docs = {f"brown/ca{i:02d}": [[f"w{i}", "the"]] for i in range(1, 11)}
    corpus = build_corpus(docs)
    assert corpus.itos[0] == "<unk>" and corpus.itos[1] in ("the", "</s>")
    assert len(corpus.train) == 8 * 3 and len(corpus.valid) == 3 and len(corpus.test) == 3
    assert corpus.test[0] == 0 and corpus.valid[0] == 0  # w9, w10 never seen in training
    assert corpus.num_tokens == 20 and corpus.vocab_size == 1 + 8 + 2


def test_ngram_examples_are_the_sliding_windows():
    x, y = ngram_examples(np.arange(6), 2)
    assert x.tolist() == [[0, 1], [1, 2], [2, 3], [3, 4]] and y.tolist() == [2, 3, 4, 5]
    with pytest.raises(ValueError, match="too short"):
        ngram_examples(np.arange(2), 2)


def test_real_brown_corpus_matches_provenance():
    try:
        path = require(BROWN_RELPATH, HOW_TO_GET)
    except DataNotFoundError:
        pytest.skip("Brown corpus not staged")
    docs = read_brown(path)
    assert len(docs) == EXPECTED_FILES
    assert sum(len(s) for doc in docs.values() for s in doc) == EXPECTED_TOKENS
