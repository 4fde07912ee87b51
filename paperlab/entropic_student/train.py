"""The Entropic Student's two training stages (spec "Training") and the neural image codec
baseline's rate-distortion training, each with a checkpoint cache.

* Stage 1 (head distillation + rate): teacher frozen, the student's copied ``layer2..4`` and head
  frozen; encoder, entropy model and decoder trained with Adam on
  ``sum of 4 MSEs (decoder output vs teacher layer1; student layer2/3/4 vs teacher's)
  + beta * bits per input pixel`` (noisy latents); learning rate x0.1 at the milestones. The
  entropy model's median and tails are then set exactly by bisection (``update()``) instead of
  the paper's auxiliary loss, which does not converge in the few hundred steps trained here.
* Stage 2 (KD fine-tuning): encoder and entropy model frozen (coding tables frozen by
  ``update()``), decoder and the tail trained with SGD (momentum 0.9, weight decay 5e-4) on
  ``0.5 CE(labels) + 0.5 KL(teacher || student)`` (temperature 1) on *rounded* latents.

Units: the paper's MSEs and rate are sums over a mini-batch at ImageNet size; here each MSE is a
mean over elements and the rate is bits per input pixel, so our ``beta`` is on a different scale
from the paper's 0.01..2.56 (it still trades rate for accuracy monotonically).

* The image codec (:class:`~paperlab.entropic_student.image_codec.ImageCodec`): Adam on
  ``MSE (0..255 scale) + lambda * bits per pixel`` (noisy latents), the entropy model at 10x the
  learning rate as in stage 1, then ``update()``.

:func:`train_student` / :func:`train_codec` cache the result under ``<cache>/entropic_student/``
keyed by the configuration and the training images (and the teacher checkpoint, for students);
loaded with ``weights_only=True``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from paperlab.core import checks
from paperlab.core.data import cache_dir
from paperlab.core.progress import track
from paperlab.core.seed import derive_seed
from paperlab.entropic_student.image_codec import ImageCodec, load_codec, save_codec
from paperlab.entropic_student.model import (
    MAX_WIDTH,
    EntropicStudent,
    check_image_set,
    check_images,
    check_teacher,
    load_student,
    save_student,
    teacher_features,
)
from paperlab.vision.data import ImageSet, normalize
from paperlab.vision.train import augment

log = logging.getLogger(__name__)

Rule = Callable[[Any, str], Any]


def each(rule: Rule, empty: bool = True) -> Rule:
    """A rule for a tuple of values: ``rule`` applied to each (a lone value or a string is not
    a tuple; an empty one only if ``empty``)."""

    def check(values: Any, name: str) -> tuple[Any, ...]:
        if not isinstance(values, (tuple, list)):
            raise TypeError(f"{name} must be a tuple, got {checks.describe(values)}")
        if not (values or empty):
            raise ValueError(f"{name} must hold at least one value, got {values!r}")
        return tuple(rule(v, f"each of {name}") for v in values)

    return check


def check_fields(cfg: object, **rules: Rule) -> None:
    """Replace each named field of the frozen dataclass ``cfg`` by ``rule(value, name)``: the
    value checked and converted (a NumPy or 0-d tensor scalar becomes a Python number), or an
    error naming the field."""
    for name, rule in rules.items():
        object.__setattr__(cfg, name, rule(getattr(cfg, name), name))


def flag(value: Any, name: str) -> bool:
    """A ``bool`` (or NumPy bool) as ``bool``; anything else is refused."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {checks.describe(value)}")
    return bool(value)


COUNT = partial(checks.integer, low=0)
POSITIVE_INT = partial(checks.integer, low=1)
POSITIVE = partial(checks.real, low=0, low_open=True)
NON_NEGATIVE = partial(checks.real, low=0)
WIDTH = partial(checks.integer, low=1, high=MAX_WIDTH)


