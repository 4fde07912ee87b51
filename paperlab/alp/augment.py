"""ALP augmentation (class-wise lexicalized PCFGs: the authors' phrase joining by default,
tree recombination and grammar sampling as options) and the EDA baseline, with one API.

``Augmenter(...).fit(sentences, labels).augment(n_per_class, seed)`` returns an
:class:`Augmentation`, the pair ``(texts, labels)`` (it unpacks as one) with counts of what the
augmenter could not do: ``n_per_class`` new sentences for every class (label order: the sorted
classes), each generated only from that class's sentences, so labels are preserved by
construction. The same seed gives the same augmentations. Sentences are tokenised with
:func:`paperlab.alp.parser.tokenize` and returned as space-joined lower-cased tokens.

When the augmenter cannot find enough new sentences (ALP on text its grammar covers poorly, such
as non-English sentences, or a class of one short sentence) it falls back on copies of training
sentences and repeats: :attr:`Augmentation.copies` counts them, a warning says so, and
:attr:`Augmentation.unparsed` says how many training sentences ALP could not parse. A large
request shows a progress bar on a terminal and, once the pace is known, one log line with the
time it will take.
"""

from __future__ import annotations

import functools
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple, TypeVar

import numpy as np
from nltk import Tree

from paperlab.alp.grammar import (
    PHRASE_STARTS,
    ROOT,
    LexicalizedPCFG,
    LexLabel,
    TooDeep,
    delexicalize,
    head_child,
    is_preterminal,
    lexicalize,
    tree_from_json,
    tree_to_json,
)
from paperlab.alp.parser import tokenize
from paperlab.alp.resources import Grammar
from paperlab.alp.tagger import as_list, check_tokens
from paperlab.core import checks
from paperlab.core.progress import track

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Requests of at least this many sentences show a progress bar (on a terminal) ...
PROGRESS_FROM = 1000
#: ... generation is timed for this long before the time the rest will take is estimated ...
ESTIMATE_AFTER_S = 2.0
#: ... and the estimate is logged (a warning: visible by default) when the rest takes longer.
LONG_WAIT_S = 30.0

#: Open-class Penn tags whose head positions become slots, and the WordNet POS of each tag
#: whose surface form is a lemma (so a WordNet synonym keeps the tag); inflected tags (NNS, VBD,
#: ...) are filled from the class's own words only.
SLOT_TAGS = frozenset({"NN", "NNS", "VB", "VBD", "VBG", "VBN", "VBP", "VBZ", "JJ", "JJR", "JJS",
                       "RB"})
LEMMA_TAG_POS = {"NN": "n", "VB": "v", "VBP": "v", "JJ": "a", "RB": "r"}

# Function words EDA never replaces (written for this project; EDA uses a list of this kind).
STOPWORDS = frozenset("""
a about above after again against all am an and any are as at be because been before being
below between both but by can could did do does doing down during each few for from further had
has have having he her here hers herself him himself his how i if in into is it its itself just
me more most my myself no nor not now of off on once only or other our ours ourselves out over
own same she should so some such than that the their theirs them themselves then there these
they this those through to too under until up very was we were what when where which while who
whom why will with would you your yours yourself yourselves 's n't 're 've 'll 'd 'm
""".split())


class Augmentation(tuple):
    """What ``augment`` returns: the pair ``(items, labels)`` (unpack it as before: ``texts,
    labels = augmenter.augment(n)``), with counts of what the augmenter could not do.

    Attributes:
        copies: augmentations whose tokens equal a sentence given to ``fit`` (any class): no
            new example, only a copy the augmenter fell back on.
        repeats: augmentations equal to an earlier augmentation of the same class.
        unparsed: sentences given to ``fit`` that the augmenter could not use (ALP: no parse
            under the grammar; EDA parses nothing, so 0).
        fitted: sentences given to ``fit``.
    """

    copies: int
    repeats: int
    unparsed: int
    fitted: int

    def __new__(cls, items: list[Any], labels: list[Hashable], *, copies: int, repeats: int,
                unparsed: int, fitted: int) -> Augmentation:
        self = super().__new__(cls, (items, labels))
        self.copies, self.repeats, self.unparsed, self.fitted = copies, repeats, unparsed, fitted
        return self

    def __getnewargs_ex__(self) -> tuple[tuple[Any, ...], dict[str, int]]:  # pickling
        return tuple(self), {"copies": self.copies, "repeats": self.repeats,
                             "unparsed": self.unparsed, "fitted": self.fitted}

    @property
    def copy_fraction(self) -> float:
        """``copies`` over the augmentations made (0 when none were asked for)."""
        return self.copies / len(self[0]) if self[0] else 0.0


class Augmented(NamedTuple):
    """One augmentation as :meth:`~EDAAugmenter.generate` yields it: its class, its text, and
    whether it is a copy of a training sentence or a repeat of an earlier augmentation of its
    class (see :class:`Augmentation`)."""

    label: Hashable
    text: str
    is_copy: bool
    is_repeat: bool


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _paced(items: Iterator[T], total: int, what: str) -> Iterator[T]:
    """``items`` (``total`` of them) with a progress bar on a terminal from
    :data:`PROGRESS_FROM` items and, after the first :data:`ESTIMATE_AFTER_S` seconds, one
    warning with the time the rest will take when that is over :data:`LONG_WAIT_S` (so a huge
    request is not minutes of silence)."""
    start, told = time.perf_counter(), False
    shown = track(items, what, total) if total >= PROGRESS_FROM else items
    for done, item in enumerate(shown, 1):
        yield item
        elapsed = time.perf_counter() - start
        if not told and elapsed >= ESTIMATE_AFTER_S:
            told = True
            left = elapsed / done * (total - done)
            if left > LONG_WAIT_S:
                log.warning("%s: %d of %d made in %s; about %s left (%.1f ms each)", what, done,
                            total, _duration(elapsed), _duration(left), 1e3 * elapsed / done)


