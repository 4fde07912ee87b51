"""Bad input at ALP's public entry points (parser, tagger, augmenters, splits) and text ALP
cannot use: named errors, never Python's from deep inside; NumPy and 0-d tensor numbers
accepted like Python's; copies of training sentences and unparsed sentences counted and
reported; a long request shows its progress and an estimate.

Before: ``parse(None)`` and ``tokenize(None)`` raised ``'NoneType' object is not iterable`` /
``has no attribute 'lower'``; ``Tagger.tag(None)`` returned ``[]``; ``fit(None, ...)`` failed in
``list()``; ``ALPAugmenter(grammar, n_recombine=1.5)`` was accepted and failed in ``range`` at
the first ``augment``; ``threshold=nan`` silently kept only each class's best tree; German
sentences came back as verbatim training sentences without a word.
"""

from __future__ import annotations

import logging
import math
import pickle

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paperlab.alp import augment as augment_module
from paperlab.alp.augment import ALPAugmenter, Augmentation, EDAAugmenter
from paperlab.alp.parser import CKYParser, tokenize
from paperlab.alp.splits import augmentation_split, sample_per_class, standard_split
from tests.alp.test_augment import NEG, POS, FakeWordNet

FAST = settings(max_examples=15, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
LABELS = ["pos"] * 3 + ["neg"] * 3
NOT_TEXT = [None, 3, 2.5, b"the film is good .", ["the", "film"], {"a": 1}, torch.ones(2)]
NOT_TOKENS = [None, 3, b"bytes", ["the", None], ["the", 3], {"the", "film"}, (1, 2)]
FRACTIONS = st.floats(0.1, 20).filter(lambda v: not v.is_integer())
INT_KINDS = (int, np.int32, np.int64, np.array, torch.tensor)


def _alp(grammar, **kwargs) -> ALPAugmenter:
    return ALPAugmenter(grammar, None, threshold=-50.0, **{"generation": "recombine", **kwargs}
                        ).fit(POS + NEG, LABELS)


# --- the parser and the tagger ----------------------------------------------------------------


@FAST
@given(bad=st.sampled_from(NOT_TEXT))
def test_tokenize_takes_a_string_only(bad):
    with pytest.raises(TypeError, match="expected a sentence as a string, got"):
        tokenize(bad)


@FAST
@given(bad=st.sampled_from(NOT_TOKENS))
def test_parse_and_tag_take_a_string_or_string_tokens(toy_grammar, bad):
    with pytest.raises(TypeError, match="tokens must be a sequence|not a string"):
        toy_grammar.parser.parse(bad)
    with pytest.raises(TypeError, match="tokens must be a sequence|not a string"):
        toy_grammar.tagger.tag(bad)


def test_parser_settings_are_checked(toy_grammar):
    with pytest.raises(TypeError, match="grammar must be a PCFG"):
        CKYParser(None, toy_grammar.tagger)
    with pytest.raises(TypeError, match="tagger must be a Tagger"):
        CKYParser(toy_grammar.pcfg, "tagger")
    with pytest.raises(TypeError, match="beam must be an integer, got 2.5"):
        CKYParser(toy_grammar.pcfg, toy_grammar.tagger, beam=2.5)
    with pytest.raises(ValueError, match="margin must be a finite number"):
        CKYParser(toy_grammar.pcfg, toy_grammar.tagger, margin=math.nan)
    parser = CKYParser(toy_grammar.pcfg, toy_grammar.tagger, beam=np.int64(12),
                       margin=torch.tensor(9.0))
    assert parser.parse("the film is good .").tree == toy_grammar.parser.parse(
        "the film is good .").tree


# --- the augmenters ---------------------------------------------------------------------------


MAKERS = {"alp": lambda g: ALPAugmenter(g, None, threshold=-50.0, generation="recombine"),
          "eda": lambda g: EDAAugmenter(FakeWordNet())}


@FAST
@given(make=st.sampled_from(sorted(MAKERS)),
       bad=st.sampled_from([None, "the film is good .", 3, {"a"}]),
       which=st.sampled_from(["sentences", "labels"]))
def test_fit_needs_sequences(toy_grammar, make, bad, which):
    args = {"sentences": POS + NEG, "labels": LABELS, which: bad}
    with pytest.raises(TypeError, match=f"{which} must be a sequence"):
        MAKERS[make](toy_grammar).fit(args["sentences"], args["labels"])


@FAST
@given(make=st.sampled_from(sorted(MAKERS)), bad=st.sampled_from(NOT_TEXT),
       at=st.integers(0, 5))
def test_fit_needs_string_sentences(toy_grammar, make, bad, at):
    sentences = list(POS + NEG)
    sentences[at] = bad
    with pytest.raises(TypeError, match=f"sentence {at} is a .*, not a string"):
        MAKERS[make](toy_grammar).fit(sentences, LABELS)


@pytest.mark.parametrize("make", sorted(MAKERS))
def test_fit_needs_hashable_labels(toy_grammar, make):
    labels = list(LABELS)
    labels[2] = ["pos"]
    with pytest.raises(TypeError, match="label 2 is .*labels must be hashable"):
        MAKERS[make](toy_grammar).fit(POS + NEG, labels)


@FAST
@given(bad=FRACTIONS, name=st.sampled_from(["n_recombine", "max_senses"]))
def test_fractional_counts_are_refused_at_construction(toy_grammar, bad, name):
    with pytest.raises(TypeError, match=f"{name} must be an integer, got {bad}"):
        ALPAugmenter(toy_grammar, None, **{name: bad})


@FAST
@given(n=st.integers(0, 3), kind=st.sampled_from(INT_KINDS))
def test_counts_of_any_integer_kind(toy_grammar, n, kind):
    got = _alp(toy_grammar, n_recombine=kind(n))
    assert type(got.n_recombine) is int
    assert got.augment(kind(2), seed=kind(5)) == _alp(toy_grammar, n_recombine=n).augment(
        2, seed=5)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"n_recombine": -1}, ValueError, "n_recombine must be >= 0, got -1"),
    ({"n_recombine": True}, TypeError, "n_recombine must be an integer"),
    ({"p_slot": 1.5}, ValueError, r"p_slot must be in \[0, 1\], got 1.5"),
    ({"p_slot": math.nan}, ValueError, "p_slot must be a finite number"),
    ({"threshold": math.nan}, ValueError, "threshold must be a finite number"),
    ({"threshold": "-4"}, TypeError, "threshold must be a real number"),
    ({"max_senses": 0}, ValueError, "max_senses must be >= 1, got 0"),
    ({"wordnet": "wordnet"}, TypeError, "wordnet must be NLTK's WordNet reader"),
])
def test_alp_settings_are_checked_at_construction(toy_grammar, kwargs, error, match):
    kwargs = {"wordnet": None, **kwargs}
    with pytest.raises(error, match=match):
        ALPAugmenter(toy_grammar, **kwargs)


