"""Treebank trees, Collins-style head rules, lexicalisation and PCFG induction.

Trees are :class:`nltk.Tree` objects with string labels (Penn Treebank categories) and
lower-cased word leaves. :func:`normalize_tree` turns a raw treebank tree into that form
(function tags and traces removed, a ``ROOT`` on top); :func:`lexicalize` annotates every
constituent with its lexical head (``S(seem/VBP)``) through :func:`head_child`; :class:`PCFG`
holds the relative-frequency grammar induced from binarised trees, which
:class:`paperlab.alp.parser.CKYParser` uses.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from nltk import Tree

ROOT = "ROOT"
#: Label separators of NLTK's binarisation (``NP|<NN>``) and unary collapsing (``S+VP``).
CHILD_CHAR, UNARY_CHAR = "|", "+"

# Collins-style head rules (after Collins 1999, appendix A; Magerman 1995): for each parent
# category, the search direction over its children ("left": first to last) and the categories
# tried in priority order. A parent missing here takes its first child in "left" order.
HEAD_RULES: dict[str, tuple[str, tuple[str, ...]]] = {
    "ADJP": ("left", ("NNS", "QP", "NN", "$", "ADVP", "JJ", "VBN", "VBG", "ADJP", "JJR", "NP",
                      "JJS", "DT", "FW", "RBR", "RBS", "SBAR", "RB")),
    "ADVP": ("right", ("RB", "RBR", "RBS", "FW", "ADVP", "TO", "CD", "JJR", "JJ", "IN", "NP",
                       "JJS", "NN")),
    "CONJP": ("right", ("CC", "RB", "IN")),
    "FRAG": ("right", ()),
    "INTJ": ("left", ()),
    "LST": ("right", ("LS", ":")),
    "NAC": ("left", ("NN", "NNS", "NNP", "NNPS", "NP", "NAC", "EX", "$", "CD", "QP", "PRP", "VBG",
                     "JJ", "JJS", "JJR", "ADJP", "FW")),
    "PP": ("left", ("IN", "TO", "VBG", "VBN", "RP", "FW")),
    "PRN": ("left", ()),
    "PRT": ("right", ("RP",)),
    "QP": ("left", ("$", "IN", "NNS", "NN", "JJ", "RB", "DT", "CD", "NCD", "QP", "JJR", "JJS")),
    "RRC": ("right", ("VP", "NP", "ADVP", "ADJP", "PP")),
    "S": ("left", ("TO", "IN", "VP", "S", "SBAR", "ADJP", "UCP", "NP")),
    "SBAR": ("left", ("WHNP", "WHPP", "WHADVP", "WHADJP", "IN", "DT", "S", "SQ", "SINV", "SBAR",
                      "FRAG")),
    "SBARQ": ("left", ("SQ", "S", "SINV", "SBARQ", "FRAG")),
    "SINV": ("left", ("VBZ", "VBD", "VBP", "VB", "MD", "VP", "S", "SINV", "ADJP", "NP")),
    "SQ": ("left", ("VBZ", "VBD", "VBP", "VB", "MD", "VP", "SQ")),
    "UCP": ("right", ()),
    "VP": ("left", ("TO", "VBD", "VBN", "MD", "VBZ", "VB", "VBG", "VBP", "VP", "ADJP", "NN", "NNS",
                    "NP")),
    "WHADJP": ("left", ("CC", "WRB", "JJ", "ADJP")),
    "WHADVP": ("right", ("CC", "WRB")),
    "WHNP": ("left", ("WDT", "WP", "WP$", "WHADJP", "WHPP", "WHNP")),
    "WHPP": ("right", ("IN", "TO", "FW")),
    "X": ("right", ()),
    ROOT: ("left", ()),
}
# Collins' special NP rule: each group is searched in the given direction, first group first.
_NP_RULES: tuple[tuple[str, frozenset[str]], ...] = (
    ("right", frozenset({"NN", "NNP", "NNPS", "NNS", "NX", "POS", "JJR"})),
    ("left", frozenset({"NP"})),
    ("right", frozenset({"$", "ADJP", "PRN"})),
    ("right", frozenset({"CD"})),
    ("right", frozenset({"JJ", "JJS", "RB", "QP"})),
)
_PUNCT_TAGS = frozenset({",", ".", ":", "``", "''", "-LRB-", "-RRB-", "#", "$"})


def base_category(label: str) -> str:
    """``"NP-SBJ-1" -> "NP"``, ``"PP=2" -> "PP"``; ``-LRB-``-style labels are kept."""
    if label.startswith("-"):
        return label
    return re.split(r"[-=]", label, maxsplit=1)[0] or label


def head_child(label: str, children: Sequence[str]) -> int:
    """Index of the head child among ``children`` (their categories) of a ``label`` node."""
    if not children:
        raise ValueError("a constituent needs at least one child to have a head")
    cat = base_category(label)
    order = range(len(children))
    if cat in ("NP", "NX", "NML"):
        if children[-1] == "POS":
            return len(children) - 1
        for direction, group in _NP_RULES:
            scan = order if direction == "left" else reversed(order)
            for i in scan:
                if children[i] in group:
                    return i
        return len(children) - 1
    direction, priorities = HEAD_RULES.get(cat, ("left", ()))
    scan = list(order if direction == "left" else reversed(order))
    for wanted in priorities:
        for i in scan:
            if children[i] == wanted:
                return i
    # No listed category: the first non-punctuation child in the search direction.
    for i in scan:
        if children[i] not in _PUNCT_TAGS:
            return i
    return scan[0]


def is_preterminal(tree: Any) -> bool:
    return isinstance(tree, Tree) and len(tree) == 1 and not isinstance(tree[0], Tree)


def normalize_tree(tree: Tree) -> Tree | None:
    """A treebank tree without traces (``-NONE-``), function tags and indices, with lower-cased
    words, under a ``ROOT`` node; ``None`` when nothing is left."""

    def clean(node: Tree) -> Tree | None:
        if is_preterminal(node):
            if node.label() == "-NONE-":
                return None
            return Tree(node.label(), [str(node[0]).lower()])
        kids = [k for k in (clean(c) for c in node) if k is not None]
        if not kids:
            return None
        return Tree(base_category(node.label()), kids)

    cleaned = clean(tree)
    if cleaned is None:
        return None
    if cleaned.label() in ("", ROOT):
        return Tree(ROOT, list(cleaned))
    return Tree(ROOT, [cleaned])


FINAL_PUNCT = frozenset({".", "''", ":"})


def without_final_punct(tree: Tree) -> Tree | None:
    """Copy of a plain tree without its sentence-final punctuation (tags ``.``, ``''``, ``:``);
    ``None`` when nothing else is left. Few-shot texts (SNIPS, emotion) mostly lack it."""

    def drop_last(node: Tree) -> Tree | None:
        if is_preterminal(node):
            return None if node.label() in FINAL_PUNCT else node
        last = drop_last(node[-1])
        kids = list(node[:-1]) + ([last] if last is not None else [])
        return Tree(node.label(), kids) if kids else None

    out = tree.copy(deep=True)
    while out is not None and out.leaves() and is_preterminal(_last_preterminal(out)) and \
            _last_preterminal(out).label() in FINAL_PUNCT:
        out = drop_last(out)
    return out


def _last_preterminal(tree: Tree) -> Tree:
    while not is_preterminal(tree):
        tree = tree[-1]
    return tree


@dataclass(frozen=True)
class LexLabel:
    """A constituent's category with its lexical head word and the head word's POS tag."""

    category: str
    word: str
    tag: str

    def __str__(self) -> str:
        return f"{self.category}({self.word}/{self.tag})"

    __repr__ = __str__


def lexicalize(tree: Tree) -> Tree:
    """Copy of a plain tree whose internal labels are :class:`LexLabel` (heads by
    :func:`head_child`); preterminals become ``LexLabel(tag, word, tag)``."""
    if is_preterminal(tree):
        word = tree[0]
        return Tree(LexLabel(tree.label(), word, tree.label()), [word])
    kids = [lexicalize(c) for c in tree]
    h = kids[head_child(tree.label(), [k.label().category for k in kids])].label()
    return Tree(LexLabel(tree.label(), h.word, h.tag), kids)


def delexicalize(tree: Tree) -> Tree:
    """Inverse of :func:`lexicalize`: plain category labels."""
    if not isinstance(tree, Tree):
        return tree
    label = tree.label()
    cat = label.category if isinstance(label, LexLabel) else label
    return Tree(cat, [delexicalize(c) for c in tree])


def tree_to_json(tree: Tree) -> list[Any]:
    """A plain tree as nested lists, ``["NP", ["DT", "the"], ["NN", "film"]]`` (any word,
    brackets included, stays a plain string)."""
    return [tree.label(), *(tree_to_json(c) if isinstance(c, Tree) else c for c in tree)]


def tree_from_json(obj: Any) -> Tree:
    """Inverse of :func:`tree_to_json`.

    Raises:
        ValueError: not ``[label, child, ...]`` with a string label and at least one child,
            or a word that is not a phrase's only child.
    """
    if not isinstance(obj, list) or len(obj) < 2 or not isinstance(obj[0], str):
        raise ValueError(f"a tree node must be [label, child, ...], got {str(obj)[:60]}")
    words = [c for c in obj[1:] if isinstance(c, str)]
    if words and len(obj) != 2:
        raise ValueError(f"a word must be its node's only child: {str(obj)[:60]}")
    return Tree(obj[0], words or [tree_from_json(c) for c in obj[1:]])


def binarize(tree: Tree, horz_markov: int = 1) -> Tree:
    """Right-factored binary copy with unary chains collapsed (``S+VP``); preterminals kept."""
    t = tree.copy(deep=True)
    t.collapse_unary(collapsePOS=False, collapseRoot=True, joinChar=UNARY_CHAR)
    t.chomsky_normal_form(factor="right", horzMarkov=horz_markov, childChar=CHILD_CHAR)
    return t


def debinarize(tree: Tree) -> Tree:
    """Undo :func:`binarize`: remove ``|`` nodes and expand collapsed ``+`` chains."""
    t = tree.copy(deep=True)
    t.un_chomsky_normal_form(childChar=CHILD_CHAR, unaryChar=UNARY_CHAR)
    return t


@dataclass
class PCFG:
    """A relative-frequency PCFG over binarised trees, without lexical rules.

    Attributes:
        binary: ``(B, C) -> [(A, log P(A -> B C)), ...]``.
        unary: ``tag -> [(A, log P(A -> tag)), ...]`` (phrases over a single POS tag).
        tags: every POS tag seen.
        starts: labels that span a whole sentence in the binarised trees (``ROOT+S``, ...).
        lexicon: ``tag -> Counter(word)``, the treebank's words (lower-cased) per tag.
    """

    binary: dict[tuple[str, str], list[tuple[str, float]]]
    unary: dict[str, list[tuple[str, float]]]
    tags: frozenset[str]
    starts: frozenset[str]
    lexicon: dict[str, Counter]

    @classmethod
    def from_trees(cls, trees: Iterable[Tree], horz_markov: int = 1) -> PCFG:
        """Induce the grammar from normalised trees (see :func:`normalize_tree`)."""
        counts: Counter = Counter()
        lhs_counts: Counter = Counter()
        lexicon: dict[str, Counter] = defaultdict(Counter)
        starts: set[str] = set()
        for tree in trees:
            btree = binarize(tree, horz_markov)
            starts.add(btree.label())
            for prod in btree.productions():
                rhs = prod.rhs()
                if isinstance(rhs[0], str):
                    lexicon[prod.lhs().symbol()][rhs[0]] += 1
                    continue
                key = (prod.lhs().symbol(), tuple(s.symbol() for s in rhs))
                counts[key] += 1
                lhs_counts[key[0]] += 1
        if not counts:
            raise ValueError("no phrase-structure rules: the trees are empty or flat")
        binary: dict[tuple[str, str], list[tuple[str, float]]] = defaultdict(list)
        unary: dict[str, list[tuple[str, float]]] = defaultdict(list)
        for (lhs, rhs), n in sorted(counts.items()):
            logp = math.log(n / lhs_counts[lhs])
            if len(rhs) == 2:
                binary[rhs].append((lhs, logp))
            elif len(rhs) == 1:
                unary[rhs[0]].append((lhs, logp))
            else:  # binarize() never leaves longer right-hand sides
                raise AssertionError(f"rule {lhs} -> {rhs} is not binary")
        return cls(binary=dict(binary), unary=dict(unary), tags=frozenset(lexicon),
                   starts=frozenset(starts), lexicon=dict(lexicon))

    @property
    def n_rules(self) -> int:
        return sum(map(len, self.binary.values())) + sum(map(len, self.unary.values()))

    def rule_logprob(self, lhs: str, rhs: tuple[str, ...]) -> float | None:
        """log P(lhs -> rhs) for a binary or unary (phrase -> tag) rule; ``None`` if absent."""
        options = self.binary.get(rhs, []) if len(rhs) == 2 else self.unary.get(rhs[0], [])
        for a, logp in options:
            if a == lhs:
                return logp
        return None

    def tree_logprob(self, tree: Tree, horz_markov: int = 1) -> float | None:
        """Sum of rule log-probabilities of a plain tree (binarised as in induction); ``None``
        when a rule of the tree is not in the grammar (or a tag is unknown)."""
        total = 0.0
        for prod in binarize(tree, horz_markov).productions():
            rhs = prod.rhs()
            if isinstance(rhs[0], str):
                if prod.lhs().symbol() not in self.tags:
                    return None
                continue
            logp = self.rule_logprob(prod.lhs().symbol(), tuple(s.symbol() for s in rhs))
            if logp is None:
                return None
            total += logp
        return total

    def to_json(self) -> dict[str, Any]:
        return {"binary": [[b, c, a, lp] for (b, c), v in self.binary.items() for a, lp in v],
                "unary": [[t, a, lp] for t, v in self.unary.items() for a, lp in v],
                "starts": sorted(self.starts),
                "lexicon": {t: dict(c) for t, c in self.lexicon.items()}}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> PCFG:
        binary: dict[tuple[str, str], list[tuple[str, float]]] = defaultdict(list)
        for b, c, a, lp in obj["binary"]:
            binary[(str(b), str(c))].append((str(a), float(lp)))
        unary: dict[str, list[tuple[str, float]]] = defaultdict(list)
        for t, a, lp in obj["unary"]:
            unary[str(t)].append((str(a), float(lp)))
        lexicon = {str(t): Counter({str(w): int(n) for w, n in c.items()})
                   for t, c in obj["lexicon"].items()}
        return cls(binary=dict(binary), unary=dict(unary), tags=frozenset(lexicon),
                   starts=frozenset(map(str, obj["starts"])), lexicon=lexicon)


#: Categories whose phrases the authors' generator strings together (their "plausible rules":
#: sentences, questions, subordinate clauses, adjective and adverb phrases); the categories that
#: span a whole training sentence (under ``ROOT``) are added, so every class has a start.
PHRASE_STARTS = frozenset({"S", "SQ", "SBAR", "ADJP", "ADVP"})


class TooDeep(RuntimeError):
    """A sampled phrase went past the depth limit (a recursive rule drawn too often)."""


@dataclass
class LexicalizedPCFG:
    """A head-lexicalized PCFG induced from the lexicalized trees of one class, for sampling.

    Every rule is one seen in the trees: ``A -> B1 ... Bn`` with its head child (the head rules
    of :func:`head_child`). A phrase of category ``A`` with head word ``h`` expands by
    ``P(rule | A, h)`` (relative frequency over the ``A`` phrases headed by ``h``), backing off
    to ``P(rule | A)`` when no ``A`` phrase of the trees is headed by ``h``; the head child
    inherits ``h`` and every other child ``B`` draws its own head from ``P(head | B)``, the
    head words of the ``B`` phrases (or, for a POS tag, the words) of the trees. A POS tag
    whose inherited head has another tag draws a word of its own. ``pools`` (optional) widens
    the words: with probability ``p_word`` a tag's word is drawn uniformly from its pool instead
    (the class's words of that tag and their WordNet synonyms, as in ALP).

    Attributes:
        rules: ``A -> {(children, head index): count}``.
        lexical_rules: ``(A, head word) -> {(children, head index): count}``.
        heads: category or tag ``-> {(head word, head tag): count}``.
        starts: start category ``-> count`` of its phrases in the trees.
        pools: tag ``->`` words (sorted).
    """

    rules: dict[str, Counter]
    lexical_rules: dict[tuple[str, str], Counter]
    heads: dict[str, Counter]
    starts: Counter
    pools: dict[str, tuple[str, ...]]

    @classmethod
    def from_trees(cls, trees: Iterable[Tree], pools: dict[str, tuple[str, ...]] | None = None,
                   starts: frozenset[str] = PHRASE_STARTS) -> LexicalizedPCFG:
        """Induce from lexicalized trees (:func:`lexicalize`; ``ROOT`` on top or not).

        Raises:
            ValueError: no phrase (the trees are empty or only preterminals).
        """
        rules: dict[str, Counter] = defaultdict(Counter)
        lexical: dict[tuple[str, str], Counter] = defaultdict(Counter)
        heads: dict[str, Counter] = defaultdict(Counter)
        start_counts: Counter = Counter()
        for tree in trees:
            top = [tree] if tree.label().category != ROOT else list(tree)
            for sub in top:
                if isinstance(sub, Tree) and not is_preterminal(sub):
                    start_counts[sub.label().category] += 1
            whole = {id(sub) for sub in top}
            for node in tree.subtrees(lambda n: n.label().category != ROOT):
                lab = node.label()
                heads[lab.category][(lab.word, lab.tag)] += 1
                if is_preterminal(node):
                    continue
                kids = tuple(k.label().category for k in node)
                rule = (kids, head_child(lab.category, kids))
                rules[lab.category][rule] += 1
                lexical[(lab.category, lab.word)][rule] += 1
                if lab.category in starts and id(node) not in whole:
                    start_counts[lab.category] += 1
        if not rules or not start_counts:
            raise ValueError("no phrases to induce a grammar from")
        return cls(dict(rules), dict(lexical), dict(heads), start_counts, dict(pools or {}))

    def productions(self) -> set[tuple[str, tuple[str, ...]]]:
        """Every rule ``(A, children)`` of the grammar."""
        return {(a, kids) for a, c in self.rules.items() for kids, _ in c}

    def sample(self, rng: np.random.Generator, category: str | None = None,
               p_word: float = 0.0, max_depth: int = 25) -> Tree:
        """One phrase: of ``category`` (default: a start category drawn by its count).

        Raises:
            TooDeep: the phrase nested deeper than ``max_depth`` (draw again).
        """
        if category is None:
            category = _draw(self.starts, rng)
        return self._expand(category, None, rng, p_word, max_depth)

    def _expand(self, category: str, head: tuple[str, str] | None, rng: np.random.Generator,
                p_word: float, depth: int) -> Tree:
        if depth < 0:
            raise TooDeep(category)
        if category not in self.rules:  # a POS tag
            if head is None or head[1] != category:
                head = _draw(self.heads[category], rng)
            word = head[0]
            pool = self.pools.get(category)
            if pool and p_word > 0 and rng.random() < p_word:
                word = pool[rng.integers(len(pool))]
            return Tree(category, [word])
        if head is None:
            head = _draw(self.heads[category], rng)
        options = self.lexical_rules.get((category, head[0])) or self.rules[category]
        kids, h = _draw(options, rng)
        return Tree(category, [self._expand(k, head if i == h else None, rng, p_word, depth - 1)
                               for i, k in enumerate(kids)])


def _draw(counts: Counter, rng: np.random.Generator) -> Any:
    """A key of ``counts`` drawn with probability proportional to its count (keys in insertion
    order, so a seeded draw is reproducible)."""
    keys = list(counts)
    weights = np.fromiter(counts.values(), dtype=float, count=len(keys))
    return keys[int(rng.choice(len(keys), p=weights / weights.sum()))]
