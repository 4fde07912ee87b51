from __future__ import annotations

import pytest

from paperlab.alp.augment import ALPAugmenter, EDAAugmenter, WordNetSynonyms, head_preterminals
from paperlab.alp.grammar import lexicalize
from paperlab.alp.parser import tokenize
from paperlab.alp.resources import wordnet

POS = ["the film is good .", "a great story moves me .", "i loved the actors ."]
NEG = ["the movie was very dull .", "the plots are weak .", "it bored the audience ."]


class _Synset:
    def __init__(self, names):
        self._names = names

    def lemma_names(self):
        return self._names


class FakeWordNet:
    """A two-entry WordNet stand-in: fast and data-free."""

    table = {"good": ["good", "beneficial"], "film": ["film", "movie", "picture_show"],
             "dull": ["dull", "boring"], "weak": ["weak", "feeble"]}

    def synsets(self, word, pos=None):
        return [_Synset(self.table[word])] if word in self.table else []

    def morphy(self, word, pos):
        return word if word in self.table else None


@pytest.fixture
def toy_alp(toy_grammar):
    return ALPAugmenter(toy_grammar, None, threshold=-50.0, p_slot=0.5,
                        generation="recombine").fit(
        POS + NEG, ["pos"] * 3 + ["neg"] * 3)


def test_alp_generated_sentences_parse_under_the_grammar(toy_alp, toy_grammar):
    trees, labels = toy_alp.augment_trees(4, seed=1)
    assert len(trees) == 8 and labels == ["neg"] * 4 + ["pos"] * 4
    for tree in trees:
        assert toy_grammar.pcfg.tree_logprob(tree) is not None  # every rule is in the grammar
        parse = toy_grammar.parser.parse(tree.leaves())
        assert parse is not None and parse.tree.leaves() == tree.leaves()


def test_alp_preserves_labels_by_class_vocabulary(toy_alp):
    vocab = {c: {w for s in sents for w in tokenize(s)} for c, sents in
             {"pos": POS, "neg": NEG}.items()}
    texts, labels = toy_alp.augment(6, seed=3)
    originals = {" ".join(tokenize(s)) for s in POS + NEG}
    for text, label in zip(texts, labels, strict=True):
        assert set(text.split()) <= vocab[label]
    assert len(set(texts)) == len(texts)
    assert not set(texts) & originals


def test_alp_same_seed_same_augmentations(toy_alp):
    assert toy_alp.augment(5, seed=7) == toy_alp.augment(5, seed=7)
    assert toy_alp.augment(5, seed=7) != toy_alp.augment(5, seed=8)


def test_alp_counts_per_class(toy_alp):
    texts, labels = toy_alp.augment({"pos": 2}, seed=0)
    assert labels == ["pos", "pos"]


def test_alp_threshold_keeps_at_least_the_best_tree(toy_grammar):
    strict = ALPAugmenter(toy_grammar, None, threshold=0.0, generation="recombine").fit(
        POS + NEG, ["p"] * 3 + ["n"] * 3)
    assert all(len(t) == 1 for t in strict.trees_.values())
    loose = ALPAugmenter(toy_grammar, None, threshold=-50.0, generation="recombine").fit(
        POS + NEG, ["p"] * 3 + ["n"] * 3)
    assert all(len(t) == 3 for t in loose.trees_.values())
    assert max(loose.tree_logprobs_["p"]) == strict.tree_logprobs_["p"][0]


def test_slot_pools_expand_with_same_pos_synonyms(toy_grammar):
    alp = ALPAugmenter(toy_grammar, FakeWordNet(), threshold=-50.0, generation="recombine").fit(
        POS, ["p"] * 3)
    assert {"beneficial"} <= set(alp.pools_["p"]["JJ"])
    assert {"movie"} <= set(alp.pools_["p"]["NN"])
    assert "picture_show" not in alp.pools_["p"]["NN"]  # multi-word lemmas are skipped
    assert "actors" in alp.pools_["p"]["NNS"]


