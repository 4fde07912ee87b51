"""Shared fixtures: a toy grammar built in memory, and the treebank grammar (skipped when the
NLTK data is not staged). The treebank grammar uses the first 800 trees so that a cold build
(no JSON cache yet) stays short."""

from __future__ import annotations

import pytest
from nltk import Tree

from paperlab.alp.grammar import normalize_tree
from paperlab.alp.resources import build_grammar, load_grammar, nltk_data_dir
from paperlab.core.data import DataNotFoundError

TOY = [
    "(S (NP (DT the) (NN film)) (VP (VBZ is) (ADJP (JJ good))) (. .))",
    "(S (NP (DT the) (NN movie)) (VP (VBZ was) (ADJP (RB very) (JJ dull))) (. .))",
    "(S (NP (DT a) (JJ great) (NN story)) (VP (VBZ moves) (NP (PRP me))) (. .))",
    "(S (NP (PRP i)) (VP (VBD loved) (NP (DT the) (NNS actors))) (. .))",
    "(S (NP (DT the) (NNS plots)) (VP (VBP are) (ADJP (JJ weak))) (. .))",
    "(S (NP (PRP it)) (VP (VBD bored) (NP (DT the) (NN audience))) (. .))",
]


@pytest.fixture(scope="session")
def toy_trees() -> list[Tree]:
    return [normalize_tree(Tree.fromstring(s)) for s in TOY]


@pytest.fixture(scope="session")
def toy_grammar(toy_trees):
    return build_grammar(toy_trees * 3, tagger_iters=3)


@pytest.fixture(scope="session")
def nltk_dir():
    try:
        return nltk_data_dir()
    except DataNotFoundError as err:
        pytest.skip(f"NLTK data not staged: {err}")


@pytest.fixture(scope="session")
def treebank_grammar(nltk_dir):
    return load_grammar(nltk_dir, n_trees=800)