class WordNetSynonyms:
    """Single-word WordNet synonyms (lower-cased, alphabetic, sorted), memoised.

    Args:
        wordnet: NLTK's WordNet reader (:func:`paperlab.alp.resources.wordnet`).
        max_senses: synsets consulted per word (most frequent first; ``None``: all).
    """

    def __init__(self, wordnet: Any, max_senses: int | None = None) -> None:
        self.wordnet, self.max_senses = wordnet, max_senses
        self._memo: dict[tuple[str, str | None], tuple[str, ...]] = {}

    def __call__(self, word: str, pos: str | None = None) -> tuple[str, ...]:
        key = (word, pos)
        if key not in self._memo:
            synsets = self.wordnet.synsets(word, pos)[: self.max_senses]
            names = {lemma.lower() for s in synsets for lemma in s.lemma_names()}
            self._memo[key] = tuple(sorted(n for n in names if n.isalpha() and n != word))
        return self._memo[key]

    def lemma_names(self, word: str, pos: str) -> tuple[str, ...]:
        """The names of every synset of ``word`` whose POS is exactly ``pos`` (``"a"`` leaves
        out satellite adjectives), as the authors' code cleans them: lower-cased, ``_`` and
        ``-`` read as spaces, other non-letters dropped; ``word`` itself when it is one of
        them; sorted. ``max_senses`` does not apply (the code reads every sense). Memoised
        for the process (augmenters made one after another share the look-ups)."""
        return _lemma_names(self.wordnet, word, pos)

    def is_lemma(self, word: str, pos: str) -> bool:
        """Whether ``word`` is its own WordNet base form for ``pos``."""
        return self.wordnet.morphy(word, pos) == word

    def known(self, word: str) -> bool:
        return bool(self.wordnet.synsets(word))


@functools.lru_cache(maxsize=500_000)
def _lemma_names(wordnet: Any, word: str, pos: str) -> tuple[str, ...]:
    names = set()
    for synset in wordnet.synsets(word):
        if synset.pos() != pos:
            continue
        for name in synset.lemma_names():
            name = name.lower().replace("_", " ").replace("-", " ")
            name = " ".join("".join(ch for ch in name if ch == " " or "a" <= ch <= "z").split())
            if name:
                names.add(name)
    return tuple(sorted(names))


