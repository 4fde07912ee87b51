"""A pruned Viterbi CKY parser for the treebank PCFG, with unknown words handled by the tagger.

The tagger fixes one POS tag per token (so an unknown word costs nothing special: it gets the
tag its context and suffix suggest); the parser then finds the most probable binarised tree
over those tags, keeping at most ``beam`` labels per span within ``margin`` nats of the span's
best. The tree comes back de-binarised (plain Penn Treebank shape under ``ROOT``).
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from nltk import Tree

from paperlab.alp.grammar import PCFG, ROOT, debinarize
from paperlab.alp.tagger import Tagger, check_tokens
from paperlab.core import checks

_TOKEN = re.compile(r"n't|\w+(?:[-'.]\w+)*|'\w+|``|''|\.\.\.|--|[^\w\s]")


def tokenize(text: str) -> list[str]:
    """Lower-cased word/punctuation tokens (already-tokenised text keeps its tokens).

    Raises:
        TypeError: ``text`` is not a string (``None``, bytes, a list of tokens, ...).
    """
    if not isinstance(text, str):
        raise TypeError(f"expected a sentence as a string, got {checks.describe(text)}")
    return _TOKEN.findall(text.lower())


@dataclass(frozen=True)
class Parse:
    """A Viterbi parse: the plain tree (``ROOT`` on top), its log-probability under the PCFG
    (rule probabilities only; tags come from the tagger) and the tags used."""

    tree: Tree
    logprob: float
    tags: tuple[str, ...]

    @property
    def logprob_per_word(self) -> float:
        return self.logprob / max(1, len(self.tags))


class CKYParser:
    """Viterbi CKY over a :class:`~paperlab.alp.grammar.PCFG`.

    Args:
        grammar: the PCFG (binary rules and phrase -> tag unary rules).
        tagger: supplies the preterminals.
        beam: labels kept per span (default 12).
        margin: labels more than ``margin`` nats below a span's best are dropped (default 9).

    Raises:
        TypeError: ``grammar`` not a PCFG, ``tagger`` not a Tagger, ``beam`` not an integer,
            ``margin`` not a number.
        ValueError: ``beam < 1``, ``margin`` not finite and positive.
    """

    def __init__(self, grammar: PCFG, tagger: Tagger, beam: int = 12, margin: float = 9.0
                 ) -> None:
        if not isinstance(grammar, PCFG):
            raise TypeError(f"grammar must be a PCFG, got {checks.describe(grammar)}")
        if not isinstance(tagger, Tagger):
            raise TypeError(f"tagger must be a Tagger, got {checks.describe(tagger)}")
        beam = checks.integer(beam, "beam", low=1)
        margin = checks.real(margin, "margin", low=0, low_open=True)
        self.grammar, self.tagger, self.beam, self.margin = grammar, tagger, beam, margin
        by_left: dict[str, dict[str, list[tuple[str, float]]]] = defaultdict(dict)
        for (b, c), rules in grammar.binary.items():
            by_left[b][c] = rules
        self._by_left = dict(by_left)
        self._cache: dict[tuple[str, ...], Parse | None] = {}

    cache_size = 20_000  # parses remembered (by token tuple); ALP re-parses the same sentences

    def parse(self, tokens: Sequence[str] | str, use_cache: bool = True) -> Parse | None:
        """Most probable tree for ``tokens`` (a string is tokenised with :func:`tokenize`);
        ``None`` when no tree spans the sentence even with a 4x wider beam. The returned tree is
        the caller's to modify; ``use_cache=False`` parses again (for timing).

        Raises:
            TypeError: neither a string nor a sequence of string tokens (``None``, bytes, ...).
            ValueError: an empty sentence.
        """
        toks = (tokenize(tokens) if isinstance(tokens, str)
                else [t.lower() for t in check_tokens(tokens)])
        if not toks:
            raise ValueError("cannot parse an empty sentence")
        if not use_cache:
            return self._parse(toks)
        key = tuple(toks)
        if key not in self._cache:
            if len(self._cache) >= self.cache_size:
                self._cache.clear()
            self._cache[key] = self._parse(toks)
        found = self._cache[key]
        if found is None:
            return None
        return Parse(found.tree.copy(deep=True), found.logprob, found.tags)

    def _parse(self, toks: list[str]) -> Parse | None:
        tags = self.tagger.tag(toks)
        for beam in (self.beam, 4 * self.beam):
            found = self._viterbi(toks, tags, beam)
            if found is not None:
                return found
        return None

    def _prune(self, cell: dict, beam: int) -> dict:
        if len(cell) <= 1:
            return cell
        best = max(v[0] for v in cell.values())
        kept = sorted((kv for kv in cell.items() if kv[1][0] >= best - self.margin),
                      key=lambda kv: -kv[1][0])
        return dict(kept[:beam])

    def _viterbi(self, toks: list[str], tags: list[str], beam: int) -> Parse | None:
        n = len(toks)
        unary, starts = self.grammar.unary, self.grammar.starts
        # chart[i][j]: label -> (log-prob, back-pointer); back-pointer None for a tag,
        # (tag,) for a unary phrase over a tag, (k, left, right) for a binary rule.
        chart: list[list[dict]] = [[{} for _ in range(n + 1)] for _ in range(n + 1)]
        for i, tag in enumerate(tags):
            cell: dict = {tag: (0.0, None)}
            for a, lp in unary.get(tag, ()):
                cell[a] = (lp, (tag,))
            if n == 1:
                cell = {a: v for a, v in cell.items() if a in starts}
            chart[i][i + 1] = self._prune(cell, beam) if n > 1 else cell
        neg = (-math.inf, None)
        for length in range(2, n + 1):
            for i in range(n - length + 1):
                j = i + length
                best: dict = {}
                for k in range(i + 1, j):
                    right = chart[k][j]
                    if not right:
                        continue
                    for b, (sb, _) in chart[i][k].items():
                        by_c = self._by_left.get(b)
                        if by_c is None:
                            continue
                        for c, (sc, _) in right.items():
                            rules = by_c.get(c)
                            if rules is None:
                                continue
                            base = sb + sc
                            for a, lp in rules:
                                s = base + lp
                                if s > best.get(a, neg)[0]:
                                    best[a] = (s, (k, b, c))
                if length == n:
                    best = {a: v for a, v in best.items() if a in starts}
                chart[i][j] = self._prune(best, beam)
        top = chart[0][n]
        if not top:
            return None
        label = max(top, key=lambda a: top[a][0])

        def build(i: int, j: int, a: str) -> Tree:
            back = chart[i][j][a][1]
            if back is None:
                return Tree(a, [toks[i]])
            if len(back) == 1:
                return Tree(a, [Tree(back[0], [toks[i]])])
            k, b, c = back
            return Tree(a, [build(i, k, b), build(k, j, c)])

        tree = debinarize(build(0, n, label))
        if tree.label() != ROOT:  # a one-word ROOT+X -> tag chain debinarises to ROOT already
            tree = Tree(ROOT, [tree])
        return Parse(tree=tree, logprob=top[label][0], tags=tuple(tags))
