from __future__ import annotations

import pytest

from paperlab.alp.splits import augmentation_split, halves, sample_per_class, standard_split


class TagAugmenter:
    """Augmenter stand-in: 'aug<i> <first text>' per class, records what it was fitted on."""

    def fit(self, texts, labels):
        self.fitted = list(texts)
        self.first = {}
        for t, lab in zip(texts, labels, strict=True):
            self.first.setdefault(lab, t)
        return self

    def augment(self, n, seed=0):
        texts, labels = [], []
        for lab, t in sorted(self.first.items()):
            texts += [f"aug{i} {t}" for i in range(n)]
            labels += [lab] * n
        return texts, labels


TEXTS = [f"s{i}" for i in range(12)]
LABELS = ["a", "b", "c"] * 4


def test_sample_per_class_is_balanced_seeded_and_disjoint_from_exclude():
    idx = sample_per_class(LABELS, 2, seed=0)
    assert sorted(LABELS[i] for i in idx) == ["a", "a", "b", "b", "c", "c"]
    assert idx == sample_per_class(LABELS, 2, seed=0)
    rest = sample_per_class(LABELS, 2, seed=1, exclude=idx)
    assert not set(idx) & set(rest)
    with pytest.raises(ValueError, match="fewer than k=5"):
        sample_per_class(LABELS, 5, seed=0)
    with pytest.raises(ValueError, match="k must be"):
        sample_per_class(LABELS, 0, seed=0)


def test_halves_partition_each_class():
    a, b = halves(LABELS, seed=3)
    assert sorted(a + b) == list(range(12))
    assert sorted(LABELS[i] for i in a) == sorted(LABELS[i] for i in b)


def test_strategies_use_the_same_labelled_budget():
    std = standard_split(TEXTS, LABELS, TagAugmenter(), n_aug=3, seed=0)
    assert len(std.val_texts) == 6 and not set(std.val_texts) & set(std.train_texts)
    originals = [t for t in std.train_texts if not t.startswith("aug")]
    assert len(originals) == 6 and len(std.train_texts) == 6 + 9
    aug = augmentation_split(TEXTS, LABELS, TagAugmenter(), n_aug=3, seed=0)
    assert sorted(aug.val_texts) == sorted(TEXTS)  # every original validates
    assert all(t.startswith("aug") for t in aug.train_texts)
    assert len(aug.train_texts) == 2 * 9  # augmentations of both halves
    assert {t.split()[1] for t in aug.train_texts} & set(std.val_texts)  # B was augmented too


def test_standard_split_without_augmenter_and_bad_input():
    plain = standard_split(TEXTS, LABELS, None, seed=0)
    assert len(plain.train_texts) == 6
    with pytest.raises(ValueError, match="mismatched"):
        standard_split(TEXTS, LABELS[:-1])
    with pytest.raises(ValueError, match="needs an augmenter"):
        augmentation_split(TEXTS, LABELS, None, n_aug=2)
    with pytest.raises(ValueError, match="at least 2"):
        halves(["a", "b", "b"], seed=0)