class _Augmenter:
    """Input validation, the per-class sampling loop, de-duplication and the copy counts shared
    by ALP and EDA.

    Subclasses implement ``_prepare()``, ``_fit_classes()`` (both after ``sentences_`` is set),
    ``_known(token)`` and
    ``_generate(label, rng) -> list[str]`` (tokens of one new sentence of class ``label``).
    """

    #: attempts per requested sentence before duplicates are accepted
    max_tries = 10
    #: training sentences the augmenter could not use (set by ``fit``)
    unparsed_: int

    def fit(self, sentences: Sequence[str], labels: Sequence[Hashable],
            classes: Sequence[Hashable] | None = None) -> _Augmenter:
        """Learn from labelled sentences; returns ``self``.

        Args:
            sentences: raw or tokenised texts, one per example.
            labels: one hashable label per sentence.
            classes: the expected classes (optional); each must have at least one sentence.

        Raises:
            TypeError: sentences or labels that are not sequences (``None``, one string), a
                sentence that is not a string, an unhashable label.
            ValueError: mismatched lengths, no sentences, an empty sentence, an empty class,
                a class made only of unknown words, or (ALP) a class none of whose sentences
                parses.
        """
        sentences, labels = as_list(sentences, "sentences"), as_list(labels, "labels")
        if isinstance(classes, (str, bytes)):
            raise TypeError(f"classes must be a collection of labels, got {classes!r}")
        if len(sentences) != len(labels):
            raise ValueError(f"mismatched lengths: {len(sentences)} sentences and "
                             f"{len(labels)} labels")
        if not sentences:
            raise ValueError("no sentences to fit on")
        by_class: dict[Hashable, list[list[str]]] = defaultdict(list)
        for i, (text, label) in enumerate(zip(sentences, labels, strict=True)):
            if not isinstance(text, str):
                raise TypeError(f"sentence {i} is a {type(text).__name__}, not a string")
            if not isinstance(label, Hashable):
                raise TypeError(f"label {i} is {checks.describe(label)}: labels must be "
                                "hashable (a string, an int)")
            tokens = tokenize(text)
            if not tokens:
                raise ValueError(f"sentence {i} (label {label!r}) is empty")
            by_class[label].append(tokens)
        for c in classes or ():
            if c not in by_class:
                raise ValueError(f"class {c!r} is empty: no sentence has this label")
        self.classes_ = sorted(by_class, key=repr)
        self.sentences_ = {c: by_class[c] for c in self.classes_}
        self.unparsed_ = 0
        self._prepare()
        for c, sents in self.sentences_.items():
            if not any(self._known(t) for s in sents for t in s):
                raise ValueError(f"class {c!r} has only unknown words (none in the lexicon or "
                                 f"WordNet): {' '.join(sents[0])!r}, ...")
        self._fit_classes()
        return self

    def augment(self, n_per_class: int | Mapping[Hashable, int] | None = None, seed: int = 0
                ) -> Augmentation:
        """``n_per_class`` new sentences per class (an int, or a count for each fitted class;
        Python or NumPy integers, or 0-d tensors). ``None``: the augmenter's own count (an
        :class:`ALPAugmenter` made with ``n_aug``: ``n_aug - k`` for a class of ``k``
        sentences, as the authors' code does).

        Returns the :class:`Augmentation` ``(texts, labels)``; sentences differ from the
        originals and from each other unless ``max_tries * n`` attempts could not find enough
        new ones: then copies of training sentences and repeats appear, counted in the
        return's ``copies`` and ``repeats`` and logged as a warning.

        Raises:
            RuntimeError: not fitted.
            TypeError: a count or ``seed`` that is not an integer.
            ValueError: a count below 1, counts for classes not seen in ``fit``, a negative
                ``seed``; ``None`` without ``n_aug``, or an ``n_aug`` not above a class's ``k``.
        """
        made = self._sample(n_per_class, seed)
        return Augmentation([" ".join(self._tokens(t)) for t in made[0]], made[1],
                            copies=made.copies, repeats=made.repeats, unparsed=made.unparsed,
                            fitted=made.fitted)

    def generate(self, n_per_class: int | Mapping[Hashable, int] | None = None, seed: int = 0
                 ) -> Iterator[Augmented]:
        """:meth:`augment`'s sentences one at a time, as they are made (the same ones, in the
        same order), each an :class:`Augmented` that says whether it is a copy or a repeat: for
        writing them out while the rest are made. No progress bar or log line (the caller
        knows the total and shows its own). Raises as :meth:`augment` does, at the call."""
        _, items = self._start(n_per_class, seed)
        return (Augmented(c, " ".join(self._tokens(item)), is_copy, is_repeat)
                for c, item, is_copy, is_repeat in items)

    def _check_fitted(self) -> None:
        if not hasattr(self, "classes_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit() first")

    def _counts(self, n_per_class: int | Mapping[Hashable, int] | None
                ) -> dict[Hashable, int]:
        self._check_fitted()
        if n_per_class is None:
            return self._default_counts()
        if isinstance(n_per_class, Mapping):
            unknown = [c for c in n_per_class if c not in self.sentences_]
            if unknown:
                raise ValueError(f"counts for classes not seen in fit: {unknown}")
            return {c: checks.integer(n_per_class[c], f"count for class {c!r}", low=1)
                    if c in n_per_class else 0 for c in self.classes_}
        return dict.fromkeys(self.classes_, checks.integer(n_per_class, "n_per_class", low=1))

    def _default_counts(self) -> dict[Hashable, int]:
        """The counts ``augment(None)`` makes."""
        raise ValueError(f"{type(self).__name__}.augment needs n_per_class (how many new "
                         "sentences per class)")

    def _start(self, n_per_class: int | Mapping[Hashable, int] | None, seed: int
               ) -> tuple[int, Iterator[tuple[Hashable, Any, bool, bool]]]:
        """The number of sentences requested (checked now, as is ``seed``) and, lazily,
        ``(class, item, is a copy, is a repeat)`` for each."""
        counts = self._counts(n_per_class)
        rng = np.random.default_rng(checks.integer(seed, "seed", low=0))
        originals = {tuple(s) for sents in self.sentences_.values() for s in sents}
        items = ((c, item, key in originals, not new and key not in originals)
                 for c, item, key, new in self._new_items(counts, rng, originals))
        return sum(counts.values()), items

    def _sample(self, n_per_class: int | Mapping[Hashable, int] | None, seed: int
                ) -> Augmentation:
        total, items = self._start(n_per_class, seed)
        what = f"{type(self).__name__}: {total} augmentations"
        out: list[Any] = []
        labels: list[Hashable] = []
        copies = repeats = 0
        for c, item, is_copy, is_repeat in _paced(items, total, what):
            out.append(item)
            labels.append(c)
            copies += is_copy
            repeats += is_repeat
        fitted = sum(map(len, self.sentences_.values()))
        if copies or repeats:
            log.warning("%s: %d of %d augmentations are copies of training sentences and %d "
                        "repeat another augmentation (no new sentence within %d tries each); "
                        "%d of %d training sentences did not parse", type(self).__name__,
                        copies, total, repeats, self.max_tries, self.unparsed_, fitted)
        return Augmentation(out, labels, copies=copies, repeats=repeats,
                            unparsed=self.unparsed_, fitted=fitted)

    def _new_items(self, counts: dict[Hashable, int], rng: np.random.Generator,
                   originals: set[tuple[str, ...]]
                   ) -> Iterator[tuple[Hashable, Any, tuple[str, ...], bool]]:
        """``(class, item, its tokens, whether it is new)`` for every requested sentence: the
        first generated one that is neither a training sentence nor made before, or, after
        ``max_tries`` attempts per requested sentence of the class, whatever comes."""
        for c in self.classes_:
            if not counts[c]:
                continue
            seen = set(originals)
            made = tries = 0
            make = self._maker(c, rng)
            while made < counts[c]:
                item = make()
                tries += 1
                key = tuple(self._tokens(item))
                new = key not in seen
                if new or tries > self.max_tries * counts[c]:
                    seen.add(key)
                    made += 1
                    yield c, item, key, new

    def _tokens(self, item: Any) -> list[str]:
        return item

    def _prepare(self) -> None:
        """Set up what ``_known`` needs (called in ``fit`` before the unknown-word check)."""
        raise NotImplementedError

    def _fit_classes(self) -> None:
        raise NotImplementedError

    def _known(self, token: str) -> bool:
        raise NotImplementedError

    def _generate(self, label: Hashable, rng: np.random.Generator) -> Any:
        raise NotImplementedError

    def _maker(self, label: Hashable, rng: np.random.Generator) -> Callable[[], Any]:
        """What makes the new items of class ``label`` in one request: by default
        ``_generate`` each time (ALP's ``"pcfg"`` first draws the class's phrase pool)."""
        return lambda: self._generate(label, rng)