@dataclass(frozen=True)
class StudentConfig:
    """How one student is trained (every field is part of the cache key).

    Attributes:
        beta: rate weight (per bit per input pixel). b: latent channels.
        stage1_epochs, stage1_lr, stage1_milestones: Adam stage (lr x0.1 at each milestone epoch;
        paper: 10 epochs, 1e-3, (5, 8)). density_lr_scale: the entropy model's learning rate
        relative to ``stage1_lr`` (10: in short runs its density otherwise stays at its wide
        initialisation and the rate barely depends on beta; measured 2026-11-30).
        stage2_epochs, stage2_lr: SGD stage (paper: 10 epochs, 1e-3). batch_size: images per
        step. augment: random crop + flip. seed: initialisation, shuffling, noise.
    """

    beta: float = 0.1
    b: int = 24
    stage1_epochs: int = 10
    stage1_lr: float = 1e-3
    stage1_milestones: tuple[int, ...] = (5, 8)
    density_lr_scale: float = 10.0
    stage2_epochs: int = 10
    stage2_lr: float = 1e-3
    batch_size: int = 64
    augment: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        check_fields(self, beta=NON_NEGATIVE, b=WIDTH, stage1_epochs=COUNT,
                     stage1_lr=POSITIVE, stage1_milestones=each(POSITIVE_INT),
                     density_lr_scale=POSITIVE, stage2_epochs=COUNT, stage2_lr=POSITIVE,
                     batch_size=POSITIVE_INT, augment=flag, seed=COUNT)


def rate_bits(likelihoods: torch.Tensor) -> torch.Tensor:
    """Total information content ``-sum log2 p`` of a batch's latents, in bits (a scalar)."""
    return -torch.log2(likelihoods).sum()


def stage1_loss(student: EntropicStudent, teacher: nn.Module, x: torch.Tensor,
                beta: float) -> tuple[torch.Tensor, dict[str, float]]:
    """Head-distillation + rate loss on normalized images ``x`` (student in train mode)."""
    with torch.no_grad():
        target = teacher_features(teacher, x)[:4]
    feats, lik = student(x)
    distortion = sum(F.mse_loss(s, t) for s, t in zip(feats[:4], target, strict=True))
    bpp = rate_bits(lik) / (x.shape[0] * x.shape[2] * x.shape[3])
    return distortion + beta * bpp, {"mse": float(distortion.detach()),
                                     "bpp": float(bpp.detach())}


