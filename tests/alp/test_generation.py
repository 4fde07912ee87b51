"""ALP's default generation, ``"pcfg"``, as the authors' code does it: per class, a pool of the
class's phrases (S, SQ, SBAR, ADJP, ADVP and what an S rewrites to alone) and of their POS-tag
templates refilled from the class's lexicon, drawn and joined to at least ``min_chars``
characters; ``n_aug - k`` new examples per class."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from nltk import Tree

from paperlab.alp.augment import ALPAugmenter, EDAAugmenter, PhrasePool, _phrase_pool
from paperlab.alp.grammar import PHRASE_STARTS, lexicalize, normalize_tree
from paperlab.alp.parser import tokenize

POS = ["the film is good .", "a great story moves me .", "i loved the actors ."]
NEG = ["the movie was very dull .", "the plots are weak .", "it bored the audience .",
       "the plots are dull ."]
LABELS = ["pos"] * 3 + ["neg"] * 4
VOCAB = {c: {w for s, y in zip(POS + NEG, LABELS, strict=True) if y == c for w in tokenize(s)}
         for c in ("pos", "neg")}


class _Synset:
    def __init__(self, pos: str, names: list[str]) -> None:
        self._pos, self._names = pos, names

    def pos(self) -> str:
        return self._pos

    def lemma_names(self) -> list[str]:
        return self._names


class FakeWordNet:
    """A few synsets with their POS: data-free, and small enough to count synonym paths."""

    table = {"film": [("n", ["film", "movie", "picture_show"])],
             "movie": [("n", ["movie", "film"])],
             "good": [("a", ["good", "beneficial"]), ("s", ["good", "full"])],
             "dull": [("a", ["dull", "boring"])],
             "loved": [("v", ["love", "enjoy"])]}

    def synsets(self, word, pos=None):
        return [_Synset(p, names) for p, names in self.table.get(word, ())
                if pos is None or p == pos]

    def morphy(self, word, pos):
        return word if word in self.table else None


@pytest.fixture
def alp(toy_grammar):
    return ALPAugmenter(toy_grammar, None, n_aug=9).fit(POS + NEG, LABELS)


def _lex(s: str) -> Tree:
    return lexicalize(normalize_tree(Tree.fromstring(s)))


def test_pcfg_is_the_default_and_n_aug_gives_n_aug_minus_k_per_class(alp):
    assert alp.generation == "pcfg" and alp.n_aug == 9
    texts, labels = alp.augment(seed=0)
    assert labels == ["neg"] * (9 - 4) + ["pos"] * (9 - 3)
    assert len(texts) == 11
    assert alp.augment(3, seed=0)[1] == ["neg"] * 3 + ["pos"] * 3  # an explicit count wins
    assert [a.label for a in alp.generate(seed=0)] == labels


@pytest.mark.parametrize("min_chars", [1, 40, 256, 600])
def test_every_augmentation_reaches_min_chars_and_stops_at_the_first_piece_past_it(
        toy_grammar, min_chars):
    alp = ALPAugmenter(toy_grammar, None, min_chars=min_chars).fit(POS + NEG, LABELS)
    longest = max(len(" ".join(p)) for c in alp.classes_ for p in alp.phrase_pools_[c].originals)
    texts, _ = alp.augment(6, seed=1)
    for text in texts:
        assert min_chars <= len(text) < min_chars + longest + 1


def test_augmentations_use_only_their_class_words(alp):
    texts, labels = alp.augment(20, seed=3)
    for text, label in zip(texts, labels, strict=True):
        assert set(text.split()) <= VOCAB[label]
    pos_only, neg_only = VOCAB["pos"] - VOCAB["neg"], VOCAB["neg"] - VOCAB["pos"]
    assert any(set(t.split()) & pos_only for t in texts)
    assert not any(set(t.split()) & neg_only for t, y in zip(texts, labels, strict=True)
                   if y == "pos")


def test_the_pool_holds_the_class_phrases_cut_at_commas_and_their_tag_templates():
    trees = [_lex("(S (NP (DT the) (NN film)) (, ,) (ADVP (RB sadly)) (, ,) (VP (VBZ is) "
                  "(ADJP (JJ long))) (. .))"),
             _lex("(S (VP (VB go) (NP (PRP it))))")]  # an S over a VP alone: VP phrases count
    pool = _phrase_pool(trees, PHRASE_STARTS | {"VP"})
    assert isinstance(pool, PhrasePool)
    assert set(pool.originals) == {("the", "film"), ("sadly",), ("is", "long", "."),
                                   ("long",), ("go", "it"), ("is", "long")}
    assert pool.templates["S"] == (("DT", "NN", ",", "RB", ",", "VBZ", "JJ", "."),
                                   ("VB", "PRP"))
    assert pool.templates["VP"] == (("VBZ", "JJ"), ("VB", "PRP"))
    assert set(pool.categories) == {"S", "ADVP", "ADJP", "VP"}


def test_a_class_without_those_categories_uses_its_whole_sentences(caplog):
    trees = [_lex("(NP (NP (DT a) (NN film)) (PP (IN about) (NP (NN love))))"),
             _lex("(NP (NN fun))")]
    with caplog.at_level(logging.INFO, logger="paperlab.alp.augment"):
        pool = _phrase_pool(trees, PHRASE_STARTS)
    assert pool.originals == (("a", "film", "about", "love"), ("fun",))
    assert pool.categories == ("NP",)
    assert "whole sentences" in caplog.text


def test_s_alone_rewrites_add_their_category(toy_grammar):
    alp = ALPAugmenter(toy_grammar, None).fit(POS + NEG, LABELS)
    assert set(alp.phrase_pools_["pos"].categories) <= PHRASE_STARTS  # the toy S has 3 kids
    assert ("good",) in alp.phrase_pools_["pos"].originals  # an ADJP


def test_templates_are_refilled_once_or_twice_after_a_short_first_sentence(toy_grammar):
    long_first = ["the film is good and the story moves me and i loved the actors ."]
    for texts, rounds in ((POS, 2), (long_first + POS, 1)):
        alp = ALPAugmenter(toy_grammar, None).fit(texts, ["pos"] * len(texts))
        pool = alp.phrase_pools_["pos"]
        pieces = alp._pieces("pos", np.random.default_rng(0))
        n_templates = sum(map(len, pool.templates.values()))
        assert len(pieces) == len(pool.originals) + rounds * n_templates


def test_content_tags_take_wordnet_lemma_names_weighted_by_paths(toy_grammar):
    texts = ["the film is good .", "i loved the actors ."]
    one = ALPAugmenter(toy_grammar, FakeWordNet(), synonym_rounds=1).fit(texts, ["p"] * 2)
    pools = one.pools_["p"]
    assert one.pool_weights_["p"]["NN"] == (1, 1, 1)
    assert pools["NN"] == ("film", "movie", "picture show")  # film replaced by its names
    assert pools["JJ"] == ("beneficial", "good")  # satellite senses ('s') are not read
    assert pools["VBD"] == ("enjoy", "love")  # an inflected word gives way to lemmas
    assert "NNS" not in pools  # 'actors' has no synset: the tag is left without words
    assert pools["DT"] == ("the",) and pools["."] == (".",)  # function tags keep their words
    two = ALPAugmenter(toy_grammar, FakeWordNet(), synonym_rounds=2).fit(texts, ["p"] * 2)
    # film -> {film, movie, picture show}; then film -> 3 names, movie -> {movie, film}
    assert dict(zip(two.pools_["p"]["NN"], two.pool_weights_["p"]["NN"], strict=True)) == {
        "film": 2, "movie": 2, "picture show": 1}
    none = ALPAugmenter(toy_grammar, FakeWordNet(), synonym_rounds=0).fit(texts, ["p"] * 2)
    assert none.pools_["p"]["NN"] == ("film",) and none.pools_["p"]["NNS"] == ("actors",)
    texts_made, _ = two.augment(10, seed=0)
    synonyms = {"movie", "picture", "show", "beneficial", "enjoy", "love"}
    assert all(set(t.split()) <= VOCAB["pos"] | synonyms for t in texts_made)


def test_seeded_deterministic_and_the_same_after_json(alp):
    a = alp.augment(seed=7)
    assert a == alp.augment(seed=7)
    assert a[0] != alp.augment(seed=8)[0]
    again = ALPAugmenter.from_json(json.loads(json.dumps(alp.to_json())))
    assert (again.generation, again.n_aug, again.synonym_rounds) == ("pcfg", 9, 4)
    assert again.augment(seed=7) == a


def test_recombine_stays_available(toy_grammar):
    rec = ALPAugmenter(toy_grammar, None, threshold=-50.0, generation="recombine").fit(
        POS + NEG, LABELS)
    texts, labels = rec.augment(4, seed=0)
    assert all(len(t) < 60 for t in texts)  # one sentence each
    assert len(rec.augment_trees(2, seed=0)[0]) == 4


def test_bad_input_names_the_problem(toy_grammar, alp):
    with pytest.raises(ValueError, match="class 'x': none of its 1 sentences parses"):
        ALPAugmenter(toy_grammar, None).fit(POS + ["the the the ."], ["p"] * 3 + ["x"])
    with pytest.raises(ValueError, match="n_aug=4 leaves no new example for class 'neg', "
                                         "which has k=4"):
        ALPAugmenter(toy_grammar, None, n_aug=4).fit(POS + NEG, LABELS).augment()
    with pytest.raises(ValueError, match="needs n_per_class, or an ALPAugmenter made with n_aug"):
        ALPAugmenter(toy_grammar, None).fit(POS + NEG, LABELS).augment()
    with pytest.raises(ValueError, match="EDAAugmenter.augment needs n_per_class"):
        EDAAugmenter(FakeWordNet()).fit(POS + NEG, LABELS).augment()
    for bad in (0, -3, {"pos": -1}):
        with pytest.raises(ValueError, match="must be >= 1"):
            alp.augment(bad)
    with pytest.raises(ValueError, match="class 'n' is empty"):
        ALPAugmenter(toy_grammar, None).fit(POS, ["p"] * 3, classes=["p", "n"])
    for kwargs, match in (({"generation": "PCFG"}, "generation must be one of"),
                          ({"n_aug": 1}, "n_aug must be >= 2"),
                          ({"n_aug": -5}, "n_aug must be >= 2"),
                          ({"synonym_rounds": -1}, "synonym_rounds must be >= 0"),
                          ({"min_chars": 0}, "min_chars must be >= 1")):
        with pytest.raises(ValueError, match=match):
            ALPAugmenter(toy_grammar, None, **kwargs)
    with pytest.raises(TypeError, match="n_aug must be an integer"):
        ALPAugmenter(toy_grammar, None, n_aug=2.5)
    with pytest.raises(ValueError, match="needs generation='recombine'"):
        alp.augment_trees(2)