def test_head_preterminals(toy_trees):
    lex = lexicalize(toy_trees[0])  # (ROOT (S (NP the film) (VP is (ADJP good)) .))
    heads = {lex[p].label().word for p in head_preterminals(lex)}
    assert heads == {"film", "is", "good"}


@pytest.mark.parametrize("make", ["alp", "eda"])
def test_bad_input_gets_clear_errors(make, toy_grammar):
    def fresh():
        if make == "alp":
            return ALPAugmenter(toy_grammar, None)
        return EDAAugmenter(FakeWordNet())

    with pytest.raises(ValueError, match="mismatched lengths"):
        fresh().fit(POS, ["p", "p"])
    with pytest.raises(ValueError, match="no sentences"):
        fresh().fit([], [])
    with pytest.raises(ValueError, match="sentence 1 .* empty"):
        fresh().fit(["the film .", "  "], ["p", "p"])
    with pytest.raises(ValueError, match="class 'n' is empty"):
        fresh().fit(POS, ["p"] * 3, classes=["p", "n"])
    with pytest.raises(ValueError, match="class 'n' has only unknown words"):
        fresh().fit(POS + ["qzxv blorft", "zzkq"], ["p"] * 3 + ["n"] * 2)
    with pytest.raises(TypeError, match="sentence 0"):
        fresh().fit([3], ["p"])
    with pytest.raises(RuntimeError, match="not fitted"):
        fresh().augment(2)
    fitted = fresh().fit(POS + NEG, ["p"] * 3 + ["n"] * 3)
    for bad in (0, -1, {"p": 0}):
        with pytest.raises(ValueError, match="must be >= 1"):
            fitted.augment(bad)
    with pytest.raises(ValueError, match="not seen in fit"):
        fitted.augment({"x": 2})
    with pytest.raises(TypeError, match="must be an int"):
        fitted.augment(1.5)


def test_eda_operations_and_determinism():
    eda = EDAAugmenter(FakeWordNet(), alpha=0.2).fit(POS + NEG, ["p"] * 3 + ["n"] * 3)
    texts, labels = eda.augment(20, seed=0)
    assert texts == eda.augment(20, seed=0)[0]
    vocab = {c: {w for s in sents for w in tokenize(s)} | {"beneficial", "movie", "boring",
                                                           "feeble"}
             for c, sents in {"p": POS, "n": NEG}.items()}
    for text, label in zip(texts, labels, strict=True):
        assert text and set(text.split()) <= vocab[label]
    assert any("beneficial" in t or "movie" in t for t in texts)  # synonyms were used
    with pytest.raises(ValueError, match="alpha"):
        EDAAugmenter(FakeWordNet(), alpha=0)


def test_wordnet_synonyms_from_staged_wordnet(nltk_dir):
    syn = WordNetSynonyms(wordnet(str(nltk_dir)), max_senses=1)
    assert "movie" in syn("film", "n")
    assert syn.is_lemma("film", "n") and not syn.is_lemma("films", "n")


def test_alp_on_real_sentences_with_the_treebank_grammar(treebank_grammar, nltk_dir):
    texts = ["a stirring , funny and finally transporting film", "the acting is superb",
             "one of the best films of the year", "dull , lifeless and badly written",
             "the plot is a mess", "a boring movie with nothing to say"]
    labels = [1, 1, 1, 0, 0, 0]
    alp = ALPAugmenter(treebank_grammar, wordnet(str(nltk_dir)), generation="recombine").fit(
        texts, labels)
    trees, out_labels = alp.augment_trees(5, seed=0)
    assert out_labels == [0] * 5 + [1] * 5
    for tree in trees:
        assert treebank_grammar.pcfg.tree_logprob(tree) is not None
        assert treebank_grammar.parser.parse(tree.leaves()) is not None
