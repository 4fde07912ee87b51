"""The Entropic Student's two training stages (spec "Training") and the neural image codec
baseline's rate-distortion training, each with a checkpoint cache.

* Stage 1 (head distillation + rate): teacher frozen, the student's copied ``layer2..4`` and head
  frozen; encoder, entropy model and decoder trained with Adam on the authors' loss, per image:
  ``sum over the 4 distilled layers of the summed squared error (decoder output vs teacher
  layer1; student layer2/3/4 vs teacher's) + beta * total bits of the latent`` (noisy latents;
  the authors sum both terms over a batch of 64, here they are averaged over the batch, which
  leaves beta's meaning unchanged). The entropy model's median and tails are then set exactly by
  bisection (``update()``) instead of the paper's auxiliary loss.
* Stage 2 (KD fine-tuning): encoder and entropy model frozen (coding tables frozen by
  ``update()``), decoder and the tail trained with SGD (momentum 0.9, weight decay 5e-4) on
  ``0.5 CE(labels) + 0.5 KL(teacher || student)`` (temperature 1) on *rounded* latents.

Both stages count their budget in optimisation steps and decay the learning rate x0.1 at
fractions of it (the authors: epochs 5 and 8 of 10 in stage 1, 5 of 10 in stage 2). Each stage
records its loss over :data:`CURVE_POINTS` equal windows of its steps; given held-out images,
:func:`train_stages` also records each distilled layer's relative error after stage 1
(:func:`relative_errors`) and the held-out accuracy during stage 2.

* The image codec (:class:`~paperlab.entropic_student.image_codec.ImageCodec`): Adam on
  ``MSE (0..255 scale) + lambda * bits per pixel`` (noisy latents), the entropy model at 10x the
  learning rate as in stage 1, the same kind of decay, then ``update()``.

:func:`train_student` / :func:`train_codec` cache the result under ``<cache>/entropic_student/``
keyed by the configuration and the training images (and the teacher checkpoint, for students),
with the training history beside it as JSON; loaded with ``weights_only=True``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from paperlab.core import checks
from paperlab.core.data import cache_dir, cache_key, key_fields
from paperlab.core.progress import track
from paperlab.core.seed import derive_seed
from paperlab.entropic_student.image_codec import ImageCodec, load_codec, save_codec
from paperlab.entropic_student.model import (
    MAX_WIDTH,
    STAGES,
    STRIDES,
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

CURVE_POINTS = 20  # windows of a stage's steps whose mean losses make its curve
PROBES = 4  # held-out accuracy checks in stage 2 (and one before it)
EVAL_BATCH = 250  # held-out images per forward pass

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
FRACTION = partial(checks.real, low=0, high=1, low_open=True, high_open=True)


def stride(value: Any, name: str) -> int:
    """An encoder stride: one of :data:`~paperlab.entropic_student.model.STRIDES`."""
    value = checks.integer(value, name)
    if value not in STRIDES:
        raise ValueError(f"{name} must be one of {STRIDES}, got {value}")
    return value


@dataclass(frozen=True)
class StudentConfig:
    """How one student is trained (every field is part of the cache key).

    Attributes:
        beta: rate weight, per bit of an image's latent against the image's summed squared
            feature error (the authors' form; their values 0.01..2.56).
        b: latent channels (paper: 24). stride: the encoder's total stride (4: an 8x8 latent;
            2: 16x16).
        stage1_steps, stage1_lr, stage1_decay_at: Adam stage: steps, learning rate, and the
            fractions of its steps where the rate is multiplied by 0.1 (paper: 10 epochs, 1e-3,
            epochs 5 and 8 -> (0.5, 0.8)).
        density_lr_scale: the entropy model's learning rate relative to ``stage1_lr`` (10: in
            short runs its density otherwise stays at its wide initialisation and the rate
            barely depends on beta).
        stage2_steps, stage2_lr, stage2_decay_at: SGD stage (paper: 10 epochs, 1e-3, epoch 5
            -> (0.5,); 1e-2 here: in 120 steps it reached 49.6 % held-out accuracy against
            1e-3's 39.6 %, measured).
        batch_size: images per step (paper: 64 in stage 1). augment: random crop + flip.
        seed: initialisation, shuffling, noise.
    """

    beta: float = 0.16
    b: int = 24
    stride: int = 4
    stage1_steps: int = 600
    stage1_lr: float = 1e-3
    stage1_decay_at: tuple[float, ...] = (0.5, 0.8)
    density_lr_scale: float = 10.0
    stage2_steps: int = 400
    stage2_lr: float = 1e-2
    stage2_decay_at: tuple[float, ...] = (0.5,)
    batch_size: int = 64
    augment: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        check_fields(self, beta=NON_NEGATIVE, b=WIDTH, stride=stride, stage1_steps=COUNT,
                     stage1_lr=POSITIVE, stage1_decay_at=each(FRACTION),
                     density_lr_scale=POSITIVE, stage2_steps=COUNT, stage2_lr=POSITIVE,
                     stage2_decay_at=each(FRACTION), batch_size=POSITIVE_INT, augment=flag,
                     seed=COUNT)

    @property
    def steps(self) -> int:
        """Optimisation steps of both stages together."""
        return self.stage1_steps + self.stage2_steps


def rate_bits(likelihoods: torch.Tensor) -> torch.Tensor:
    """Total information content ``-sum log2 p`` of a batch's latents, in bits (a scalar)."""
    return -torch.log2(likelihoods).sum()


def stage1_loss(student: EntropicStudent, teacher: nn.Module, x: torch.Tensor,
                beta: float) -> tuple[torch.Tensor, dict[str, float]]:
    """Head-distillation + rate loss on normalized images ``x`` ``(B, 3, 32, 32)`` (student in
    train mode), per image: ``sum_layers sum_elements (student - teacher)^2 + beta * bits``.
    Parts: each layer's summed squared error per image (``sse_layer1`` ..) and ``bits`` per
    image."""
    with torch.no_grad():
        target = teacher_features(teacher, x)[:4]
    feats, lik = student(x)
    n = x.shape[0]
    sse = [(s - t).pow(2).sum() / n for s, t in zip(feats[:4], target, strict=True)]
    bits = rate_bits(lik) / n
    parts = {f"sse_{name}": float(e.detach()) for name, e in zip(STAGES, sse, strict=True)}
    return sum(sse) + beta * bits, {**parts, "bits": float(bits.detach())}


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


def _batches(data: ImageSet, batch_size: int, use_augment: bool, seed: int, stage: str
             ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless ``(uint8 images, labels)`` batches, epoch after epoch, each epoch shuffled and
    augmented from a seed derived from ``(seed, stage, epoch)``; the global torch seed too
    (bottleneck noise). The last batch of an epoch may be smaller."""
    epoch = 0
    while True:
        epoch_seed = derive_seed(seed, stage, str(epoch))
        torch.manual_seed(epoch_seed)
        gen = torch.Generator().manual_seed(epoch_seed)
        order = torch.randperm(len(data), generator=gen)
        for i in range(0, len(data), batch_size):
            idx = order[i : i + batch_size]
            yield (augment(data.images[idx], gen) if use_augment else data.images[idx],
                   data.labels[idx])
        epoch += 1


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


def _lr_at(lr: float, decay_at: tuple[float, ...], step: int, steps: int) -> float:
    """``lr`` x0.1 for each fraction of ``steps`` in ``decay_at`` that ``step`` has reached."""
    return lr * 0.1 ** sum(step >= round(f * steps) for f in decay_at)


def _optimise(opt: torch.optim.Optimizer, batches: Iterator[tuple[torch.Tensor, torch.Tensor]],
              steps: int, lr: float, decay_at: tuple[float, ...],
              step_loss: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, dict]],
              what: str, probe: Callable[[], dict[str, float]] | None = None,
              clip_norm: float | None = None) -> list[dict[str, float]]:
    """``steps`` steps of ``opt`` on ``step_loss(x, labels) -> (loss, parts)``, the learning
    rate (times each parameter group's ``scale``) decayed x0.1 at the fractions ``decay_at``,
    the gradients' total norm clipped to ``clip_norm`` when it is set.
    Returns the curve: per window of ``steps / CURVE_POINTS`` steps, the per-image means of the
    parts, the last step and its learning rate; ``probe()``'s figures are added to the row
    ending each of :data:`PROBES` equal parts of the steps."""
    curve: list[dict[str, float]] = []
    if steps == 0:
        return curve
    ends = {round(steps * (k + 1) / CURVE_POINTS) for k in range(CURVE_POINTS)}
    probes = {round(steps * (k + 1) / PROBES) for k in range(PROBES)}
    sums: dict[str, float] = {}
    params = [p for group in opt.param_groups for p in group["params"]]  # what clipping sees
    n, tic = 0, time.perf_counter()
    for step in track(range(steps), what, total=steps):
        rate = _lr_at(lr, decay_at, step, steps)
        for group in opt.param_groups:
            group["lr"] = rate * group.get("scale", 1.0)
        x, labels = next(batches)
        loss, parts = step_loss(x, labels)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"{what}: the loss is {float(loss)} at step {step + 1}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if clip_norm is not None:
            torch.nn.utils.clip_grad_norm_(params, clip_norm)
        opt.step()
        for k, v in parts.items():
            sums[k] = sums.get(k, 0.0) + v * x.shape[0]
        n += x.shape[0]
        if step + 1 in ends:
            row = {"step": step + 1, "lr": rate, **{k: v / n for k, v in sums.items()},
                   "seconds": time.perf_counter() - tic}
            if probe is not None and step + 1 in probes:
                row.update(probe())
            curve.append(row)
            log.info("%s: %s", what, row)
            sums, n, tic = {}, 0, time.perf_counter()
    return curve


def _adam_with_density(model: nn.Module, density_lr_scale: float) -> torch.optim.Adam:
    """Adam over ``model``'s trainable parameters; the entropy model's (``bottleneck.*``) in a
    group whose learning rate is ``density_lr_scale`` times the rest's (``scale``)."""
    density = list(model.bottleneck.parameters())
    rest = [p for n, p in model.named_parameters()
            if p.requires_grad and not n.startswith("bottleneck.")]
    return torch.optim.Adam([{"params": rest, "scale": 1.0},
                             {"params": density, "scale": density_lr_scale}])


@torch.no_grad()
def relative_errors(student: EntropicStudent, teacher: nn.Module, images: torch.Tensor
                    ) -> dict[str, float]:
    """Per distilled layer, the student's mean squared error against the teacher divided by
    the variance of the teacher's features (over all images, positions and channels) on
    ``uint8`` images ``(N, 3, 32, 32)``, with the latent rounded as it is sent: 0 is a perfect
    copy, 1 is no better than the teacher's mean. Keys ``layer1`` .. ``layer4``. The student
    is left in eval mode."""
    _check_student_and_teacher(student, teacher)
    check_images(images)
    student.eval()
    teacher.eval()
    err = dict.fromkeys(STAGES, 0.0)
    first, second = dict.fromkeys(STAGES, 0.0), dict.fromkeys(STAGES, 0.0)
    count = dict.fromkeys(STAGES, 0)
    for i in range(0, len(images), EVAL_BATCH):
        x = normalize(images[i : i + EVAL_BATCH])
        ours = student(x)[0][:4]
        theirs = teacher_features(teacher, x)[:4]
        for name, s, t in zip(STAGES, ours, theirs, strict=True):
            t64 = t.double()
            err[name] += float((s.double() - t64).pow(2).sum())
            first[name] += float(t64.sum())
            second[name] += float(t64.pow(2).sum())
            count[name] += t.numel()
    return {name: relative_mse_of_sums(err[name], first[name], second[name], count[name])
            for name in STAGES}


def relative_mse_of_sums(sse: float, first: float, second: float, elements: int) -> float:
    """Mean squared error over ``elements`` divided by the reference's variance, from the summed
    squared error and the reference's sum and sum of squares over the same elements."""
    mean = first / elements
    variance = second / elements - mean**2
    if not variance > 0:
        raise ValueError(f"the reference's variance is {variance:g}: a relative MSE needs "
                         "features that vary")
    return sse / elements / variance


@torch.no_grad()
def held_out_accuracy(student: EntropicStudent, data: ImageSet) -> float:
    """Accuracy of ``student`` (eval mode, rounded latent: what the bitstream decodes to) on
    ``data``; the student is left in eval mode."""
    check_image_set(data, "held-out data", student.num_classes)
    student.eval()
    hits = 0
    for i in range(0, len(data), EVAL_BATCH):
        y_hat = student.bottleneck.quantize(student.analyze(data.images[i : i + EVAL_BATCH]))
        hits += int((student.classify_latent(y_hat).argmax(-1)
                     == data.labels[i : i + EVAL_BATCH]).sum())
    return hits / len(data)


def train_stages(student: EntropicStudent, teacher: nn.Module, data: ImageSet,
                 cfg: StudentConfig, held_out: ImageSet | None = None) -> dict[str, Any]:
    """Run stage 1 then stage 2 in place; freezes the coding tables in between. The caller
    sets the thread count. ``teacher`` must be the ResNet the student was built from (same
    stage widths and classes); ``data`` an ImageSet whose labels are the student's classes.

    Returns the history: ``stage1`` and ``stage2`` curves (see :func:`_optimise`: per window,
    stage 1's ``sse_layer1..4`` and ``bits`` per image, stage 2's ``ce`` and ``kl``) and, with
    ``held_out`` images, ``relative_errors`` after stage 1 (:func:`relative_errors`),
    ``acc_after_stage1`` and a ``held_out_acc`` in stage 2's probe rows.
    """
    _check_student_and_teacher(student, teacher)
    check_image_set(data, "data", student.num_classes)
    _check_config(cfg, StudentConfig)
    if held_out is not None:
        check_image_set(held_out, "held_out", student.num_classes)
    if cfg.stride != student.stride or cfg.b != student.b:
        raise ValueError(f"cfg (b={cfg.b}, stride={cfg.stride}) does not describe the student "
                         f"(b={student.b}, stride={student.stride})")
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    history: dict[str, Any] = {}
    # stage 1: encoder, entropy model, decoder
    _set_trainable(student, ("encoder", "bottleneck", "decoder"))
    opt = _adam_with_density(student, cfg.density_lr_scale)
    history["stage1"] = _optimise(
        opt, _batches(data, cfg.batch_size, cfg.augment, cfg.seed, "stage1"), cfg.stage1_steps,
        cfg.stage1_lr, cfg.stage1_decay_at,
        lambda x, _: stage1_loss(student, teacher, normalize(x), cfg.beta),
        f"stage 1 (beta={cfg.beta:g})")
    student.bottleneck.update()
    if held_out is not None:
        history["relative_errors"] = relative_errors(student, teacher, held_out.images)
        history["acc_after_stage1"] = held_out_accuracy(student, held_out)
        log.info("after stage 1: relative errors %s, held-out accuracy %.4f",
                 history["relative_errors"], history["acc_after_stage1"])
    # stage 2: decoder and tail, encoder + entropy model frozen

    def probe() -> dict[str, float]:
        acc = held_out_accuracy(student, held_out)
        _set_trainable(student, names)
        return {"held_out_acc": acc}

    names = ("decoder", "layer2", "layer3", "layer4", "fc")
    params = _set_trainable(student, names)
    opt = torch.optim.SGD(params, lr=cfg.stage2_lr, momentum=0.9, weight_decay=5e-4)
    history["stage2"] = _optimise(
        opt, _batches(data, cfg.batch_size, cfg.augment, cfg.seed, "stage2"), cfg.stage2_steps,
        cfg.stage2_lr, cfg.stage2_decay_at,
        lambda x, labels: stage2_loss(student, teacher, normalize(x), labels),
        f"stage 2 (beta={cfg.beta:g})", probe if held_out is not None else None)
    for p in student.parameters():
        p.requires_grad_(True)
    student.eval()
    return history


def _check_student_and_teacher(student: object, teacher: object) -> None:
    if not isinstance(student, EntropicStudent):
        raise TypeError(f"student must be an EntropicStudent, got {checks.describe(student)}")
    check_teacher(teacher)
    widths = teacher.layer2[0].conv1.in_channels, teacher.fc.out_features
    if widths != (student.t, student.num_classes):
        raise ValueError(f"teacher (stage-1 width {widths[0]}, {widths[1]} classes) is not the "
                         f"one the student was built from ({student.t}, {student.num_classes})")


def _check_config(cfg: object, kind: type) -> None:
    if not isinstance(cfg, kind):
        raise TypeError(f"cfg must be a {kind.__name__}, got {checks.describe(cfg)}")


def _cache_path(kind: str, key: dict) -> Path:
    return cache_dir() / "entropic_student" / f"{kind}-{cache_key(key)}.pt"


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
    fields = key_fields(cfg, {"clip_norm": None})  # unclipped codecs keep their keys
    return _cache_path("codec", {"cfg": fields, "data": data.fingerprint()})


M = TypeVar("M", bound=nn.Module)


@dataclass(frozen=True)
class Fitted(Generic[M]):
    """A trained model (eval mode, coding tables frozen) and where it came from.

    Attributes:
        model: the model. path: its checkpoint (the history is ``path`` with suffix
        ``.json``). cached: loaded from the cache rather than trained now. seconds: training
        wall-clock seconds (0 when cached). history: what the training recorded (JSON-ready;
        the cached copy's when loaded).
    """

    model: M
    path: Path
    cached: bool
    seconds: float
    history: Any


def _cached(path: Path, load: Callable[[Path], M], make: Callable[[], tuple[M, Any]],
            save: Callable[[M, Path], None], *, retrain: bool, cache: bool) -> Fitted[M]:
    """``load(path)`` (and its history) if cached and not ``retrain``, else ``make()`` (timed)
    and ``save`` it and its history atomically (if ``cache``)."""
    notes = path.with_suffix(".json")
    if cache and path.exists() and not retrain:
        log.info("loaded cached %s", path)
        history = json.loads(notes.read_text()) if notes.exists() else None
        return Fitted(load(path), path, True, 0.0, history)
    tic = time.perf_counter()
    model, history = make()
    seconds = time.perf_counter() - tic
    model.eval()
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        for target, write in ((notes, lambda p: p.write_text(json.dumps(history, indent=1))),
                              (path, lambda p: save(model, p))):
            tmp = target.with_name(f".{target.name}.tmp")
            write(tmp)
            os.replace(tmp, target)
    return Fitted(model, path, False, seconds, history)


def train_student(teacher: nn.Module, data: ImageSet, cfg: StudentConfig, *,
                  teacher_key: str, held_out: ImageSet | None = None, retrain: bool = False,
                  cache: bool = True) -> Fitted[EntropicStudent]:
    """A trained student (:func:`train_stages`; ``held_out`` images for its convergence
    checks), cached by ``teacher_key`` (names the teacher, e.g. its checkpoint file), ``cfg``
    and ``data`` (not by ``held_out``)."""
    check_teacher(teacher)
    check_image_set(data, "data", teacher.fc.out_features)
    _check_config(cfg, StudentConfig)
    if not isinstance(teacher_key, str):
        raise TypeError(f"teacher_key must be a str, got {checks.describe(teacher_key)}")

    def make() -> tuple[EntropicStudent, dict[str, Any]]:
        torch.manual_seed(derive_seed(cfg.seed, "student-init"))
        student = EntropicStudent(teacher, cfg.b, cfg.stride)
        return student, train_stages(student, teacher, data, cfg, held_out)

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
        steps, lr, decay_at: Adam: steps, learning rate, fractions of the steps where it is
            multiplied by 0.1. density_lr_scale: the entropy model's learning rate relative to
            ``lr`` (as for the students).
        batch_size: images per step. augment (random crop + flip), seed.
        clip_norm: clip the gradients' total norm to this (default 1, as CompressAI's example
            training; None: no clipping). Without it a codec kept at ``lr`` 1e-3 past ~600
            steps diverged (training MSE 1.7e3 at step 400, 2.4e10 at 800, in an 8,000-step
            run at lambda 3); clipped at 1 the same codec trained smoothly to 31.7 dB in 4,000.
    """

    lam: float = 30.0
    n: int = 64
    m: int = 96
    steps: int = 1000
    lr: float = 1e-3
    decay_at: tuple[float, ...] = (0.5, 0.8)
    density_lr_scale: float = 10.0
    batch_size: int = 64
    augment: bool = True
    seed: int = 0
    clip_norm: float | None = 1.0

    def __post_init__(self) -> None:
        check_fields(self, lam=NON_NEGATIVE, n=POSITIVE_INT, m=WIDTH, steps=COUNT,
                     lr=POSITIVE, decay_at=each(FRACTION), density_lr_scale=POSITIVE,
                     batch_size=POSITIVE_INT, augment=flag, seed=COUNT)
        if self.clip_norm is not None:
            check_fields(self, clip_norm=POSITIVE)


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
    tables (``update()``). Returns its curve (per window of steps: ``mse``, ``bpp``). The caller
    sets the thread count."""
    if not isinstance(codec, ImageCodec):
        raise TypeError(f"codec must be an ImageCodec, got {checks.describe(codec)}")
    check_image_set(data)
    _check_config(cfg, CodecConfig)
    codec.train()
    opt = _adam_with_density(codec, cfg.density_lr_scale)
    curve = _optimise(opt, _batches(data, cfg.batch_size, cfg.augment, cfg.seed, "codec"),
                      cfg.steps, cfg.lr, cfg.decay_at,
                      lambda x, _: rd_loss(codec, x, cfg.lam), f"codec (lambda={cfg.lam:g})",
                      clip_norm=cfg.clip_norm)
    codec.bottleneck.update()
    codec.eval()
    return curve


def train_codec(data: ImageSet, cfg: CodecConfig, *, retrain: bool = False,
                cache: bool = True) -> Fitted[ImageCodec]:
    """A trained image codec (:func:`fit_codec`), cached by ``cfg`` and ``data`` (both checked by
    :func:`codec_path` first)."""
    path = codec_path(cfg, data)

    def make() -> tuple[ImageCodec, list[dict[str, float]]]:
        torch.manual_seed(derive_seed(cfg.seed, "codec-init"))
        codec = ImageCodec(cfg.n, cfg.m)
        return codec, fit_codec(codec, data, cfg)

    return _cached(path, load_codec, make, save_codec, retrain=retrain, cache=cache)