def stage2_loss(student: EntropicStudent, teacher: nn.Module, x: torch.Tensor,
                labels: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """0.5 CE + 0.5 KL(teacher || student) at temperature 1, on rounded latents."""
    with torch.no_grad():
        t_logits = teacher_features(teacher, x)[-1]
        y_hat = student.bottleneck.quantize(student.encoder(x))
    logits = student.classify_latent(y_hat)
    ce = F.cross_entropy(logits, labels)
    kl = F.kl_div(F.log_softmax(logits, -1), F.log_softmax(t_logits, -1), log_target=True,
                  reduction="batchmean")
    return 0.5 * ce + 0.5 * kl, {"ce": float(ce.detach()), "kl": float(kl.detach())}


def _batches(data: ImageSet, cfg: StudentConfig | CodecConfig, stage: str, epoch: int
             ) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch's ``(uint8 images, labels)`` batches: shuffled and augmented from a seed derived
    from ``(cfg.seed, stage, epoch)``; the global torch seed too (bottleneck noise)."""
    seed = derive_seed(cfg.seed, stage, str(epoch))
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(data), generator=gen)
    for i in range(0, len(data), cfg.batch_size):
        idx = order[i : i + cfg.batch_size]
        yield (augment(data.images[idx], gen) if cfg.augment else data.images[idx],
               data.labels[idx])


def _set_trainable(student: EntropicStudent, names: tuple[str, ...]) -> list[nn.Parameter]:
    params = []
    for name, module in student.named_children():
        on = name in names
        module.train(on)
        for p in module.parameters():
            p.requires_grad_(on)
            if on:
                params.append(p)
    return params


def _epoch(opt: torch.optim.Optimizer, batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
           keys: tuple[str, ...],
           step_loss: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, dict]],
           ) -> dict[str, float]:
    """One epoch of ``opt`` steps on ``step_loss(x, labels) -> (loss, parts)``; the per-image
    means of ``parts[k]`` for ``k`` in ``keys``."""
    sums, n = dict.fromkeys(keys, 0.0), 0
    for x, labels in batches:
        loss, parts = step_loss(x, labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        for k in sums:
            sums[k] += parts[k] * x.shape[0]
        n += x.shape[0]
    return {k: v / n for k, v in sums.items()}


def _adam_with_density(model: nn.Module, density_lr_scale: float) -> torch.optim.Adam:
    """Adam over ``model``'s trainable parameters; the entropy model's (``bottleneck.*``) in a
    group whose learning rate is ``density_lr_scale`` times the rest's (see :func:`_set_lr`)."""
    density = list(model.bottleneck.parameters())
    rest = [p for n, p in model.named_parameters()
            if p.requires_grad and not n.startswith("bottleneck.")]
    return torch.optim.Adam([{"params": rest, "scale": 1.0},
                             {"params": density, "scale": density_lr_scale}])


def _set_lr(opt: torch.optim.Optimizer, lr: float, milestones: tuple[int, ...],
            epoch: int) -> None:
    """``lr`` x0.1 per milestone reached by ``epoch`` (0-based), times each group's scale."""
    lr = lr * 0.1 ** sum(epoch >= m for m in milestones)
    for group in opt.param_groups:
        group["lr"] = lr * group["scale"]


def train_stages(student: EntropicStudent, teacher: nn.Module, data: ImageSet,
                 cfg: StudentConfig) -> list[dict[str, float]]:
    """Run stage 1 then stage 2 in place; freezes the coding tables in between. Returns one
    history row per epoch. The caller sets the thread count. ``teacher`` must be the ResNet the
    student was built from (same stage-1 width and classes); ``data`` an ImageSet whose labels
    are the student's classes."""
    _check_student_and_teacher(student, teacher)
    check_image_set(data, "data", student.num_classes)
    _check_config(cfg, StudentConfig)
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    history: list[dict[str, float]] = []
    # stage 1: encoder, entropy model, decoder
    _set_trainable(student, ("encoder", "bottleneck", "decoder"))
    opt = _adam_with_density(student, cfg.density_lr_scale)
    for epoch in track(range(cfg.stage1_epochs), f"stage 1 (beta={cfg.beta})",
                       total=cfg.stage1_epochs):
        _set_lr(opt, cfg.stage1_lr, cfg.stage1_milestones, epoch)
        tic = time.perf_counter()
        means = _epoch(opt, _batches(data, cfg, "stage1", epoch), ("mse", "bpp"),
                       lambda x, _: stage1_loss(student, teacher, normalize(x), cfg.beta))
        history.append({"stage": 1, "epoch": epoch + 1, **means,
                        "seconds": time.perf_counter() - tic})
        log.info("stage 1 epoch %d: %s", epoch + 1, history[-1])
    student.bottleneck.update()
    # stage 2: decoder and tail, encoder + entropy model frozen
    params = _set_trainable(student, ("decoder", "layer2", "layer3", "layer4", "fc"))
    opt = torch.optim.SGD(params, lr=cfg.stage2_lr, momentum=0.9, weight_decay=5e-4)
    for epoch in track(range(cfg.stage2_epochs), f"stage 2 (beta={cfg.beta})",
                       total=cfg.stage2_epochs):
        tic = time.perf_counter()
        means = _epoch(opt, _batches(data, cfg, "stage2", epoch), ("ce", "kl"),
                       lambda x, labels: stage2_loss(student, teacher, normalize(x), labels))
        history.append({"stage": 2, "epoch": epoch + 1, **means,
                        "seconds": time.perf_counter() - tic})
        log.info("stage 2 epoch %d: %s", epoch + 1, history[-1])
    for p in student.parameters():
        p.requires_grad_(True)
    return history


def _check_student_and_teacher(student: object, teacher: object) -> None:
    if not isinstance(student, EntropicStudent):
        raise TypeError(f"student must be an EntropicStudent, got {checks.describe(student)}")
    check_teacher(teacher)
    width, classes = teacher.layer2[0].conv1.in_channels, teacher.fc.out_features
    if (width, classes) != (student.t, student.num_classes):
        raise ValueError(f"teacher (stage-1 width {width}, {classes} classes) is not the one the "
                         f"student was built from ({student.t}, {student.num_classes})")


def _check_config(cfg: object, kind: type) -> None:
    if not isinstance(cfg, kind):
        raise TypeError(f"cfg must be a {kind.__name__}, got {checks.describe(cfg)}")


def _cache_path(kind: str, key: dict) -> Path:
    digest = hashlib.blake2b(json.dumps(key, sort_keys=True).encode(), digest_size=8).hexdigest()
    return cache_dir() / "entropic_student" / f"{kind}-{digest}.pt"


def student_path(teacher_key: str, cfg: StudentConfig, data: ImageSet) -> Path:
    """``<cache>/entropic_student/student-<hash of teacher, config, data>.pt``."""
    check_image_set(data)
    _check_config(cfg, StudentConfig)
    return _cache_path("student", {"teacher": teacher_key, "cfg": dataclasses.asdict(cfg),
                                   "data": data.fingerprint()})


def codec_path(cfg: CodecConfig, data: ImageSet) -> Path:
    """``<cache>/entropic_student/codec-<hash of config, data>.pt``."""
    check_image_set(data)
    _check_config(cfg, CodecConfig)
    return _cache_path("codec", {"cfg": dataclasses.asdict(cfg), "data": data.fingerprint()})


M = TypeVar("M", bound=nn.Module)


def _cached(path: Path, load: Callable[[Path], M], make: Callable[[], M],
            save: Callable[[M, Path], None], *, retrain: bool, cache: bool
            ) -> tuple[M, Path, bool, float]:
    """``load(path)`` if cached (and not ``retrain``), else ``make()`` (timed) and ``save`` it
    atomically (if ``cache``): (model in eval mode, path, cached, training seconds)."""
    if cache and path.exists() and not retrain:
        log.info("loaded cached %s", path)
        return load(path), path, True, 0.0
    tic = time.perf_counter()
    model = make()
    seconds = time.perf_counter() - tic
    model.eval()
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        save(model, tmp)
        os.replace(tmp, path)
    return model, path, False, seconds


def train_student(teacher: nn.Module, data: ImageSet, cfg: StudentConfig, *,
                  teacher_key: str, retrain: bool = False,
                  cache: bool = True) -> tuple[EntropicStudent, Path, bool, float]:
    """A trained student (eval mode, coding tables frozen), its checkpoint path, whether it came
    from the cache, and the training seconds (0 when cached). ``teacher_key`` names the teacher
    (e.g. its checkpoint path) in the cache key."""
    check_teacher(teacher)
    check_image_set(data, "data", teacher.fc.out_features)
    _check_config(cfg, StudentConfig)
    if not isinstance(teacher_key, str):
        raise TypeError(f"teacher_key must be a str, got {checks.describe(teacher_key)}")

    def make() -> EntropicStudent:
        torch.manual_seed(derive_seed(cfg.seed, "student-init"))
        student = EntropicStudent(teacher, cfg.b)
        train_stages(student, teacher, data, cfg)
        return student

    return _cached(student_path(teacher_key, cfg, data), load_student, make, save_student,
                   retrain=retrain, cache=cache)


# ---------------------------------------------------------------------------------------------
# the neural image codec baseline


@dataclass(frozen=True)
class CodecConfig:
    """How one factorized-prior image codec is trained (every field is part of the cache key).

    Attributes:
        lam: weight of the rate in ``MSE + lam * bits per pixel``, MSE on the 0..255 pixel scale
        (so ``lam`` is in squared pixel levels per bit per pixel; larger -> fewer bytes).
        n, m: hidden and latent channels (paper: 128, 192 at low rates).
        epochs, lr, milestones: Adam, lr x0.1 at each milestone epoch. density_lr_scale: the
        entropy model's learning rate relative to ``lr`` (as for the students).
        batch_size: images per step (16: more steps per epoch, the codec learns from scratch and
        short runs are step-bound; lr 3e-3 diverged, measured). augment (random crop + flip),
        seed.
    """

    lam: float = 30.0
    n: int = 64
    m: int = 96
    epochs: int = 30
    lr: float = 1e-3
    milestones: tuple[int, ...] = (20, 26)
    density_lr_scale: float = 10.0
    batch_size: int = 16
    augment: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        check_fields(self, lam=NON_NEGATIVE, n=POSITIVE_INT, m=WIDTH, epochs=COUNT,
                     lr=POSITIVE, milestones=each(POSITIVE_INT), density_lr_scale=POSITIVE,
                     batch_size=POSITIVE_INT, augment=flag, seed=COUNT)


def rd_loss(codec: ImageCodec, images: torch.Tensor, lam: float
            ) -> tuple[torch.Tensor, dict[str, float]]:
    """``MSE (0..255 scale) + lam * bits per pixel`` of ``uint8`` images ``(B, 3, H, W)``
    (noisy latents in train mode, rounded in eval mode)."""
    check_images(images)
    x = images.float() / 255.0
    x_hat, lik = codec(x)
    mse = F.mse_loss(x_hat, x) * 255.0**2
    bpp = rate_bits(lik) / (x.shape[0] * x.shape[2] * x.shape[3])
    return mse + lam * bpp, {"mse": float(mse.detach()), "bpp": float(bpp.detach())}


def fit_codec(codec: ImageCodec, data: ImageSet, cfg: CodecConfig) -> list[dict[str, float]]:
    """Train ``codec`` in place on ``data``'s images with :func:`rd_loss`, then freeze its coding
    tables (``update()``). One history row per epoch. The caller sets the thread count."""
    if not isinstance(codec, ImageCodec):
        raise TypeError(f"codec must be an ImageCodec, got {checks.describe(codec)}")
    check_image_set(data)
    _check_config(cfg, CodecConfig)
    codec.train()
    opt = _adam_with_density(codec, cfg.density_lr_scale)
    history: list[dict[str, float]] = []
    for epoch in track(range(cfg.epochs), f"codec (lambda={cfg.lam})", total=cfg.epochs):
        _set_lr(opt, cfg.lr, cfg.milestones, epoch)
        tic = time.perf_counter()
        means = _epoch(opt, _batches(data, cfg, "codec", epoch), ("mse", "bpp"),
                       lambda x, _: rd_loss(codec, x, cfg.lam))
        history.append({"epoch": epoch + 1, **means, "seconds": time.perf_counter() - tic})
        log.info("codec epoch %d: %s", epoch + 1, history[-1])
    codec.bottleneck.update()
    return history


def train_codec(data: ImageSet, cfg: CodecConfig, *, retrain: bool = False,
                cache: bool = True) -> tuple[ImageCodec, Path, bool, float]:
    """A trained image codec (eval mode, coding tables frozen), its checkpoint path, whether it
    came from the cache, and the training seconds (0 when cached). ``data`` and ``cfg`` are
    checked by :func:`codec_path` first."""

    def make() -> ImageCodec:
        torch.manual_seed(derive_seed(cfg.seed, "codec-init"))
        codec = ImageCodec(cfg.n, cfg.m)
        fit_codec(codec, data, cfg)
        return codec

    return _cached(codec_path(cfg, data), load_codec, make, save_codec, retrain=retrain,
                   cache=cache)
