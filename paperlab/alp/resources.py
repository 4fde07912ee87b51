"""Offline NLTK resources: the treebank sample, WordNet 3.0, and the grammar built from them.

Everything is read from ``<data_root>/text/nltk_data`` (never downloaded): the corpora are
opened straight from their zips with NLTK's readers, so nothing is written next to the data
(NLTK 3.10 refuses paths outside ``nltk.data.path``, so the folder is appended there). The
induced grammar and trained tagger are cached as JSON under ``<cache>/alp/``. A missing
resource raises :class:`MissingResourceError` naming it and the path looked at.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from nltk import Tree

from paperlab.alp.grammar import PCFG, is_preterminal, normalize_tree, without_final_punct
from paperlab.alp.parser import CKYParser
from paperlab.alp.tagger import Tagger
from paperlab.core.data import DataNotFoundError, cache_dir, fetch_hint, require

log = logging.getLogger(__name__)

NLTK_DIR = "text/nltk_data"
HOW_TO_GET = ("NLTK's treebank sample and WordNet 3.0 zips are read from "
              "<data root>/text/nltk_data/corpora/; nothing is downloaded at run time.")
CACHE_VERSION = 2


class MissingResourceError(DataNotFoundError):
    """An NLTK resource (corpus zip) is missing; the message names it and where it was looked."""


def nltk_data_dir(root: str | os.PathLike[str] | None = None) -> Path:
    """``<data_root>/text/nltk_data`` (``root``: an explicit data root, else the usual search)."""
    return require(NLTK_DIR, HOW_TO_GET, root=root)


def corpus_zip(nltk_dir: str | os.PathLike[str], name: str) -> Path:
    """``<nltk_dir>/corpora/<name>.zip``, or :class:`MissingResourceError` naming it."""
    import nltk

    path = Path(nltk_dir) / "corpora" / f"{name}.zip"
    if not path.is_file():
        raise MissingResourceError(
            f"missing NLTK resource '{name}': looked for {path}. {HOW_TO_GET} "
            f"{fetch_hint(f'{NLTK_DIR}/corpora/{name}.zip')}")
    folder = str(Path(nltk_dir).resolve())
    if folder not in nltk.data.path:
        nltk.data.path.append(folder)
    return path


def treebank_trees(nltk_dir: str | os.PathLike[str],
                   fileids: Sequence[str] | None = None) -> list[Tree]:
    """The treebank sample's trees (of ``fileids``, e.g. ``["wsj_0199.mrg"]``; all 199 files
    when ``None``), normalised (:func:`~paperlab.alp.grammar.normalize_tree`)."""
    from nltk.corpus.reader import BracketParseCorpusReader
    from nltk.data import ZipFilePathPointer

    pointer = ZipFilePathPointer(str(corpus_zip(nltk_dir, "treebank")), "treebank/combined/")
    reader = BracketParseCorpusReader(pointer, r"wsj_.*\.mrg")
    trees = (normalize_tree(t) for t in reader.parsed_sents(fileids))
    return [t for t in trees if t is not None]


@lru_cache(maxsize=4)
def wordnet(nltk_dir: str) -> object:
    """NLTK's WordNet reader over ``<nltk_dir>/corpora/wordnet.zip`` (WordNet 3.0)."""
    from nltk.corpus.reader import WordNetCorpusReader
    from nltk.data import ZipFilePathPointer

    pointer = ZipFilePathPointer(str(corpus_zip(nltk_dir, "wordnet")), "wordnet/")
    with warnings.catch_warnings():  # Open Multilingual Wordnet is not staged (nor needed)
        warnings.filterwarnings("ignore", message="The multilingual functions")
        return WordNetCorpusReader(pointer, None)


@dataclass(frozen=True)
class Grammar:
    """What ALP parses with: the treebank PCFG, the tagger, and a parser over both;
    ``n_trees`` counts the trees learnt from (unpunctuated copies included)."""

    pcfg: PCFG
    tagger: Tagger
    parser: CKYParser
    n_trees: int


def _tagged(tree: Tree) -> list[tuple[str, str]]:
    return [(st[0], st.label()) for st in tree.subtrees(is_preterminal)]


def build_grammar(trees: list[Tree], horz_markov: int = 1, tagger_iters: int = 5,
                  seed: int = 0, beam: int = 12, unpunctuated: bool = True) -> Grammar:
    """Induce the PCFG and train the tagger on ``trees`` (normalised), no caching.

    ``unpunctuated``: also learn from a copy of every tree without its sentence-final
    punctuation (the treebank nearly always has it; SNIPS and emotion texts nearly never do,
    and without these copies the grammar has no rule for a sentence that ends without it).
    """
    if unpunctuated:
        copies = (without_final_punct(t) for t in trees)
        trees = trees + [c for c, t in zip(copies, trees, strict=True)
                         if c is not None and c != t]
    pcfg = PCFG.from_trees(trees, horz_markov=horz_markov)
    tagger = Tagger.train([_tagged(t) for t in trees], n_iter=tagger_iters, seed=seed)
    return Grammar(pcfg, tagger, CKYParser(pcfg, tagger, beam=beam), len(trees))


def load_grammar(nltk_dir: str | os.PathLike[str], n_trees: int | None = None,
                 horz_markov: int = 1, tagger_iters: int = 5, beam: int = 12) -> Grammar:
    """The grammar from the first ``n_trees`` treebank trees (all when ``None``), from the JSON
    cache when it was built before with the same inputs and settings."""
    source = corpus_zip(nltk_dir, "treebank")
    stat = source.stat()
    key = hashlib.sha256(json.dumps(
        [CACHE_VERSION, stat.st_size, int(stat.st_mtime), n_trees, horz_markov, tagger_iters]
    ).encode()).hexdigest()[:16]
    path = cache_dir() / "alp" / f"grammar-{key}.json"
    if path.is_file():
        try:
            obj = json.loads(path.read_text())
            pcfg, tagger = PCFG.from_json(obj["pcfg"]), Tagger.from_json(obj["tagger"])
            return Grammar(pcfg, tagger, CKYParser(pcfg, tagger, beam=beam), obj["n_trees"])
        except (ValueError, KeyError, TypeError) as err:
            log.warning("ignoring unreadable grammar cache %s (%s)", path, err)
    trees = treebank_trees(nltk_dir)
    if n_trees is not None:
        trees = trees[:n_trees]
    grammar = build_grammar(trees, horz_markov=horz_markov, tagger_iters=tagger_iters, beam=beam)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps({"pcfg": grammar.pcfg.to_json(), "tagger": grammar.tagger.to_json(),
                               "n_trees": grammar.n_trees}))
    os.replace(tmp, path)
    return grammar
