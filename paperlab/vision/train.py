"""One trainer for the vision systems' models (ViT or CNN), with a checkpoint cache and resume.

:func:`fit` trains ``spec.build()`` on an :class:`~paperlab.vision.data.ImageSet` (random crop
with 4-pixel padding and horizontal flips, AdamW or SGD, linear warm-up then cosine decay per
step, label smoothing) and caches the weights under
``<cache>/vision/checkpoints/<spec>-<hash>.pt``, the hash covering the model spec, the training
configuration and the training images. A later call with the same three loads the checkpoint
(``torch.load(weights_only=True)``) instead of training; ``retrain=True`` trains again. While
training, a ``.partial`` checkpoint is written after every epoch and an interrupted run resumes
from it. Every epoch draws its shuffling, augmentation and dropout from a seed derived from
``(seed, epoch)``, so a resumed run equals an uninterrupted one.

Given a ``teacher``, :func:`fit` trains a DeiT-style student (a :class:`ViTSpec` with
``distilled=True``) by hard-label distillation, as DeiT: the class head learns the labels (with
label smoothing), the distillation head learns the teacher's argmax on the same augmented
images, the loss is the mean of the two cross-entropies, and at eval the model averages its two
heads. The teacher's checkpoint is part of the student's cache key.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from paperlab.core import checkpoint
from paperlab.core.data import cache_dir, cache_key, key_fields
from paperlab.core.progress import track
from paperlab.core.seed import derive_seed
from paperlab.vision.data import ImageSet, load_cifar10, normalize
from paperlab.vision.models import CifarResNetSpec, ModelSpec, ViTSpec

log = logging.getLogger(__name__)

OPTIMIZERS = ("adamw", "sgd")


@dataclass(frozen=True)
class TrainConfig:
    """How a model is trained (every field is part of the checkpoint's cache key).

    Attributes:
        epochs: passes over the training images.
        batch_size: images per step.
        optimizer: ``"adamw"`` or ``"sgd"`` (Nesterov momentum ``momentum``).
        lr: peak learning rate (after ``warmup_epochs`` of linear warm-up, then cosine to 0).
        weight_decay: decoupled (AdamW) or L2 (SGD) weight decay.
        momentum: SGD momentum.
        warmup_epochs: epochs of linear warm-up (may be fractional).
        label_smoothing: cross-entropy label smoothing.
        augment: random crop (4-pixel zero padding) and horizontal flip.
        bf16: forward passes under bfloat16 autocast (weights, gradients and the optimiser stay
            float32). Halves a CNN's step on a CPU with AMX or AVX512-BF16 (the CIFAR teacher:
            1.30 s -> 0.65 s at batch 128, one thread); a small ViT got slower (0.93 -> 1.28 s).
        seed: base seed of initialisation, shuffling, augmentation and dropout.
    """

    epochs: int = 30
    batch_size: int = 128
    optimizer: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 0.05
    momentum: float = 0.9
    warmup_epochs: float = 2.0
    label_smoothing: float = 0.1
    augment: bool = True
    bf16: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch_size must be >= 1, got {self.epochs}, "
                             f"{self.batch_size}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")

    def lr_at(self, step: int, total: int, steps_per_epoch: int) -> float:
        """Learning rate at optimiser step ``step`` of ``total``."""
        warmup = self.warmup_epochs * steps_per_epoch
        if step < warmup:
            return self.lr * (step + 1) / warmup
        progress = (step - warmup) / max(1.0, total - warmup)
        return self.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


@dataclass
class Trained:
    """A trained model (eval mode) and where it came from.

    Attributes:
        model: the network, in eval mode.
        path: its checkpoint file.
        cached: loaded from the cache (True) or trained in this call (False).
        history: per epoch ``{"epoch", "loss", "train_acc", "seconds"}``.
        resumed_at: the epoch a partial run resumed from (0: started fresh).
        bf16: trained under bfloat16 autocast; as a teacher it labels in the same precision.
    """

    model: nn.Module
    path: Path
    cached: bool
    history: list[dict[str, float]] = field(default_factory=list)
    resumed_at: int = 0
    bf16: bool = False

    @property
    def train_seconds(self) -> float:
        return float(sum(h["seconds"] for h in self.history))


# The substrate's CNN teacher (Entropic Student's teacher, the distilled ViT's teacher): a
# CIFAR-stem ResNet (one block per stage, widths 48-96-192-384), SGD with Nesterov momentum, one
# warm-up epoch, cosine decay, bfloat16 autocast. Sized by measurement at batch 128: 0.65 s a
# step on one core in bf16 (1.30 s in float32), 0.38 s on both, so 24 epochs on the 20,000
# staged training images take about 25 minutes of the 2-core machine. Widths 32-256 for 18
# epochs in float32 reached 77.7 % on the 10,000 test images.
CIFAR_TEACHER = CifarResNetSpec(widths=(48, 96, 192, 384), blocks=(1, 1, 1, 1))
CIFAR_TEACHER_TRAINING = TrainConfig(epochs=24, batch_size=128, optimizer="sgd", lr=0.1,
                                     weight_decay=5e-4, warmup_epochs=1.0, label_smoothing=0.1,
                                     augment=True, bf16=True)
QUICK_CIFAR_TEACHER = CifarResNetSpec(widths=(8, 16, 32, 64), blocks=(1, 1, 1, 1))
QUICK_CIFAR_TEACHER_TRAINING = TrainConfig(epochs=2, batch_size=64, optimizer="sgd", lr=0.05,
                                           weight_decay=5e-4, warmup_epochs=0.25,
                                           label_smoothing=0.1, augment=True)
# The teacher the CIFAR ViTs are distilled from (fit_cifar10's ``teacher``).
CIFAR_VIT_TEACHER = (CIFAR_TEACHER, CIFAR_TEACHER_TRAINING)
QUICK_CIFAR_VIT_TEACHER = (QUICK_CIFAR_TEACHER, QUICK_CIFAR_TEACHER_TRAINING)

# The DeiT-style ViT the token-reduction systems (pitome, diffrate) distil from the teacher on
# CIFAR-10. One recipe per size, so both systems hash to, and share, the same checkpoint. Width
# by measurement (batch 128, one thread: 128 wide 0.93 s a step in float32, slower in bf16,
# 1.28 s), the teacher's bf16 labelling pass adding 0.21 s. Epochs: 30 reached 69.4 % on the
# test images with training accuracy still rising, so 40: 86-109 s an epoch on two threads
# (65 minutes, other jobs beside it), 71.3 % on the test images.
CIFAR_VIT = ViTSpec(dim=128, depth=6, heads=4, drop_path=0.1, distilled=True)
CIFAR_VIT_TRAINING = TrainConfig(epochs=40, batch_size=128, lr=1e-3, weight_decay=0.05,
                                 warmup_epochs=2.0, label_smoothing=0.1, augment=True)
QUICK_CIFAR_VIT = ViTSpec(dim=48, depth=4, heads=2, drop_path=0.0, distilled=True)
QUICK_CIFAR_VIT_TRAINING = TrainConfig(epochs=3, batch_size=64, lr=2e-3, weight_decay=0.05,
                                       warmup_epochs=0.25, augment=True)


def fit_cifar10(spec: ModelSpec, cfg: TrainConfig, *, data_root: str | os.PathLike[str] | None,
                per_class: int | None, seed: int, retrain: bool = False,
                teacher: tuple[ModelSpec, TrainConfig] | None = None
                ) -> tuple[Trained, ImageSet, dict[str, Any]]:
    """:func:`fit` on the CIFAR-10 training images (the first ``per_class`` of each class; None:
    all 2,000 staged per class) with ``cfg``'s seed replaced by ``seed``.

    ``teacher`` (a model and its training) makes it DeiT's hard-label distillation: the teacher
    is trained on the same images with its own configuration, seed included (so every student
    shares one cached teacher), or loaded from the cache, and ``spec`` must be a distilled ViT.

    Returns the trained model, the training images and a JSON-ready description (checkpoint,
    whether it was cached, image count, training seconds, final training accuracy; the teacher's
    under ``"teacher"``).
    """
    train = load_cifar10("train", data_root, per_class)
    guide = None if teacher is None else fit(teacher[0], train, teacher[1])
    trained = fit(spec, train, replace(cfg, seed=seed), retrain=retrain, teacher=guide)
    info = _describe(trained, len(train))
    if guide is not None:
        info["teacher"] = {"model": teacher[0].key(), **_describe(guide, len(train))}
    return trained, train, info


def _describe(trained: Trained, images: int) -> dict[str, Any]:
    return {"checkpoint": str(trained.path), "cached": trained.cached, "train_images": images,
            "train_seconds": round(trained.train_seconds, 1),
            "final_train_acc": trained.history[-1]["train_acc"] if trained.history else None}


def checkpoint_path(spec: ModelSpec, cfg: TrainConfig, data: ImageSet,
                    teacher: Trained | None = None) -> Path:
    """``<cache>/vision/checkpoints/<ModelSpec>-<hash of spec, config, data[, teacher]>.pt``
    (a distilled student's key holds its teacher's checkpoint name, itself such a hash)."""
    train = key_fields(cfg, {"bf16": False})  # float32 runs keep the keys they had before
    fields: dict[str, Any] = {"model": spec.key(), "train": train, "data": data.fingerprint()}
    if teacher is not None:
        fields["teacher"] = teacher.path.name
    return cache_dir() / "vision" / "checkpoints" / f"{type(spec).__name__}-{cache_key(fields)}.pt"


def augment(images: torch.Tensor, gen: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crop (zero padding ``pad``) and horizontal flip of a ``uint8`` batch."""
    b, _, h, w = images.shape
    padded = F.pad(images, (pad, pad, pad, pad))
    dy, dx = torch.randint(0, 2 * pad + 1, (2, b), generator=gen).tolist()
    out = torch.stack([padded[i, :, y : y + h, x : x + w] for i, (y, x) in enumerate(zip(dy, dx,
                                                                                        strict=True))])
    flip = torch.rand(b, generator=gen) < 0.5
    out[flip] = out[flip].flip(-1)
    return out