def test_alp_needs_a_grammar_and_eda_a_wordnet(toy_grammar):
    for bad in (None, toy_grammar.pcfg, "grammar"):
        with pytest.raises(TypeError, match="grammar must be a paperlab.alp.Grammar"):
            ALPAugmenter(bad)
    with pytest.raises(TypeError, match="wordnet must be NLTK's WordNet reader"):
        EDAAugmenter(None)
    with pytest.raises(ValueError, match=r"alpha must be in \(0, 1\]"):
        EDAAugmenter(FakeWordNet(), alpha=np.float32(1.5))
    assert EDAAugmenter(FakeWordNet(), alpha=torch.tensor(0.25)).alpha == 0.25


@FAST
@given(make=st.sampled_from(sorted(MAKERS)),
       bad=st.one_of(FRACTIONS, st.sampled_from([True, "3", None, 2.0])),
       where=st.sampled_from(["n", "mapping", "seed"]))
def test_augment_counts_and_seed_must_be_integers(toy_grammar, make, bad, where):
    fitted = MAKERS[make](toy_grammar).fit(POS + NEG, LABELS)
    call = {"n": lambda: fitted.augment(bad), "mapping": lambda: fitted.augment({"pos": bad}),
            "seed": lambda: fitted.augment(2, seed=bad)}[where]
    if bad is None and where == "n":  # no count: the augmenter's own (ALP's n_aug), unset here
        with pytest.raises(ValueError, match="augment.* needs n_per_class"):
            call()
        return
    with pytest.raises(TypeError, match="must be an integer"):
        call()


# --- copies, unparsed sentences, progress -----------------------------------------------------


def _copies(texts: list[str]) -> int:
    originals = {" ".join(tokenize(s)) for s in POS + NEG}
    return sum(t in originals for t in texts)


@FAST
@given(n=st.integers(1, 6), seed=st.integers(0, 50), recombine=st.integers(0, 2),
       p_slot=st.sampled_from([0.0, 0.3, 1.0]))
def test_copies_are_counted_exactly(toy_grammar, n, seed, recombine, p_slot):
    made = _alp(toy_grammar, n_recombine=recombine, p_slot=p_slot).augment(n, seed=seed)
    texts, labels = made
    assert made.copies == _copies(texts)
    assert made.copy_fraction == made.copies / len(texts)
    repeats = len(texts) - made.copies - len({t for t in texts if _copies([t]) == 0})
    assert made.repeats == repeats and made.fitted == 6 and made.unparsed == 0


def test_an_augmenter_that_can_only_copy_says_so(toy_grammar, caplog):
    """No recombination and no slot refilling: every sentence ALP can make is a training
    sentence (what the grammar leaves of text it covers poorly), so all are counted."""
    with caplog.at_level(logging.WARNING, logger="paperlab.alp.augment"):
        made = _alp(toy_grammar, n_recombine=0, p_slot=0.0).augment(4, seed=0)
    assert made.copies == 8 and made.copy_fraction == 1.0 and made.repeats == 0
    assert "8 of 8 augmentations are copies of training sentences" in caplog.text


