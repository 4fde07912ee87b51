"""The class-wise lexicalized PCFG and ``generation="sample"`` (the paper's description: phrases
sampled from it, joined to a length)."""

from __future__ import annotations

import numpy as np
import pytest
from nltk import Tree

from paperlab.alp.augment import ALPAugmenter
from paperlab.alp.grammar import (
    LexicalizedPCFG,
    TooDeep,
    delexicalize,
    lexicalize,
    normalize_tree,
)

POS = ["the film is good .", "a great story moves me .", "i loved the actors ."]
NEG = ["the movie was very dull .", "the plots are weak .", "it bored the audience ."]
LABELS = ["pos"] * 3 + ["neg"] * 3


def _productions(tree: Tree) -> set[tuple[str, tuple[str, ...]]]:
    """``(category, child categories)`` of every phrase (not the preterminals, not ROOT)."""
    return {(n.label(), tuple(k.label() for k in n)) for n in tree.subtrees()
            if isinstance(n[0], Tree) and n.label() != "ROOT"}


def _words(tree: Tree) -> set[tuple[str, str]]:
    return {(n.label(), n[0]) for n in tree.subtrees() if not isinstance(n[0], Tree)}


@pytest.fixture
def sample_alp(toy_grammar):
    return ALPAugmenter(toy_grammar, None, generation="sample", min_chars=60).fit(POS + NEG, LABELS)


def test_the_class_grammar_holds_exactly_the_rules_of_the_class_parses(sample_alp):
    for c in ("pos", "neg"):
        seen = set().union(*(_productions(delexicalize(t)) for t in sample_alp.trees_[c]))
        assert sample_alp.grammars_[c].productions() == seen


def test_sampled_phrases_use_only_rules_and_words_of_their_class(sample_alp):
    rng = np.random.default_rng(0)
    for c, other in (("pos", "neg"), ("neg", "pos")):
        trees = [delexicalize(t) for t in sample_alp.trees_[c]]
        rules = set().union(*map(_productions, trees))
        words = set().union(*map(_words, trees))
        other_only = ({w for _, w in set().union(*(_words(delexicalize(t))
                                                   for t in sample_alp.trees_[other]))}
                      - {w for _, w in words})
        made = 0
        for _ in range(200):
            try:
                phrase = sample_alp.grammars_[c].sample(rng, p_word=0.5)
            except TooDeep:
                continue
            made += 1
            assert _productions(phrase) <= rules
            assert _words(phrase) <= words  # no WordNet: the pools are the class's own words
            assert not set(phrase.leaves()) & other_only
        assert made > 150


def test_augmentations_are_joined_phrases_of_at_least_min_chars(toy_grammar):
    for min_chars in (1, 60, 256):
        alp = ALPAugmenter(toy_grammar, None, generation="sample", min_chars=min_chars)
        texts, labels = alp.fit(POS + NEG, LABELS).augment(8, seed=2)
        assert len(texts) == 16 and labels == ["neg"] * 8 + ["pos"] * 8
        assert all(len(t) >= min_chars for t in texts)
        vocab = {c: {w for s, y in zip(POS + NEG, LABELS, strict=True) if y == c
                     for w in s.split()} for c in ("pos", "neg")}
        for text, label in zip(texts, labels, strict=True):
            assert set(text.split()) <= vocab[label]
        if min_chars == 256:  # several phrases, and no longer than one phrase past the limit
            longest = max(len(s) for s in POS + NEG) * 4
            assert all(len(t) < 256 + longest for t in texts)


def test_joining_stops_at_the_first_phrase_that_reaches_the_length(toy_grammar, monkeypatch):
    alp = ALPAugmenter(toy_grammar, None, generation="sample", min_chars=20).fit(POS + NEG, LABELS)
    phrases = iter([Tree("S", [Tree("NN", ["abcdefgh"])])] * 10)  # 8 characters each
    monkeypatch.setattr(LexicalizedPCFG, "sample", lambda self, rng, **kw: next(phrases))
    # 8, 17, 26: the third phrase reaches 20 characters
    assert alp._sampled("pos", np.random.default_rng(0)) == ["abcdefgh"] * 3


def test_sample_generation_is_seeded_and_survives_json(sample_alp):
    a, b = sample_alp.augment(5, seed=7), sample_alp.augment(5, seed=7)
    assert a[0] == b[0]
    assert sample_alp.augment(5, seed=8)[0] != a[0]
    again = ALPAugmenter.from_json(sample_alp.to_json())
    assert again.generation == "sample" and again.min_chars == 60
    assert again.augment(5, seed=7)[0] == a[0]


def test_recursive_rules_stop_at_the_depth_limit():
    tree = normalize_tree(Tree.fromstring(
        "(S (NP (NP (DT the) (NN end)) (PP (IN of) (NP (NP (DT the) (NN film)) (PP (IN of) "
        "(NP (NN love)))))) (VP (VBZ is) (ADJP (JJ sad))))"))
    grammar = LexicalizedPCFG.from_trees([lexicalize(tree)])
    with pytest.raises(TooDeep):
        for seed in range(200):
            grammar.sample(np.random.default_rng(seed), "NP", max_depth=2)
    assert grammar.sample(np.random.default_rng(0), "ADJP").leaves() == ["sad"]


def test_sample_generation_refuses_trees_and_bad_settings(sample_alp, toy_grammar):
    with pytest.raises(ValueError, match="recombine"):
        sample_alp.augment_trees(2)
    with pytest.raises(ValueError, match="generation"):
        ALPAugmenter(toy_grammar, None, generation="bogus")
    with pytest.raises(ValueError, match="min_chars"):
        ALPAugmenter(toy_grammar, None, min_chars=0)
    with pytest.raises(ValueError, match="no phrases"):
        LexicalizedPCFG.from_trees([])