def _optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    # no weight decay on biases, norms, class token and position embedding (1-D or tokens)
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim <= 1 or name.endswith(("cls_token", "pos_embed")) else decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr)
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=True)


def fit(
    spec: ModelSpec,
    data: ImageSet,
    cfg: TrainConfig,
    *,
    retrain: bool = False,
    cache: bool = True,
    teacher: Trained | None = None,
) -> Trained:
    """Train ``spec.build()`` on ``data`` with ``cfg``, or load the cached result.

    Args:
        spec: the model (its ``key()`` is part of the cache key).
        data: training images (``uint8``) and labels.
        cfg: the training configuration.
        retrain: ignore a cached checkpoint (and a partial one) and train from scratch.
        cache: write the checkpoint (False: train in memory only, e.g. in tests).
        teacher: a trained classifier (any model from this module) to distil from by DeiT's
            hard-label distillation; ``spec`` must then build a model with a distillation head
            (``ViTSpec(distilled=True)``).

    Returns:
        a :class:`Trained` with the model in eval mode. The caller sets the thread count.

    Raises:
        ValueError: a teacher is given but the model has no distillation head.
    """
    path = checkpoint_path(spec, cfg, data, teacher)
    partial = path.with_suffix(".partial")
    if cache and path.exists() and not retrain:
        state = checkpoint.load(path)
        model = spec.build()
        model.load_state_dict(state["model"])
        log.info("loaded cached checkpoint %s", path)
        return Trained(model.eval(), path, True, list(state.get("history", [])), bf16=cfg.bf16)

    torch.manual_seed(derive_seed(cfg.seed, "init"))
    model = spec.build()
    if teacher is not None:
        if not hasattr(model, "set_distilled_training"):
            raise ValueError(f"distillation needs a model with a distillation head (ViTSpec("
                             f"distilled=True)); {type(model).__name__} has none")
        model.set_distilled_training(True)
        teacher.model.eval()
    opt = _optimizer(model, cfg)
    history, start = (checkpoint.resume(partial, model, opt, log) if cache and not retrain
                      else ([], 0))

    n = len(data)
    steps_per_epoch = math.ceil(n / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    for epoch in track(range(start, cfg.epochs), f"training {type(spec).__name__}",
                       total=cfg.epochs - start):
        seed = derive_seed(cfg.seed, "epoch", str(epoch))
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        order = torch.randperm(n, generator=gen)
        model.train()
        tic = time.perf_counter()
        loss_sum, correct = 0.0, 0
        for i in range(steps_per_epoch):
            idx = order[i * cfg.batch_size : (i + 1) * cfg.batch_size]
            images = data.images[idx]
            if cfg.augment:
                images = augment(images, gen)
            labels = data.labels[idx]
            for group in opt.param_groups:
                group["lr"] = cfg.lr_at(epoch * steps_per_epoch + i, total, steps_per_epoch)
            logits, loss = _loss(model, normalize(images), labels, cfg, teacher)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(idx)
            correct += int((logits.argmax(-1) == labels).sum())
            if (i + 1) % max(1, steps_per_epoch // 10) == 0:
                log.info("epoch %d step %d/%d loss %.4f", epoch + 1, i + 1, steps_per_epoch,
                         loss.item())
        checkpoint.end_epoch(log, history, epoch, cfg.epochs, n, loss_sum, correct,
                             time.perf_counter() - tic)
        if cache:
            checkpoint.save_partial(partial, model, opt, history)
    if cache:
        checkpoint.finish(path, partial, model, history)
    if teacher is not None:
        model.set_distilled_training(False)
    return Trained(model.eval(), path, False, history, start, cfg.bf16)


def _loss(model: nn.Module, x: torch.Tensor, labels: torch.Tensor, cfg: TrainConfig,
          teacher: Trained | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits for the training accuracy, loss) of one batch; with a teacher, DeiT's hard
    distillation: mean of the class head's smoothed cross-entropy with the labels and the
    distillation head's cross-entropy with the teacher's predicted classes."""
    if teacher is None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
            logits = model(x)
        logits = logits.float()
        return logits, F.cross_entropy(logits, labels, label_smoothing=cfg.label_smoothing)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=teacher.bf16):
        teacher_labels = teacher.model(x).argmax(-1)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
        cls_logits, dist_logits = model(x)
    cls_logits, dist_logits = cls_logits.float(), dist_logits.float()
    loss = 0.5 * (F.cross_entropy(cls_logits, labels, label_smoothing=cfg.label_smoothing)
                  + F.cross_entropy(dist_logits, teacher_labels))
    return 0.5 * (cls_logits + dist_logits), loss


def predict(model: nn.Module, images: torch.Tensor, batch_size: int = 250) -> torch.Tensor:
    """Predicted class of each ``uint8`` image ``(N, 3, H, W)`` -> ``int64`` ``(N,)``."""
    model.eval()
    out = []
    with torch.inference_mode():
        for i in range(0, images.shape[0], batch_size):
            out.append(model(normalize(images[i : i + batch_size])).argmax(-1))
    return torch.cat(out) if out else torch.empty(0, dtype=torch.int64)


def accuracy(model: nn.Module, data: ImageSet, batch_size: int = 250) -> float:
    """Top-1 accuracy of ``model`` on ``data``."""
    return float((predict(model, data.images, batch_size) == data.labels).float().mean())


C = TypeVar("C")


def with_training_options(cfg: C, options: dict[str, Any]) -> C:
    """A vision experiment's ``Config`` with the substrate's shared command-line options applied:
    ``retrain`` (0/1), ``epochs`` (of ``cfg.train``, a :class:`TrainConfig`) and
    ``eval_images``; options not given (and any others) leave ``cfg`` as it is."""
    changes: dict[str, Any] = {}
    if "retrain" in options:
        changes["retrain"] = bool(options["retrain"])
    if "epochs" in options:
        changes["train"] = replace(cfg.train, epochs=int(options["epochs"]))
    if "eval_images" in options:
        changes["eval_images"] = int(options["eval_images"])
    return replace(cfg, **changes)
