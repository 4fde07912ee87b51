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


@dataclass(frozen=True)
class Split:
    """Texts and labels of a training and a validation split."""

    train_texts: list[str]
    train_labels: list[Hashable]
    val_texts: list[str]
    val_labels: list[Hashable]


def sample_per_class(labels: Sequence[Hashable], k: int, seed: int,
                     exclude: Sequence[int] = ()) -> list[int]:
    """Indices of ``k`` random examples of every class (sorted classes; not in ``exclude``).

    Raises:
        ValueError: ``k < 1`` or a class with fewer than ``k`` available examples.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
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
               seed: int) -> tuple[list[str], list[Hashable]]:
    return augmenter.fit(texts, labels).augment(n_aug, seed=seed)


def _check(texts: Sequence[str], labels: Sequence[Hashable], n_aug: int) -> None:
    if len(texts) != len(labels):
        raise ValueError(f"mismatched lengths: {len(texts)} texts and {len(labels)} labels")
    if n_aug < 0:
        raise ValueError(f"n_aug must be >= 0, got {n_aug}")


def standard_split(texts: Sequence[str], labels: Sequence[Hashable], augmenter: Any = None,
                   n_aug: int = 0, seed: int = 0) -> Split:
    """Train on half ``A`` (+ ``n_aug`` augmentations per class of ``A``), validate on ``B``.

    ``augmenter``: an object with ``fit(texts, labels)`` returning something with
    ``augment(n_per_class, seed) -> (texts, labels)`` (:class:`~paperlab.alp.ALPAugmenter`,
    :class:`~paperlab.alp.EDAAugmenter`), or ``None`` for no augmentation.
    """
    _check(texts, labels, n_aug)
    a, b = halves(labels, seed)
    train_t, train_l = [texts[i] for i in a], [labels[i] for i in a]
    if augmenter is not None and n_aug > 0:
        aug_t, aug_l = _augmented(augmenter, train_t, train_l, n_aug, seed)
        train_t, train_l = train_t + aug_t, train_l + aug_l
    return Split(train_t, train_l, [texts[i] for i in b], [labels[i] for i in b])


def augmentation_split(texts: Sequence[str], labels: Sequence[Hashable], augmenter: Any,
                       n_aug: int, seed: int = 0) -> Split:
    """ALP's augmentation-based split: train on augmentations of both halves (``n_aug`` per
    class from each), validate on every original."""
    _check(texts, labels, n_aug)
    if augmenter is None or n_aug < 1:
        raise ValueError("the augmentation-based split needs an augmenter and n_aug >= 1")
    a, b = halves(labels, seed)
    train_t: list[str] = []
    train_l: list[Hashable] = []
    for part, part_seed in ((a, seed), (b, seed + 1)):
        aug_t, aug_l = _augmented(augmenter, [texts[i] for i in part],
                                  [labels[i] for i in part], n_aug, part_seed)
        train_t += aug_t
        train_l += aug_l
    return Split(train_t, train_l, list(texts), list(labels))


SPLITS: dict[str, Callable[..., Split]] = {"standard": standard_split,
                                           "aug_train": augmentation_split}
