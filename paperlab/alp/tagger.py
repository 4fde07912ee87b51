"""A part-of-speech tagger trained offline on the treebank sample (NLTK's averaged perceptron).

NLTK's pretrained ``averaged_perceptron_tagger_eng`` is not staged here, so the tagger is trained
on the treebank's (lower-cased) tagged sentences and serialised to JSON (never pickled).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence, Set
from typing import Any

from nltk.tag.perceptron import AveragedPerceptron, PerceptronTagger

from paperlab.core.checks import describe


def as_list(value: Any, name: str) -> list[Any]:
    """``value`` (a list, a tuple, an array, any ordered collection) as a list.

    Raises:
        TypeError: a string, bytes, a set or a mapping (no order to pair items by), ``None``, a
            number, ...
    """
    if isinstance(value, (str, bytes, Set, Mapping)) or not isinstance(value, Iterable):
        raise TypeError(f"{name} must be a sequence (a list, a tuple, an array), got "
                        f"{describe(value)}")
    return list(value)


def check_tokens(tokens: Any) -> list[str]:
    """``tokens`` as a list of strings.

    Raises:
        TypeError: not a sequence (see :func:`as_list`), or a token that is not a string.
    """
    tokens = as_list(tokens, "tokens")
    for i, token in enumerate(tokens):
        if not isinstance(token, str):
            raise TypeError(f"token {i} is {describe(token)}, not a string")
    return tokens


class Tagger:
    """POS tags for token lists: ``Tagger.train(tagged_sents).tag(["the", "film"])``."""

    def __init__(self, model: PerceptronTagger) -> None:
        self._model = model

    @classmethod
    def train(cls, tagged_sents: Sequence[Sequence[tuple[str, str]]], n_iter: int = 5,
              seed: int = 0) -> Tagger:
        """Train on ``[[(word, tag), ...], ...]`` for ``n_iter`` passes (shuffled by ``seed``)."""
        if not tagged_sents:
            raise ValueError("no tagged sentences to train the tagger on")
        if n_iter < 1:
            raise ValueError(f"n_iter must be >= 1, got {n_iter}")
        model = PerceptronTagger(load=False)
        state = random.getstate()
        random.seed(seed)
        try:
            model.train([list(s) for s in tagged_sents], nr_iter=n_iter)
        finally:
            random.setstate(state)
        return cls(model)

    def tag(self, tokens: Sequence[str]) -> list[str]:
        """One Penn Treebank tag per token (``TypeError`` for anything but string tokens)."""
        tokens = check_tokens(tokens)
        if not tokens:
            return []
        return [t for _, t in self._model.tag(tokens)]

    def to_json(self) -> dict[str, Any]:
        m = self._model
        return {"weights": m.model.weights, "tagdict": m.tagdict, "classes": sorted(m.classes)}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Tagger:
        model = PerceptronTagger(load=False)
        model.model = AveragedPerceptron()
        model.model.weights = {str(f): {str(t): float(w) for t, w in ws.items()}
                               for f, ws in obj["weights"].items()}
        model.classes = set(map(str, obj["classes"]))
        model.model.classes = model.classes
        model.tagdict = {str(w): str(t) for w, t in obj["tagdict"].items()}
        return cls(model)