def _check_wordnet(wordnet: Any) -> None:
    if not callable(getattr(wordnet, "synsets", None)):
        raise TypeError("wordnet must be NLTK's WordNet reader (paperlab.alp.wordnet(...)), got "
                        f"{checks.describe(wordnet)}")


class EDAAugmenter(_Augmenter):
    """Easy Data Augmentation (Wei & Zou, EMNLP 2019), written to the paper.

    Each new sentence takes a random sentence of the class and applies one of the four EDA
    operations chosen uniformly: synonym replacement (``n = max(1, alpha * len)`` non-stop words
    replaced by a random WordNet synonym), random insertion (``n`` synonyms of random words
    inserted at random places), random swap (``n`` swaps) and random deletion (each word dropped
    with probability ``alpha``, at least one kept).

    Args:
        wordnet: NLTK's WordNet reader (synonyms for SR and RI).
        alpha: the paper's alpha for all four operations (default 0.1).
    """

    def __init__(self, wordnet: Any, alpha: float = 0.1) -> None:
        _check_wordnet(wordnet)
        self.wordnet = wordnet
        self.alpha = checks.real(alpha, "alpha", low=0, high=1, low_open=True)

    def _prepare(self) -> None:
        self.synonyms_ = WordNetSynonyms(self.wordnet)

    def _fit_classes(self) -> None:
        """EDA learns nothing beyond the sentences themselves."""

    def _known(self, token: str) -> bool:
        return token in STOPWORDS or self.synonyms_.known(token)

    def _generate(self, label: Hashable, rng: np.random.Generator) -> list[str]:
        pool = self.sentences_[label]
        words = list(pool[rng.integers(len(pool))])
        n = max(1, int(self.alpha * len(words)))
        op = int(rng.integers(4))
        if op == 0:  # synonym replacement
            spots = [i for i, w in enumerate(words) if w not in STOPWORDS and self.synonyms_(w)]
            for i in rng.permutation(spots)[:n]:
                syns = self.synonyms_(words[i])
                words[i] = syns[rng.integers(len(syns))]
        elif op == 1:  # random insertion
            candidates = [w for w in words if self.synonyms_(w)]
            for _ in range(n if candidates else 0):
                syns = self.synonyms_(candidates[rng.integers(len(candidates))])
                words.insert(int(rng.integers(len(words) + 1)), syns[rng.integers(len(syns))])
        elif op == 2:  # random swap
            for _ in range(n if len(words) > 1 else 0):
                i, j = rng.choice(len(words), size=2, replace=False)
                words[i], words[j] = words[j], words[i]
        else:  # random deletion
            kept = [w for w in words if rng.random() >= self.alpha]
            words = kept or [words[rng.integers(len(words))]]
        return words


def head_preterminals(tree: Tree) -> set[tuple[int, ...]]:
    """Tree positions of the preterminals that head some phrase of a lexicalised tree."""
    heads: set[tuple[int, ...]] = set()
    for pos in tree.treepositions():
        node = tree[pos]
        if not isinstance(node, Tree) or not isinstance(node[0], Tree):
            continue
        while isinstance(node[0], Tree):
            i = head_child(node.label().category, [k.label().category for k in node])
            node, pos = node[i], (*pos, i)
        heads.add(pos)
    return heads


def _phrase_index(trees: Sequence[Tree]) -> dict[tuple[str, str], list[tuple[int, Tree, tuple]]]:
    """The phrases of lexicalised trees (their top node excluded) by (category, head tag): for
    each, ``(index of its tree, the phrase, its words)``."""
    phrases: dict[tuple[str, str], list[tuple[int, Tree, tuple]]] = defaultdict(list)
    for t, tree in enumerate(trees):
        for node in tree.subtrees(lambda n: not is_preterminal(n) and n.label().category != ROOT):
            lab = node.label()
            phrases[(lab.category, lab.tag)].append((t, node, tuple(node.leaves())))
    return dict(phrases)


#: ALP's ways of making an augmentation (see :class:`ALPAugmenter`); the first is the default.
GENERATIONS = ("pcfg", "recombine", "sample")

#: The authors' code maps a Penn tag to a WordNet POS by its first letter (``JJ*``, ``VB*``,
#: ``NN*``, ``RB*`` and ``RP``); the words of other tags are never replaced.
CODE_TAG_POS = {"J": "a", "V": "v", "N": "n", "R": "r"}
#: A class whose first sentence is shorter than this (in characters) gets a second refill of
#: every phrase template (the authors' code tests ``len(text[0]) < 50``).
SHORT_FIRST_SENTENCE = 50


class PhrasePool(NamedTuple):
    """What ``generation="pcfg"`` draws from for one class (see :class:`ALPAugmenter`).

    Attributes:
        categories: the phrase categories used (S, SQ, SBAR, ADJP, ADVP and the categories
            an ``S`` of the class rewrites to alone; the whole-sentence categories when the
            class has none of those).
        originals: the words of every distinct phrase of those categories, cut at commas.
        templates: per category, the distinct POS-tag sequences of its phrases.
    """

    categories: tuple[str, ...]
    originals: tuple[tuple[str, ...], ...]
    templates: dict[str, tuple[tuple[str, ...], ...]]


