"""Few-shot sampling and the train/validation split strategies compared in ALP (section 5).

Both strategies take the same labelled set (``2k`` examples per class) and split each class in
two halves ``A`` and ``B`` of ``k``:

* ``standard``: train on ``A`` (plus ``n_aug`` augmentations per class made from ``A`` when an
  augmenter is given), validate on ``B``.
* ``aug_train`` (the paper's augmentation-based "AugTrain-Train" split): train on augmentations
  of both halves (``n_aug`` per class from ``A`` and ``n_aug`` per class from ``B``), validate
  on all ``2k`` originals. The training split grows while the labelled budget stays the same.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from paperlab.alp.tagger import as_list
from paperlab.core import checks


@dataclass(frozen=True)
class Split:
    """Texts and labels of a training and a validation split, and what the augmenter made.

    Attributes:
        augmented: augmentations in the training split.
        copies: of those, copies of a training sentence (the augmenter found nothing new;
            ``Augmentation.copies``; 0 for an augmenter that returns a plain pair).
        unparsed: sentences the augmenter could not parse (summed over its fits).
    """

    train_texts: list[str]
    train_labels: list[Hashable]
    val_texts: list[str]
    val_labels: list[Hashable]
    augmented: int = 0
    copies: int = 0
    unparsed: int = 0

    @property
    def copy_fraction(self) -> float | None:
        """``copies / augmented``; None without augmentations."""
        return self.copies / self.augmented if self.augmented else None


def sample_per_class(labels: Sequence[Hashable], k: int, seed: int,
                     exclude: Sequence[int] = ()) -> list[int]:
    """Indices of ``k`` random examples of every class (sorted classes; not in ``exclude``).

    Raises:
        TypeError: ``k`` or ``seed`` not an integer.
        ValueError: ``k < 1`` or a class with fewer than ``k`` available examples.
    """
    k = checks.integer(k, "k", low=1)
    seed = checks.integer(seed, "seed", low=0)
    skip = set(exclude)
    by_class: dict[Hashable, list[int]] = defaultdict(list)
    for i, label in enumerate(labels):
        if i not in skip:
            by_class[label].append(i)
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    for c in sorted(by_class, key=repr):
        pool = by_class[c]
        if len(pool) < k:
            raise ValueError(f"class {c!r} has {len(pool)} examples, fewer than k={k}")
        chosen += [pool[i] for i in sorted(rng.choice(len(pool), size=k, replace=False))]
    return chosen


def halves(labels: Sequence[Hashable], seed: int) -> tuple[list[int], list[int]]:
    """Split every class's indices into two random halves (sizes differ by at most one)."""
    by_class: dict[Hashable, list[int]] = defaultdict(list)
    for i, label in enumerate(labels):
        by_class[label].append(i)
    rng = np.random.default_rng(seed)
    first: list[int] = []
    second: list[int] = []
    for c in sorted(by_class, key=repr):
        idx = [by_class[c][i] for i in rng.permutation(len(by_class[c]))]
        if len(idx) < 2:
            raise ValueError(f"class {c!r} has {len(idx)} example; a split needs at least 2")
        first += idx[: len(idx) // 2]
        second += idx[len(idx) // 2:]
    return first, second


def _augmented(augmenter: Any, texts: list[str], labels: list[Hashable], n_aug: int,
               seed: int) -> tuple[list[str], list[Hashable], int, int]:
    """``(texts, labels, copies, unparsed)`` of ``n_aug`` augmentations per class."""
    made = augmenter.fit(texts, labels).augment(n_aug, seed=seed)
    aug_t, aug_l = made
    return aug_t, aug_l, getattr(made, "copies", 0), getattr(made, "unparsed", 0)


def _check(texts: Sequence[str], labels: Sequence[Hashable], n_aug: int, seed: int
           ) -> tuple[list[str], list[Hashable], int, int]:
    """Raise unless ``texts`` are strings with one label each and ``n_aug``/``seed`` are
    counts; returns the texts and labels as lists, ``n_aug`` and ``seed`` as ints."""
    texts, labels = as_list(texts, "texts"), as_list(labels, "labels")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"text {i} is {checks.describe(text)}, not a string")
    if len(texts) != len(labels):
        raise ValueError(f"mismatched lengths: {len(texts)} texts and {len(labels)} labels")
    return (texts, labels, checks.integer(n_aug, "n_aug", low=0),
            checks.integer(seed, "seed", low=0))


def standard_split(texts: Sequence[str], labels: Sequence[Hashable], augmenter: Any = None,
                   n_aug: int = 0, seed: int = 0) -> Split:
    """Train on half ``A`` (+ ``n_aug`` augmentations per class of ``A``), validate on ``B``.

    ``augmenter``: an object with ``fit(texts, labels)`` returning something with
    ``augment(n_per_class, seed) -> (texts, labels)`` (:class:`~paperlab.alp.ALPAugmenter`,
    :class:`~paperlab.alp.EDAAugmenter`), or ``None`` for no augmentation. Their
    :class:`~paperlab.alp.augment.Augmentation` counts (copies, unparsed sentences) go into the
    :class:`Split`.

    Raises:
        TypeError: texts that are not strings, ``n_aug`` or ``seed`` not an integer.
        ValueError: mismatched lengths, a negative ``n_aug`` or ``seed``.
    """
    texts, labels, n_aug, seed = _check(texts, labels, n_aug, seed)
    a, b = halves(labels, seed)
    train_t, train_l = [texts[i] for i in a], [labels[i] for i in a]
    val_t, val_l = [texts[i] for i in b], [labels[i] for i in b]
    if augmenter is None or n_aug == 0:
        return Split(train_t, train_l, val_t, val_l)
    aug_t, aug_l, copies, unparsed = _augmented(augmenter, train_t, train_l, n_aug, seed)
    return Split(train_t + aug_t, train_l + aug_l, val_t, val_l, len(aug_t), copies, unparsed)


def augmentation_split(texts: Sequence[str], labels: Sequence[Hashable], augmenter: Any,
                       n_aug: int, seed: int = 0) -> Split:
    """ALP's augmentation-based split: train on augmentations of both halves (``n_aug`` per
    class from each), validate on every original."""
    texts, labels, n_aug, seed = _check(texts, labels, n_aug, seed)
    if augmenter is None or n_aug < 1:
        raise ValueError("the augmentation-based split needs an augmenter and n_aug >= 1")
    a, b = halves(labels, seed)
    train_t: list[str] = []
    train_l: list[Hashable] = []
    copies = unparsed = 0
    for part, part_seed in ((a, seed), (b, seed + 1)):
        aug_t, aug_l, part_copies, part_unparsed = _augmented(
            augmenter, [texts[i] for i in part], [labels[i] for i in part], n_aug, part_seed)
        train_t += aug_t
        train_l += aug_l
        copies += part_copies
        unparsed += part_unparsed
    return Split(train_t, train_l, texts, labels, len(train_t), copies, unparsed)


SPLITS: dict[str, Callable[..., Split]] = {"standard": standard_split,
                                           "aug_train": augmentation_split}
