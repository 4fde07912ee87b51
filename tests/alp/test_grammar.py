from __future__ import annotations

import math
import time
from collections import defaultdict

import pytest
from nltk import Tree

from paperlab.alp.grammar import (
    PCFG,
    LexLabel,
    binarize,
    debinarize,
    head_child,
    lexicalize,
    normalize_tree,
    without_final_punct,
)
from paperlab.alp.parser import CKYParser, tokenize
from paperlab.alp.resources import MissingResourceError, corpus_zip, treebank_trees


def test_head_rules_pick_linguistic_heads():
    assert head_child("NP", ["DT", "JJ", "NN"]) == 2
    assert head_child("NP", ["NP", "POS"]) == 1
    assert head_child("NP-SBJ", ["NP", ",", "NP", ","]) == 0
    assert head_child("VP", ["MD", "VP"]) == 0
    assert head_child("VP", ["ADVP", "VBD", "NP"]) == 1
    assert head_child("S", ["NP", "VP", "."]) == 1
    assert head_child("PP", ["IN", "NP"]) == 0
    assert head_child("ADVP", ["RB", "RB"]) == 1  # right-to-left
    with pytest.raises(ValueError):
        head_child("NP", [])


def test_normalize_removes_traces_and_function_tags():
    raw = Tree.fromstring("(S (NP-SBJ-1 (-NONE- *)) (VP (VBD Ran) (NP-TMP (NN Today))) (. .))")
    t = normalize_tree(raw)
    assert t.label() == "ROOT"
    assert t.leaves() == ["ran", "today", "."]
    assert {st.label() for st in t.subtrees()} == {"ROOT", "S", "VP", "VBD", "NP", "NN", "."}


def test_lexicalize_percolates_heads(toy_trees):
    lex = lexicalize(toy_trees[3])  # i loved the actors .
    assert lex.label() == LexLabel("ROOT", "loved", "VBD")
    s = lex[0]
    assert s.label() == LexLabel("S", "loved", "VBD")
    assert s[1][1].label() == LexLabel("NP", "actors", "NNS")
    assert str(s.label()) == "S(loved/VBD)"


def test_binarize_round_trip(toy_trees):
    for t in toy_trees:
        b = binarize(t)
        assert all(len(st) <= 2 for st in b.subtrees())
        assert debinarize(b) == t


def test_pcfg_rule_probabilities_are_normalised(toy_trees):
    g = PCFG.from_trees(toy_trees)
    mass = defaultdict(float)
    for rules in list(g.binary.values()) + list(g.unary.values()):
        for lhs, lp in rules:
            mass[lhs] += math.exp(lp)
    assert mass and all(abs(m - 1) < 1e-9 for m in mass.values())
    assert g.lexicon["NN"]["film"] == 1
    assert g.tree_logprob(toy_trees[0]) is not None
    unseen = normalize_tree(Tree.fromstring("(S (VP (VBZ is)) (NP (DT the) (NN film)))"))
    assert g.tree_logprob(unseen) is None
    assert PCFG.from_json(g.to_json()) == g


def test_toy_parser_recovers_training_tree(toy_grammar, toy_trees):
    for t in toy_trees:
        parse = toy_grammar.parser.parse(t.leaves())
        assert parse is not None
        assert parse.tree == t
        assert parse.logprob == pytest.approx(toy_grammar.pcfg.tree_logprob(t))


def test_parser_rejects_bad_settings_and_empty_input(toy_grammar):
    with pytest.raises(ValueError, match="beam"):
        CKYParser(toy_grammar.pcfg, toy_grammar.tagger, beam=0)
    with pytest.raises(ValueError, match="empty"):
        toy_grammar.parser.parse("   ")


def test_tokenize():
    assert tokenize("The film wo n't WORK, really.") == [
        "the", "film", "wo", "n't", "work", ",", "really", "."]
    assert tokenize("What is `` bloodhound '' ... ?") == [
        "what", "is", "``", "bloodhound", "''", "...", "?"]


def test_missing_resource_names_it(tmp_path):
    with pytest.raises(MissingResourceError, match=r"'wordnet'.*wordnet\.zip"):
        corpus_zip(tmp_path, "wordnet")


def test_treebank_sentence_parses_with_its_yield(treebank_grammar, nltk_dir):
    held_out = treebank_trees(nltk_dir, ["wsj_0199.mrg"])  # not among the first 800
    for t in held_out:
        parse = treebank_grammar.parser.parse(t.leaves())
        assert parse is not None
        assert parse.tree.leaves() == t.leaves()
        assert parse.tree.label() == "ROOT"
        assert treebank_grammar.pcfg.tree_logprob(parse.tree) == pytest.approx(parse.logprob)


def test_twenty_word_sentence_parses_fast(treebank_grammar):
    sentence = ("the new film from the director of the last one is a funny , warm and "
                "smart story about brothers")
    assert len(tokenize(sentence)) == 20
    treebank_grammar.parser.parse("the cast is good but the script is not")  # warm-up
    start = time.perf_counter()
    parse = treebank_grammar.parser.parse(sentence)
    assert time.perf_counter() - start < 0.5
    assert parse is not None and parse.tree.leaves() == tokenize(sentence)


def test_without_final_punct():
    t = normalize_tree(Tree.fromstring("(S (NP (NN it)) (VP (VBZ works)) (. .) ('' ''))"))
    assert without_final_punct(t).leaves() == ["it", "works"]
    assert without_final_punct(t) != t and t.leaves()[-1] == "''"  # the input is untouched
    only = normalize_tree(Tree.fromstring("(S (. .))"))
    assert without_final_punct(only) is None


def test_unpunctuated_copies_let_sentences_end_without_a_period(toy_trees):
    from paperlab.alp.resources import build_grammar

    with_copies = build_grammar(toy_trees * 2, tagger_iters=2)
    without = build_grammar(toy_trees * 2, tagger_iters=2, unpunctuated=False)
    assert without.parser.parse("the film is good") is None
    assert with_copies.parser.parse("the film is good").tree.leaves() == ["the", "film", "is",
                                                                          "good"]