def test_unparsed_sentences_are_counted(toy_grammar):
    bad = "the the the ."
    assert toy_grammar.parser.parse(bad) is None
    alp = ALPAugmenter(toy_grammar, None, threshold=-50.0, generation="recombine").fit(
        POS + NEG + [bad], LABELS + ["neg"])
    made = alp.augment(2, seed=0)
    assert alp.unparsed_ == made.unparsed == 1 and made.fitted == 7
    split = standard_split(POS + NEG + [bad, bad], LABELS + ["neg", "pos"], alp, n_aug=2)
    originals, augmented = split.train_texts[:-4], split.train_texts[-4:]
    assert split.augmented == 4 and split.unparsed == originals.count(bad)
    assert split.copies == _copies(augmented)


def test_german_sentences_report_their_copies(treebank_grammar):
    german = ["der film war wirklich sehr gut und spannend .", "die schauspieler sind toll .",
              "ich habe das buch gestern gelesen .", "das essen schmeckt schlecht .",
              "wir gehen morgen ins kino .", "er hat keine lust auf arbeit ."]
    made = ALPAugmenter(treebank_grammar).fit(german, ["a", "a", "a", "b", "b", "b"]).augment(
        5, seed=0)
    originals = {" ".join(tokenize(s)) for s in german}
    assert made.copies == sum(t in originals for t in made[0])
    assert made.unparsed == sum(treebank_grammar.parser.parse(s) is None for s in german)


def test_the_return_unpacks_indexes_and_pickles_as_the_pair(toy_grammar):
    made = _alp(toy_grammar).augment(3, seed=1)
    texts, labels = made
    assert made == (texts, labels) and made[0] is texts and len(made) == 2
    back = pickle.loads(pickle.dumps(made))
    assert isinstance(back, Augmentation) and back == made
    assert (back.copies, back.repeats, back.unparsed, back.fitted) == (
        made.copies, made.repeats, made.unparsed, made.fitted)


def test_a_long_request_shows_progress_and_an_estimate(toy_grammar, caplog, monkeypatch):
    bars = []

    def track(items, description, total=None):
        bars.append((description, total))
        yield from items

    monkeypatch.setattr(augment_module, "track", track)
    monkeypatch.setattr(augment_module, "PROGRESS_FROM", 100)
    monkeypatch.setattr(augment_module, "ESTIMATE_AFTER_S", 0.0)
    monkeypatch.setattr(augment_module, "LONG_WAIT_S", 0.0)
    with caplog.at_level(logging.WARNING, logger="paperlab.alp.augment"):
        EDAAugmenter(FakeWordNet()).fit(POS + NEG, LABELS).augment(50, seed=0)
    assert bars == [("EDAAugmenter: 100 augmentations", 100)]
    assert "EDAAugmenter: 100 augmentations: 1 of 100 made in" in caplog.text
    assert "left (" in caplog.text and "ms each" in caplog.text
    EDAAugmenter(FakeWordNet()).fit(POS + NEG, LABELS).augment(49, seed=0)
    assert len(bars) == 1  # 98 < PROGRESS_FROM: no bar


def test_a_short_request_is_quiet(toy_grammar, caplog):
    with caplog.at_level(logging.WARNING, logger="paperlab.alp.augment"):
        made = EDAAugmenter(FakeWordNet()).fit(POS + NEG, LABELS).augment(2, seed=0)
    assert made.copies == 0 and "left" not in caplog.text


# --- splits -----------------------------------------------------------------------------------


@FAST
@given(bad=st.sampled_from([None, "s0 s1", 3]), split=st.sampled_from(["standard", "aug"]))
def test_splits_need_sequences_of_texts(bad, split):
    fn = standard_split if split == "standard" else augmentation_split
    with pytest.raises(TypeError, match="texts must be a sequence"):
        fn(bad, ["a", "b"], EDAAugmenter(FakeWordNet()), n_aug=1)


@FAST
@given(bad=st.one_of(FRACTIONS, st.sampled_from([True, "2", None])),
       name=st.sampled_from(["n_aug", "seed"]))
def test_split_counts_must_be_integers(bad, name):
    kwargs = {"n_aug": 1, "seed": 0, name: bad}
    with pytest.raises(TypeError, match=f"{name} must be an integer"):
        standard_split(POS + NEG, LABELS, None, **kwargs)
    with pytest.raises(TypeError, match="k must be an integer"):
        sample_per_class(LABELS, bad, seed=0)


def test_split_texts_must_be_strings():
    with pytest.raises(TypeError, match="text 1 is None"):
        standard_split(["a", None, "c", "d"], ["x", "x", "y", "y"])


def test_arrays_of_strings_are_sequences_too(toy_grammar):
    texts = np.array(POS + NEG)
    fitted = _alp(toy_grammar)
    assert ALPAugmenter(toy_grammar, None, threshold=-50.0, generation="recombine").fit(
        texts, np.array(LABELS)).augment(2) == fitted.augment(2)
    assert standard_split(texts, np.array(LABELS), seed=1) == standard_split(
        POS + NEG, LABELS, seed=1)