class ALPAugmenter(_Augmenter):
    """ALP (Kim et al., AAAI 2022): new examples from class-wise lexicalized parse trees.

    ``fit`` parses every sentence with the treebank grammar's Viterbi parser and lexicalises
    the trees with the head rules (:func:`~paperlab.alp.grammar.lexicalize`); each class gets
    its own word pools (``pools_``) and phrases, learnt from that class's parses only. Three
    generations:

    ``generation="pcfg"`` (the default: what the authors' code does). Every parse of the
    class is kept. The class's phrases whose category is S, SQ, SBAR, ADJP or ADVP, or one an
    ``S`` of the class rewrites to alone (``S -> VP``), form a pool (:class:`PhrasePool`): the
    words of each distinct phrase, cut at commas, and per category each distinct POS-tag
    sequence refilled with words drawn from the class's lexicon of each tag (once per request
    and class; twice when the class's first sentence is under 50 characters). The lexicon of
    a ``J*``/``V*``/``N*``/``R*`` tag is replaced ``synonym_rounds`` times over by the WordNet
    lemma names of its words' synsets of that POS (all senses, multi-word names kept), each
    name drawn as often as the synonym paths reach it; other tags keep the class's words.
    An augmentation draws pieces of the pool uniformly (with replacement) and joins them
    with spaces until it has at least ``min_chars`` characters (the code's rule: twice its
    128-token sequence length). ``n_aug`` gives the code's count: ``augment()`` then makes
    ``n_aug - k`` new examples for a class of ``k`` sentences. The paper describes tree
    recombination (``"recombine"``); its code induces a PCFG per class but uses it only for
    the lexicon and the ``S`` rules, read here from the trees; this default follows the code.
    The code updates one word list in place four times (one widening step, then three more
    meant as separate lists), so its words are four synonym steps away:
    ``synonym_rounds=4``. It also writes the commas and full stops of refilled phrases as the
    words ``comma`` and ``dot``; we keep the punctuation.

    ``generation="recombine"``: keeps per class the trees whose log-probability per word is
    at least ``threshold`` (the best one when none is); indexes their phrases by (category,
    head POS) and builds a word pool per open-class tag (the class's words, expanded with
    ``max_senses`` WordNet senses' synonyms of the same POS). Each new sentence takes a kept
    tree of the class, replaces ``n_recombine`` random phrases by phrases of other kept trees
    of the class whose category and head tag match (never the top phrase, so its frame stays),
    then refills each head-word slot with probability ``p_slot`` from the class pool of that
    slot's tag. One sentence per augmentation.

    ``generation="sample"``: phrases sampled from the class's
    :class:`~paperlab.alp.grammar.LexicalizedPCFG` (``grammars_``; start categories S, SQ,
    SBAR, ADJP, ADVP and the whole-sentence ones, drawn by their count; each POS slot's word
    redrawn from the ``"recombine"`` pools with probability ``p_slot``), joined until
    ``min_chars`` long.

    Args:
        grammar: from :func:`paperlab.alp.resources.load_grammar`.
        wordnet: NLTK's WordNet reader, or ``None`` for pools without synonyms (then every
            word of an augmentation is a word of its class).
        threshold: ``"recombine"``: minimum log-probability per word of a kept tree (default
            -4.0 nats; about the 10th percentile of few-shot sentences of the four benchmarks).
        n_recombine: ``"recombine"``: phrase replacements per new sentence (default 1).
        p_slot: ``"recombine"``/``"sample"``: probability of refilling each head-word slot
            (default 0.3).
        max_senses: ``"recombine"``/``"sample"``: WordNet synsets consulted per word for
            synonyms (default 2: the most frequent senses, which limits sense drift).
        generation: ``"pcfg"`` (default), ``"recombine"`` or ``"sample"``.
        min_chars: ``"pcfg"``/``"sample"``: the shortest augmentation in characters (default
            256).
        synonym_rounds: ``"pcfg"``: times a content tag's lexicon is replaced by its WordNet
            synonyms (default 4, as the code runs; 0: the class's words only).
        n_aug: the authors' per-class total (originals plus new examples): ``augment()``
            without a count makes ``n_aug - k`` per class. Default ``None``: no default
            count. The code takes ``n_aug`` on its command line with no default value.

    Raises (at construction):
        TypeError: a grammar or WordNet of another type; a count that is not an integer (a
            fractional ``n_recombine``), a probability or threshold that is not a number.
        ValueError: ``n_recombine < 0``, ``p_slot`` outside ``[0, 1]``, ``max_senses < 1``,
            a NaN threshold, an unknown ``generation``, ``min_chars < 1``,
            ``synonym_rounds < 0``, ``n_aug < 2``.
    """

    def __init__(self, grammar: Grammar, wordnet: Any = None, threshold: float = -4.0,
                 n_recombine: int = 1, p_slot: float = 0.3, max_senses: int | None = 2,
                 generation: str = "pcfg", min_chars: int = 256, synonym_rounds: int = 4,
                 n_aug: int | None = None) -> None:
        if not isinstance(grammar, Grammar):
            raise TypeError("grammar must be a paperlab.alp.Grammar (from load_grammar), got "
                            f"{checks.describe(grammar)}")
        if wordnet is not None:
            _check_wordnet(wordnet)
        self.grammar: Grammar | None = grammar
        self.wordnet = wordnet
        self._configure(threshold, n_recombine, p_slot, max_senses, generation, min_chars,
                        synonym_rounds, n_aug)

    def _configure(self, threshold: float, n_recombine: int, p_slot: float,
                   max_senses: int | None, generation: str = "pcfg", min_chars: int = 256,
                   synonym_rounds: int = 4, n_aug: int | None = None) -> None:
        if generation not in GENERATIONS:
            raise ValueError(f"generation must be one of {GENERATIONS}, got {generation!r}")
        self.generation = generation
        self.min_chars = checks.integer(min_chars, "min_chars", low=1)
        self.synonym_rounds = checks.integer(synonym_rounds, "synonym_rounds", low=0)
        self.n_aug = None if n_aug is None else checks.integer(n_aug, "n_aug", low=2)
        self.threshold = checks.real(threshold, "threshold")
        self.n_recombine = checks.integer(n_recombine, "n_recombine", low=0)
        self.p_slot = checks.real(p_slot, "p_slot", low=0, high=1)
        self.max_senses = None if max_senses is None else checks.integer(
            max_senses, "max_senses", low=1)

    def _default_counts(self) -> dict[Hashable, int]:
        """``n_aug - k`` for each class of ``k`` fitted sentences (the authors' count)."""
        if self.n_aug is None:
            raise ValueError("augment() needs n_per_class, or an ALPAugmenter made with n_aug "
                             "(then each class gets n_aug - k new examples)")
        counts = {c: self.n_aug - len(self.sentences_[c]) for c in self.classes_}
        for c, n in counts.items():
            if n < 1:
                raise ValueError(f"n_aug={self.n_aug} leaves no new example for class {c!r}, "
                                 f"which has k={len(self.sentences_[c])} sentences: n_aug must "
                                 "be above every class's k")
        return counts

    def to_json(self) -> dict[str, Any]:
        """The fitted augmenter as plain JSON data: its settings, the unparsed count, and per
        class the training sentences (tokens), the kept trees (see
        :func:`~paperlab.alp.grammar.tree_to_json`) with their log-probabilities, and the word
        pools (with ``"pcfg"``, each word's weight). :meth:`from_json` turns it back into an
        augmenter that makes the same sentences, without the treebank grammar or WordNet.

        Raises:
            RuntimeError: not fitted.
            TypeError: a label that is not a string or an integer (JSON keeps no other kind).
        """
        self._check_fitted()
        for c in self.classes_:
            if isinstance(c, bool) or not isinstance(c, (str, int)):
                raise TypeError(f"label {c!r} cannot be saved: labels must be strings or "
                                "integers")
        return {"settings": {"threshold": self.threshold, "n_recombine": self.n_recombine,
                             "p_slot": self.p_slot, "max_senses": self.max_senses,
                             "generation": self.generation, "min_chars": self.min_chars,
                             "synonym_rounds": self.synonym_rounds, "n_aug": self.n_aug},
                "unparsed": self.unparsed_,
                "classes": [{"label": c, "sentences": self.sentences_[c],
                             "trees": [tree_to_json(delexicalize(t)) for t in self.trees_[c]],
                             "logprobs": self.tree_logprobs_[c],
                             "pools": {t: list(ws) for t, ws in self.pools_[c].items()},
                             **({"pool_weights": {t: list(ns) for t, ns in
                                                  self.pool_weights_[c].items()}}
                                if self.generation == "pcfg" else {})}
                            for c in self.classes_]}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], *, n_recombine: int | None = None,
                  p_slot: float | None = None) -> ALPAugmenter:
        """The augmenter that :meth:`to_json` saved, fitted, with ``n_recombine`` and
        ``p_slot`` replaced when given. It augments; it cannot ``fit`` again (it holds no
        treebank grammar).

        Raises:
            ValueError: data that is not :meth:`to_json`'s (a missing key, a value of the wrong
                kind, a class without sentences or trees, a malformed tree), naming what.
        """
        self = cls.__new__(cls)
        self.grammar = self.wordnet = None
        try:
            settings = {**obj["settings"]}
            settings.update({k: v for k, v in (("n_recombine", n_recombine),
                                               ("p_slot", p_slot)) if v is not None})
            self._configure(**settings)
            self.unparsed_ = checks.integer(obj["unparsed"], "unparsed", low=0)
            self.sentences_, self.trees_, self.tree_logprobs_ = {}, {}, {}
            self.phrases_, self.pools_, self.grammars_ = {}, {}, {}
            self.pool_weights_, self.phrase_pools_, self._cumulative = {}, {}, {}
            for entry in obj["classes"]:
                c = entry["label"]
                if isinstance(c, bool) or not isinstance(c, (str, int)) or c in self.trees_:
                    raise ValueError(f"label {c!r} is repeated or not a string or an integer")
                self.sentences_[c] = [check_tokens(s) for s in entry["sentences"]]
                self.trees_[c] = [lexicalize(tree_from_json(t)) for t in entry["trees"]]
                self.tree_logprobs_[c] = [checks.real(x, "log-probability")
                                          for x in entry["logprobs"]]
                if not self.sentences_[c] or not self.trees_[c] or \
                        len(self.tree_logprobs_[c]) != len(self.trees_[c]):
                    raise ValueError(f"class {c!r} needs sentences, trees and one "
                                     "log-probability per tree")
                self.pools_[c] = {str(t): tuple(check_tokens(ws))
                                  for t, ws in entry["pools"].items()}
                if self.generation == "pcfg":
                    self.pool_weights_[c] = {
                        t: tuple(checks.integer(n, "pool weight", low=1) for n in ns)
                        for t, ns in entry["pool_weights"].items()}
                    if any(len(self.pool_weights_[c].get(t, ())) != len(ws)
                           for t, ws in self.pools_[c].items()):
                        raise ValueError(f"class {c!r} needs one pool weight per pool word")
                self._index(c)
        except KeyError as err:
            raise ValueError(f"no {err} in the saved augmenter") from None
        except (TypeError, AttributeError) as err:
            raise ValueError(f"malformed saved augmenter: {err}") from None
        if not self.trees_:
            raise ValueError("the saved augmenter has no classes")
        self.classes_ = sorted(self.trees_, key=repr)
        return self

    def _prepare(self) -> None:
        if self.grammar is None:
            raise RuntimeError("this ALPAugmenter was loaded with from_json: it augments, but "
                               "fitting needs a treebank grammar (make a new ALPAugmenter)")
        self._lexicon_words = {w for ws in self.grammar.pcfg.lexicon.values() for w in ws}
        self._synonyms = (WordNetSynonyms(self.wordnet, self.max_senses)
                          if self.wordnet is not None else None)

    def _known(self, token: str) -> bool:
        if token in self._lexicon_words:
            return True
        return self._synonyms is not None and self._synonyms.known(token)

    def _fit_classes(self) -> None:
        self.trees_: dict[Hashable, list[Tree]] = {}
        self.tree_logprobs_: dict[Hashable, list[float]] = {}
        self.phrases_: dict[Hashable, dict[tuple[str, str], list[tuple[int, Tree, tuple]]]] = {}
        self.pools_: dict[Hashable, dict[str, tuple[str, ...]]] = {}
        self.pool_weights_: dict[Hashable, dict[str, tuple[int, ...]]] = {}
        self.phrase_pools_: dict[Hashable, PhrasePool] = {}
        self._cumulative: dict[Hashable, dict[str, np.ndarray]] = {}
        self.grammars_: dict[Hashable, LexicalizedPCFG] = {}
        for c, sents in self.sentences_.items():
            parses = [p for p in map(self.grammar.parser.parse, sents) if p is not None]
            self.unparsed_ += len(sents) - len(parses)
            if len(parses) < len(sents):
                log.info("class %r: %d of %d sentences did not parse and are not used",
                         c, len(sents) - len(parses), len(sents))
            if not parses:
                raise ValueError(f"class {c!r}: none of its {len(sents)} sentences parses "
                                 "under the grammar, so ALP has nothing to learn from")
            kept = [p for p in parses if self.generation != "recombine" or
                    p.logprob_per_word >= self.threshold]
            if not kept:
                best = max(parses, key=lambda p: p.logprob_per_word)
                log.info("class %r: no tree above %.2f nats/word; keeping the best (%.2f)",
                         c, self.threshold, best.logprob_per_word)
                kept = [best]
            self.trees_[c] = [lexicalize(p.tree) for p in kept]
            self.tree_logprobs_[c] = [p.logprob for p in kept]
            if self.generation == "pcfg":
                self._code_pools(c)
            else:
                self._slot_pools(c)
            self._index(c)

    def _slot_pools(self, c: Hashable) -> None:
        """``"recombine"``/``"sample"`` pools: the class's words of each open-class tag, plus
        the same-POS synonyms of those that are lemmas."""
        synonyms = self._synonyms
        pool: dict[str, set[str]] = defaultdict(set)
        for tree in self.trees_[c]:
            for node in tree.subtrees(is_preterminal):
                if node.label().tag in SLOT_TAGS:
                    pool[node.label().tag].add(node.label().word)
        for tag, words in pool.items():
            pos = LEMMA_TAG_POS.get(tag)
            if synonyms is None or pos is None:
                continue
            for w in list(words):
                if synonyms.is_lemma(w, pos):
                    words.update(synonyms(w, pos))
        self.pools_[c] = {t: tuple(sorted(ws)) for t, ws in pool.items()}

    def _code_pools(self, c: Hashable) -> None:
        """``"pcfg"`` pools, as the authors' code builds them: the class's words of every tag;
        a content tag's words replaced ``synonym_rounds`` times by their WordNet lemma names,
        each weighted by the number of synonym paths that reach it. Tags left without a word
        (no synset of that POS) are dropped, as the code skips them."""
        lexicon: dict[str, Counter] = defaultdict(Counter)
        for tree in self.trees_[c]:
            for node in tree.subtrees(is_preterminal):
                lexicon[node.label().tag][node.label().word] = 1
        for tag, words in lexicon.items():
            pos = CODE_TAG_POS.get(tag[:1])
            if self._synonyms is None or pos is None:
                continue
            for _ in range(self.synonym_rounds):
                grown: Counter = Counter()
                for w, n in words.items():
                    for name in self._synonyms.lemma_names(w, pos):
                        grown[name] += n
                words = grown
            lexicon[tag] = words
        self.pools_[c], self.pool_weights_[c] = {}, {}
        for tag, words in lexicon.items():
            if words:
                ordered = sorted(words)
                self.pools_[c][tag] = tuple(ordered)
                self.pool_weights_[c][tag] = tuple(words[w] for w in ordered)

    def _index(self, c: Hashable) -> None:
        """What generation reads, from the kept trees and pools of class ``c``."""
        if self.generation == "recombine":
            self.phrases_[c] = _phrase_index(self.trees_[c])
            return
        if self.generation == "sample":
            self.grammars_[c] = LexicalizedPCFG.from_trees(self.trees_[c], self.pools_[c])
            return
        alone = {node[0].label().category for tree in self.trees_[c] for node in tree.subtrees(
            lambda n: n.label().category == "S" and len(n) == 1 and not is_preterminal(n))}
        self.phrase_pools_[c] = _phrase_pool(self.trees_[c], PHRASE_STARTS | alone)
        self._cumulative[c] = {t: np.cumsum(ns) for t, ns in self.pool_weights_[c].items()}

    def augment_trees(self, n_per_class: int | Mapping[Hashable, int], seed: int = 0
                      ) -> Augmentation:
        """Like :meth:`augment`, but the plain (de-lexicalised) trees of the new sentences
        (``generation="recombine"`` only: the others join several phrases).

        Raises:
            ValueError: ``generation`` other than ``"recombine"``.
        """
        if self.generation != "recombine":
            raise ValueError(f"augment_trees needs generation='recombine': a "
                             f"{self.generation!r} augmentation is several phrases joined, "
                             "not one tree")
        return self._sample(n_per_class, seed)

    def _tokens(self, item: Tree | list[str]) -> list[str]:
        return item.leaves() if isinstance(item, Tree) else item

    #: ``"sample"``: phrases drawn per augmentation before one that went too deep is replaced
    #: by a phrase of the class's own trees
    max_deep = 20

    def _maker(self, label: Hashable, rng: np.random.Generator) -> Callable[[], Any]:
        if self.generation != "pcfg":
            return super()._maker(label, rng)
        pieces = self._pieces(label, rng)
        return lambda: self._join(lambda: pieces[rng.integers(len(pieces))])

    def _generate(self, label: Hashable, rng: np.random.Generator) -> Tree | list[str]:
        if self.generation == "sample":
            return self._sampled(label, rng)
        return self._recombined(label, rng)

    def _join(self, draw: Callable[[], Sequence[str]]) -> list[str]:
        """Phrases from ``draw()`` joined until their text (words joined by spaces) is at
        least ``min_chars`` characters long."""
        tokens: list[str] = []
        chars = -1
        while chars < self.min_chars:
            phrase = draw()
            tokens += phrase
            chars += sum(len(w) + 1 for w in phrase)
        return tokens

    def _pieces(self, label: Hashable, rng: np.random.Generator) -> list[tuple[str, ...]]:
        """The class's pool for one request (``"pcfg"``): its phrases as they are, and every
        POS-tag template of a category refilled from the class's lexicon (the refills of one
        category without repeats; twice over for a class whose first sentence is short)."""
        pool, cumulative = self.phrase_pools_[label], self._cumulative[label]
        words = self.pools_[label]
        pieces = list(pool.originals)
        first = " ".join(self.sentences_[label][0])
        for _ in range(2 if len(first) < SHORT_FIRST_SENTENCE else 1):
            for category in pool.categories:
                refills: dict[tuple[str, ...], None] = {}
                for tags in pool.templates.get(category, ()):
                    phrase = tuple(
                        words[t][int(np.searchsorted(cumulative[t], rng.random() *
                                                     cumulative[t][-1], side="right"))]
                        for t in tags if t in cumulative)
                    if phrase:
                        refills[phrase] = None
                pieces += refills
        return pieces or [tuple(s) for s in self.sentences_[label]]

    def _sampled(self, label: Hashable, rng: np.random.Generator) -> list[str]:
        """``"sample"``: phrases sampled from the class's grammar, joined."""
        grammar, deep = self.grammars_[label], 0

        def draw() -> list[str]:
            nonlocal deep
            while True:
                try:
                    return grammar.sample(rng, p_word=self.p_slot).leaves()
                except TooDeep:
                    deep += 1
                    if deep >= self.max_deep:
                        deep = 0
                        trees = self.trees_[label]
                        return trees[rng.integers(len(trees))].leaves()

        return self._join(draw)

    def _recombined(self, label: Hashable, rng: np.random.Generator) -> Tree:
        trees, phrases = self.trees_[label], self.phrases_[label]
        base = int(rng.integers(len(trees)))
        tree = trees[base].copy(deep=True)
        for _ in range(self.n_recombine):
            spots = []
            for pos in tree.treepositions():
                node = tree[pos]
                if len(pos) > 1 and isinstance(node, Tree) and isinstance(node[0], Tree):
                    lab = node.label()
                    words = tuple(node.leaves())
                    options = [p for t, p, leaves in phrases.get((lab.category, lab.tag), ())
                               if t != base and leaves != words]
                    if options:
                        spots.append((pos, options))
            if not spots:
                break
            pos, options = spots[rng.integers(len(spots))]
            tree[pos] = options[rng.integers(len(options))].copy(deep=True)
        tree = lexicalize(delexicalize(tree))
        pool = self.pools_[label]
        for pos in sorted(head_preterminals(tree)):
            lab = tree[pos].label()
            words = pool.get(lab.tag)
            if words and rng.random() < self.p_slot:
                word = words[rng.integers(len(words))]
                tree[pos] = Tree(LexLabel(lab.category, word, lab.tag), [word])
        return delexicalize(tree)


