"""The Entropic Student's two training stages (spec "Training"), with a checkpoint cache.

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

:func:`train_student` caches the result under ``<cache>/entropic_student/`` keyed by the teacher
checkpoint, the configuration and the training images; loaded with ``weights_only=True``.
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
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from paperlab.core.data import cache_dir
from paperlab.core.progress import track
from paperlab.core.seed import derive_seed
from paperlab.entropic_student.model import (
    EntropicStudent,
    load_student,
    save_student,
    teacher_features,
)
from paperlab.vision.data import ImageSet, normalize
from paperlab.vision.train import augment

log = logging.getLogger(__name__)


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
        if self.beta < 0:
            raise ValueError(f"beta must be >= 0, got {self.beta}")
        if self.b < 1 or self.batch_size < 1:
            raise ValueError("b and batch_size must be >= 1")
        if self.stage1_epochs < 0 or self.stage2_epochs < 0:
            raise ValueError("epoch counts must be >= 0")


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


def _batches(data: ImageSet, cfg: StudentConfig, stage: str, epoch: int):
    seed = derive_seed(cfg.seed, stage, str(epoch))
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(data), generator=gen)
    for i in range(0, len(data), cfg.batch_size):
        idx = order[i : i + cfg.batch_size]
        images = augment(data.images[idx], gen) if cfg.augment else data.images[idx]
        yield normalize(images), data.labels[idx]


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


def train_stages(student: EntropicStudent, teacher: nn.Module, data: ImageSet,
                 cfg: StudentConfig) -> list[dict[str, float]]:
    """Run stage 1 then stage 2 in place; freezes the coding tables in between. Returns one
    history row per epoch. The caller sets the thread count."""
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    history: list[dict[str, float]] = []
    # stage 1: encoder, entropy model, decoder
    _set_trainable(student, ("encoder", "bottleneck", "decoder"))
    density = list(student.bottleneck.parameters())
    rest = [p for n, p in student.named_parameters()
            if p.requires_grad and not n.startswith("bottleneck.")]
    opt = torch.optim.Adam([{"params": rest, "scale": 1.0},
                            {"params": density, "scale": cfg.density_lr_scale}], lr=cfg.stage1_lr)
    for epoch in track(range(cfg.stage1_epochs), f"stage 1 (beta={cfg.beta})",
                       total=cfg.stage1_epochs):
        lr = cfg.stage1_lr * 0.1 ** sum(epoch >= m for m in cfg.stage1_milestones)
        for group in opt.param_groups:
            group["lr"] = lr * group["scale"]
        tic = time.perf_counter()
        means = _epoch(opt, _batches(data, cfg, "stage1", epoch), ("mse", "bpp"),
                       lambda x, _: stage1_loss(student, teacher, x, cfg.beta))
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
                       lambda x, labels: stage2_loss(student, teacher, x, labels))
        history.append({"stage": 2, "epoch": epoch + 1, **means,
                        "seconds": time.perf_counter() - tic})
        log.info("stage 2 epoch %d: %s", epoch + 1, history[-1])
    for p in student.parameters():
        p.requires_grad_(True)
    return history


def student_path(teacher_key: str, cfg: StudentConfig, data: ImageSet) -> Path:
    """``<cache>/entropic_student/student-<hash of teacher, config, data>.pt``."""
    key = json.dumps({"teacher": teacher_key, "cfg": dataclasses.asdict(cfg),
                      "data": data.fingerprint()}, sort_keys=True)
    digest = hashlib.blake2b(key.encode(), digest_size=8).hexdigest()
    return cache_dir() / "entropic_student" / f"student-{digest}.pt"


def train_student(teacher: nn.Module, data: ImageSet, cfg: StudentConfig, *,
                  teacher_key: str, retrain: bool = False,
                  cache: bool = True) -> tuple[EntropicStudent, Path, bool, float]:
    """A trained student (eval mode, coding tables frozen), its checkpoint path, whether it came
    from the cache, and the training seconds (0 when cached). ``teacher_key`` names the teacher
    (e.g. its checkpoint path) in the cache key."""
    path = student_path(teacher_key, cfg, data)
    if cache and path.exists() and not retrain:
        log.info("loaded cached student %s", path)
        return load_student(path), path, True, 0.0
    torch.manual_seed(derive_seed(cfg.seed, "student-init"))
    student = EntropicStudent(teacher, cfg.b)
    tic = time.perf_counter()
    train_stages(student, teacher, data, cfg)
    seconds = time.perf_counter() - tic
    student.eval()
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        save_student(student, tmp)
        os.replace(tmp, path)
    return student, path, False, seconds

