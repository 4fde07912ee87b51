"""The image part of the token-reduction systems: the shared CIFAR-10 ViT, reduced off the shelf.

:class:`ViTComparison` holds the fields every such experiment's ``Config`` has (the ViT, its
training and teacher, the test images, the images/s column, the benchmark's repeats), their
quick size and command-line options, and trains or loads the ViT (:meth:`ViTComparison.trained`,
cached, so the systems share the checkpoint). :func:`score` evaluates reduced copies on the test
images and times them; :class:`Scores` gives each model's accuracy with its Clopper-Pearson
interval, its images/s, exact paired tests between two models and the throughput ratio's
interval.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from torch import nn

from paperlab.core.results import RunContext
from paperlab.core.stats import (
    mcnemar,
    paired_difference_interval,
    proportion_interval,
    ratio_interval,
)
from paperlab.vision.data import ImageSet, load_cifar10
from paperlab.vision.models import ModelSpec, ViTSpec
from paperlab.vision.speed import Speed, measure_speed
from paperlab.vision.train import (
    CIFAR_VIT,
    CIFAR_VIT_TEACHER,
    CIFAR_VIT_TRAINING,
    QUICK_CIFAR_VIT,
    QUICK_CIFAR_VIT_TEACHER,
    QUICK_CIFAR_VIT_TRAINING,
    TrainConfig,
    fit_cifar10,
    predict,
    with_training_options,
)

V = TypeVar("V", bound="ViTComparison")


@dataclass(frozen=True)
class ViTComparison:
    """The fields of an off-the-shelf comparison on the CIFAR-10 ViT (an experiment's ``Config``
    derives from it and adds its methods' fields).

    Attributes:
        vit: the ViT trained here (DeiT-style, with a distillation token).
        train: its training.
        teacher: the CNN it is distilled from and that CNN's training (the vision substrate's
            shared teacher; None: no distillation, ``vit`` then without a distillation token).
        train_per_class: training images per class (of 2,000; None: all).
        eval_images: test images evaluated (the first ``eval_images / 10`` of each class;
            10,000 = all).
        speed_batch, speed_repeats: the images/s column of ``run`` (repeats >= 2: the
            throughput ratio's interval needs their spread).
        retrain: ignore a cached checkpoint.
        threads: torch threads.
        bench_batches, bench_repeats: the benchmark's batch sizes and interleaved repeats.
        vision: run the CIFAR-10 comparison (False: only the system's text part).
    """

    vit: ViTSpec = CIFAR_VIT
    train: TrainConfig = CIFAR_VIT_TRAINING
    teacher: tuple[ModelSpec, TrainConfig] | None = CIFAR_VIT_TEACHER
    train_per_class: int | None = None
    eval_images: int = 10_000
    speed_batch: int = 64
    speed_repeats: int = 3
    retrain: bool = False
    threads: int = 1
    bench_batches: tuple[int, ...] = (1, 64)
    bench_repeats: int = 7
    vision: bool = True

    def __post_init__(self) -> None:
        if self.speed_repeats < 2:
            raise ValueError(f"speed_repeats must be >= 2 (the throughput ratio's interval comes "
                             f"from their spread), got {self.speed_repeats}")

    @classmethod
    def quick(cls: type[V]) -> V:
        """The quick ViT and teacher of the vision substrate, 300 training images per class,
        1,000 test images, fewer timing repeats (the other fields at their defaults)."""
        return cls(vit=QUICK_CIFAR_VIT, train=QUICK_CIFAR_VIT_TRAINING,
                   teacher=QUICK_CIFAR_VIT_TEACHER, train_per_class=300, eval_images=1000,
                   speed_repeats=2, bench_repeats=3)

    @classmethod
    def full(cls: type[V]) -> V:
        return cls()

    def with_options(self: V, options: Mapping[str, Any]) -> V:
        """Apply ``--retrain``, ``--epochs`` (the ViT's training) and ``--eval-images``."""
        return with_training_options(self, dict(options))

    def trained(self, ctx: RunContext) -> tuple[nn.Module, ImageSet, dict[str, Any]]:
        """The cached (or freshly trained) ViT, its training images and a description of its
        training (and its teacher's)."""
        fitted, train, info = fit_cifar10(self.vit, self.train, data_root=ctx.data_root,
                                          per_class=self.train_per_class, seed=ctx.seed,
                                          retrain=self.retrain, teacher=self.teacher)
        return fitted.model, train, info

    def test_images(self, ctx: RunContext) -> ImageSet:
        """The evaluated test images (the first ``eval_images / 10`` of each class)."""
        return load_cifar10("test", ctx.data_root, self.eval_images // 10)


@dataclass(frozen=True)
class Scores:
    """Models scored on the same test images and timed together (:func:`score`).

    Attributes:
        hits: per model, whether each test image is classified right (``bool`` array).
        speeds: per model, its images/s from interleaved repeats.
    """

    hits: dict[str, np.ndarray]
    speeds: dict[str, Speed]

    def accuracy(self, name: str) -> dict[str, Any]:
        """``acc`` and its Clopper-Pearson 95 % interval ``acc_ci95`` over the test images."""
        hit = self.hits[name]
        return {"acc": float(hit.mean()), "acc_ci95": proportion_interval(int(hit.sum()), len(hit))}

    def speed(self, name: str) -> dict[str, float]:
        """``images_per_s`` (wall clock) and ``cpu_images_per_s`` (the thread's CPU time)."""
        s = self.speeds[name]
        return {"images_per_s": s.images_per_s, "cpu_images_per_s": s.cpu_images_per_s}

    def paired(self, a: str, b: str) -> dict[str, Any]:
        """Exact McNemar test of model ``a`` against ``b`` on the same images (``a_only``,
        ``b_only``: images only that one gets right; ``p``) and the exact paired 95 % interval
        of the accuracy difference ``a - b`` (``acc_diff_ci95``)."""
        return {**mcnemar(self.hits[a], self.hits[b]),
                "acc_diff_ci95": paired_difference_interval(self.hits[a], self.hits[b])}

    def throughput_interval(self, name: str, reference: str) -> dict[str, Any]:
        """95 % interval of ``name``'s throughput over ``reference``'s: the ratio of the
        thread-CPU-time medians ``reference / name``, bootstrapped over the repeats."""
        return ratio_interval(self.speeds[reference].cpu_times, self.speeds[name].cpu_times)


def score(models: Mapping[str, nn.Module], test: ImageSet, batch: int, repeats: int) -> Scores:
    """Classify ``test`` with every model, then time them all, interleaved, at ``batch`` images
    per call (:func:`~paperlab.vision.speed.measure_speed`, ``repeats`` repeats)."""
    hits = {name: (predict(model, test.images) == test.labels).numpy()
            for name, model in models.items()}
    return Scores(hits, measure_speed(models, batch, repeats=repeats))
