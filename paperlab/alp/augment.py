"""ALP augmentation (lexicalized-PCFG recombination) and the EDA baseline, with one API.

``Augmenter(...).fit(sentences, labels).augment(n_per_class, seed)`` returns ``(texts, labels)``:
``n_per_class`` new sentences for every class (label order: the sorted classes), each generated
only from that class's sentences, so labels are preserved by construction. The same seed gives
the same augmentations. Sentences are tokenised with :func:`paperlab.alp.parser.tokenize` and
returned as space-joined lower-cased tokens.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
from nltk import Tree

from paperlab.alp.grammar import ROOT, LexLabel, delexicalize, head_child, lexicalize
from paperlab.alp.parser import tokenize
from paperlab.alp.resources import Grammar

log = logging.getLogger(__name__)

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

    def is_lemma(self, word: str, pos: str) -> bool:
        """Whether ``word`` is its own WordNet base form for ``pos``."""
        return self.wordnet.morphy(word, pos) == word

    def known(self, word: str) -> bool:
        return bool(self.wordnet.synsets(word))


class _Augmenter:
    """Input validation, the per-class sampling loop and de-duplication shared by ALP and EDA.

    Subclasses implement ``_prepare()``, ``_fit_classes()`` (both after ``sentences_`` is set),
    ``_known(token)`` and
    ``_generate(label, rng) -> list[str]`` (tokens of one new sentence of class ``label``).
    """

    #: attempts per requested sentence before duplicates are accepted
    max_tries = 10

    def fit(self, sentences: Sequence[str], labels: Sequence[Hashable],
            classes: Sequence[Hashable] | None = None) -> _Augmenter:
        """Learn from labelled sentences; returns ``self``.

        Args:
            sentences: raw or tokenised texts, one per example.
            labels: one hashable label per sentence.
            classes: the expected classes (optional); each must have at least one sentence.

        Raises:
            TypeError: a sentence that is not a string.
            ValueError: mismatched lengths, no sentences, an empty sentence, an empty class,
                or a class made only of unknown words.
        """
        if isinstance(sentences, str) or isinstance(labels, str):
            raise TypeError("sentences and labels must be sequences, not a single string")
        sentences, labels = list(sentences), list(labels)
        if len(sentences) != len(labels):
            raise ValueError(f"mismatched lengths: {len(sentences)} sentences and "
                             f"{len(labels)} labels")
        if not sentences:
            raise ValueError("no sentences to fit on")
        by_class: dict[Hashable, list[list[str]]] = defaultdict(list)
        for i, (text, label) in enumerate(zip(sentences, labels, strict=True)):
            if not isinstance(text, str):
                raise TypeError(f"sentence {i} is a {type(text).__name__}, not a string")
            tokens = tokenize(text)
            if not tokens:
                raise ValueError(f"sentence {i} (label {label!r}) is empty")
            by_class[label].append(tokens)
        for c in classes or ():
            if c not in by_class:
                raise ValueError(f"class {c!r} is empty: no sentence has this label")
        self.classes_ = sorted(by_class, key=repr)
        self.sentences_ = {c: by_class[c] for c in self.classes_}
        self._prepare()
        for c, sents in self.sentences_.items():
            if not any(self._known(t) for s in sents for t in s):
                raise ValueError(f"class {c!r} has only unknown words (none in the lexicon or "
                                 f"WordNet): {' '.join(sents[0])!r}, ...")
        self._fit_classes()
        return self

    def augment(self, n_per_class: int | Mapping[Hashable, int], seed: int = 0
                ) -> tuple[list[str], list[Hashable]]:
        """``n_per_class`` new sentences per class (an int, or a count for each fitted class).

        Returns ``(texts, labels)``; sentences differ from the originals and from each other
        unless ``max_tries * n`` attempts could not find enough new ones (then repeats appear).
        """
        items, labels = self._sample(n_per_class, seed)
        return [" ".join(self._tokens(t)) for t in items], labels

    def _counts(self, n_per_class: int | Mapping[Hashable, int]) -> dict[Hashable, int]:
        if not hasattr(self, "classes_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit() first")
        if isinstance(n_per_class, Mapping):
            unknown = [c for c in n_per_class if c not in self.sentences_]
            if unknown:
                raise ValueError(f"counts for classes not seen in fit: {unknown}")
            counts = {c: n_per_class.get(c, 0) for c in self.classes_}
        else:
            counts = {c: n_per_class for c in self.classes_}
        for c, n in counts.items():
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
                raise TypeError(f"count for class {c!r} must be an int, got {n!r}")
            if n <= 0 and (not isinstance(n_per_class, Mapping) or c in n_per_class):
                raise ValueError(f"count for class {c!r} must be positive, got {n}")
        return counts

    def _sample(self, n_per_class: int | Mapping[Hashable, int], seed: int
                ) -> tuple[list[Any], list[Hashable]]:
        counts = self._counts(n_per_class)
        rng = np.random.default_rng(seed)
        out: list[Any] = []
        labels: list[Hashable] = []
        for c in self.classes_:
            seen = {tuple(s) for s in self.sentences_[c]}
            made: list[Any] = []
            tries = 0
            while len(made) < counts[c]:
                item = self._generate(c, rng)
                tries += 1
                key = tuple(self._tokens(item))
                if key not in seen or tries > self.max_tries * counts[c]:
                    seen.add(key)
                    made.append(item)
            out += made
            labels += [c] * len(made)
        return out, labels

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
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        self.wordnet, self.alpha = wordnet, alpha

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


class ALPAugmenter(_Augmenter):
    """ALP (Kim et al., AAAI 2022): recombined lexicalized parse trees with class-wise slots.

    ``fit`` parses every sentence with the treebank grammar's Viterbi parser, lexicalises the
    trees with the head rules and keeps, per class, those whose log-probability per word is at
    least ``threshold`` (the best one when none is); it indexes their phrases by (category,
    head POS) and builds a word pool per class and open-class tag (the class's words, expanded
    with WordNet synonyms of the same POS). Each new sentence takes a kept tree of the class,
    replaces ``n_recombine`` random phrases by phrases of other kept trees of the class whose
    category and head tag match (never the sentence's top phrase, so its frame stays), then
    refills each head-word slot with probability ``p_slot``
    from the class pool of that slot's tag.

    Args:
        grammar: from :func:`paperlab.alp.resources.load_grammar`.
        wordnet: NLTK's WordNet reader, or ``None`` for pools without synonyms.
        threshold: minimum log-probability per word of a kept tree (default -4.0 nats; about
            the 10th percentile of few-shot sentences of the four benchmarks).
        n_recombine: phrase replacements per new sentence (default 1).
        p_slot: probability of refilling each head-word slot (default 0.3).
        max_senses: WordNet synsets consulted per word for synonyms (default 2: the most
            frequent senses, which limits sense drift).
    """

    def __init__(self, grammar: Grammar, wordnet: Any = None, threshold: float = -4.0,
                 n_recombine: int = 1, p_slot: float = 0.3, max_senses: int | None = 2
                 ) -> None:
        if n_recombine < 0:
            raise ValueError(f"n_recombine must be >= 0, got {n_recombine}")
        if not 0 <= p_slot <= 1:
            raise ValueError(f"p_slot must be in [0, 1], got {p_slot}")
        self.grammar, self.wordnet, self.threshold = grammar, wordnet, threshold
        self.n_recombine, self.p_slot, self.max_senses = n_recombine, p_slot, max_senses

    def _prepare(self) -> None:
        self._lexicon_words = {w for ws in self.grammar.pcfg.lexicon.values() for w in ws}
        self._synonyms = (WordNetSynonyms(self.wordnet, self.max_senses)
                          if self.wordnet is not None else None)

    def _known(self, token: str) -> bool:
        if token in self._lexicon_words:
            return True
        return self._synonyms is not None and self._synonyms.known(token)

    def _fit_classes(self) -> None:
        synonyms = self._synonyms
        self.trees_: dict[Hashable, list[Tree]] = {}
        self.tree_logprobs_: dict[Hashable, list[float]] = {}
        self.phrases_: dict[Hashable, dict[tuple[str, str], list[tuple[int, Tree, tuple]]]] = {}
        self.pools_: dict[Hashable, dict[str, tuple[str, ...]]] = {}
        for c, sents in self.sentences_.items():
            parses = [p for p in map(self.grammar.parser.parse, sents) if p is not None]
            if len(parses) < len(sents):
                log.info("class %r: %d of %d sentences did not parse and are not used",
                         c, len(sents) - len(parses), len(sents))
            if not parses:
                raise ValueError(f"class {c!r}: no sentence parses under the grammar")
            kept = [p for p in parses if p.logprob_per_word >= self.threshold]
            if not kept:
                best = max(parses, key=lambda p: p.logprob_per_word)
                log.info("class %r: no tree above %.2f nats/word; keeping the best (%.2f)",
                         c, self.threshold, best.logprob_per_word)
                kept = [best]
            self.trees_[c] = [lexicalize(p.tree) for p in kept]
            self.tree_logprobs_[c] = [p.logprob for p in kept]
            phrases: dict[tuple[str, str], list[tuple[int, Tree, tuple]]] = defaultdict(list)
            pool: dict[str, set[str]] = defaultdict(set)
            for t, tree in enumerate(self.trees_[c]):
                for node in tree.subtrees():
                    lab = node.label()
                    if isinstance(node[0], Tree) and lab.category != ROOT:
                        phrases[(lab.category, lab.tag)].append((t, node, tuple(node.leaves())))
                    elif not isinstance(node[0], Tree) and lab.tag in SLOT_TAGS:
                        pool[lab.tag].add(lab.word)
            for tag, words in pool.items():
                pos = LEMMA_TAG_POS.get(tag)
                if synonyms is None or pos is None:
                    continue
                for w in list(words):
                    if synonyms.is_lemma(w, pos):
                        words.update(synonyms(w, pos))
            self.phrases_[c] = dict(phrases)
            self.pools_[c] = {t: tuple(sorted(ws)) for t, ws in pool.items()}

    def augment_trees(self, n_per_class: int | Mapping[Hashable, int], seed: int = 0
                      ) -> tuple[list[Tree], list[Hashable]]:
        """Like :meth:`augment`, but the plain (de-lexicalised) trees of the new sentences."""
        return self._sample(n_per_class, seed)

    def _tokens(self, item: Tree) -> list[str]:
        return item.leaves()

    def _generate(self, label: Hashable, rng: np.random.Generator) -> Tree:
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