def _split_at_commas(words: Sequence[str]) -> list[tuple[str, ...]]:
    """``words`` cut at each ``,`` (the commas dropped, empty pieces too)."""
    pieces: list[tuple[str, ...]] = [()]
    for w in words:
        if w == ",":
            pieces.append(())
        else:
            pieces[-1] += (w,)
    return [p for p in pieces if p]


def _phrase_pool(trees: Sequence[Tree], categories: frozenset[str] | set[str]) -> PhrasePool:
    """The :class:`PhrasePool` of one class's lexicalised trees: its phrases of
    ``categories`` (the whole-sentence phrases when there are none), distinct by category and
    structure, with their words cut at commas and their distinct POS-tag sequences."""
    found = [delexicalize(n) for tree in trees for n in tree.subtrees(
        lambda n: not is_preterminal(n) and n.label().category in categories)]
    if not found:
        found = [delexicalize(k) for tree in trees
                 for k in (tree if tree.label().category == ROOT else [tree])
                 if isinstance(k, Tree) and not is_preterminal(k)]
        log.info("no phrase of %s; the whole sentences (%s) stand in", sorted(categories),
                 sorted({k.label() for k in found}))
    structures: dict[tuple[str, str], tuple[str, ...]] = {}
    templates: dict[str, dict[tuple[str, ...], None]] = defaultdict(dict)
    for node in found:
        structures.setdefault((node.label(), str(node)), tuple(node.leaves()))
        templates[node.label()][tuple(tag for _, tag in node.pos())] = None
    originals = tuple(p for words in structures.values() for p in _split_at_commas(words))
    return PhrasePool(tuple(templates), originals,
                      {c: tuple(ts) for c, ts in templates.items()})
