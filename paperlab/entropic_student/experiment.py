"""Reproduction and benchmark of the Entropic Student on CIFAR-10 (spec "Offline protocol").

``run``: a ResNet-18 teacher (standard stride-4 stem) is trained here on CIFAR-10 JPEGs (cached);
one Entropic Student per rate weight beta is trained with the two stages (cached); every test
image is then encoded alone (batch 1) into a real bitstream, sent as bytes, decoded and
classified. Baselines: the unmodified teacher fed Pillow JPEG / WebP / AVIF re-encodings over a
quality sweep (JPEG also counted by its header-free payload), and the raw 3,072-byte image.
Accuracy against mean bytes per image (plot), encode and server latency at batch 1, and
end-to-end latency (encode + bytes / bandwidth + server) at several link bandwidths.
``--serve 1`` runs the two-process loopback socket demo instead.

``bench``: encode latency at batch 1 and bytes per image of each student against each codec's
encode at a few qualities, on this CPU (wall clock and thread CPU time).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from paperlab.core import checks, plots
from paperlab.core.config import resolve_config
from paperlab.core.results import Result, RunContext
from paperlab.core.seed import seed_everything, torch_threads
from paperlab.core.stats import bootstrap_interval, proportion_interval
from paperlab.core.timing import measure
from paperlab.entropic_student.baselines import (
    available_codecs,
    decode_image,
    encode_image,
    jpeg_payload_bytes,
)
from paperlab.entropic_student.codec import CHECK, HEADER
from paperlab.entropic_student.image_codec import ImageCodec, decode_images
from paperlab.entropic_student.model import (
    EntropicStudent,
    TeacherSpec,
    check_image_set,
    decode_and_classify,
    encode,
)
from paperlab.entropic_student.serve import SplitServer, split_inference
from paperlab.entropic_student.train import (
    POSITIVE,
    POSITIVE_INT,
    CodecConfig,
    StudentConfig,
    check_fields,
    each,
    flag,
    student_path,
    train_codec,
    train_student,
)
from paperlab.vision.data import ImageSet, load_cifar10, normalize
from paperlab.vision.train import (
    TrainConfig,
    checkpoint_path,
    fit,
    predict,
    with_training_options,
)

log = logging.getLogger(__name__)

STUDENT = "Entropic Student"
NEURAL_CODEC = "Neural codec (factorized prior)"
CODEC_NAMES = {"jpeg": "JPEG", "webp": "WebP", "avif": "AVIF"}
RAW_BYTES = 3 * 32 * 32
BUDGET_BYTES = 300  # the claims' rate budget per image
NEAR_TEACHER = 0.02  # "within 2 points of the teacher", as a fraction


@dataclass(frozen=True)
class Config:
    """One reproduction (and benchmark) size.

    Attributes:
        teacher_train: the teacher's training (ResNet-18, standard stem). train_per_class:
        training images per class (of 2,000). student_images: the first this many of those train
        the students (None: all). student: the students'
        training (its ``beta`` is replaced by each of ``betas``). codec, lambdas: the neural
        image codec baseline's training (its ``lam`` replaced by each of ``lambdas``), on the
        students' training images. eval_images: test images
        (first ``eval_images / 10`` per class). codecs, qualities: the input-compression sweep.
        bandwidths_mbps: links for end-to-end latency. latency_images: images timed per setting.
        bench_qualities, bench_images, bench_repeats: the benchmark. serve: run the socket demo
        instead of the reproduction; serve_images: images it sends. retrain: ignore caches.
        threads: torch threads.
    """

    teacher_train: TrainConfig = TrainConfig(epochs=8, batch_size=128, optimizer="sgd", lr=0.05,
                                             weight_decay=5e-4, warmup_epochs=0.5,
                                             label_smoothing=0.0, augment=True)
    train_per_class: int | None = 1000
    student_images: int | None = 3000
    student: StudentConfig = StudentConfig(stage1_epochs=5, stage1_milestones=(4,),
                                           stage2_epochs=3)
    betas: tuple[float, ...] = (0.1, 1.0, 10.0)
    codec: CodecConfig = CodecConfig(epochs=12, milestones=(9,))
    lambdas: tuple[float, ...] = (3.0, 30.0, 300.0)
    eval_images: int = 1000
    codecs: tuple[str, ...] = ("jpeg", "webp", "avif")
    qualities: tuple[int, ...] = (5, 10, 20, 30, 50, 75, 95)
    bandwidths_mbps: tuple[float, ...] = (0.1, 1.0, 10.0)
    latency_images: int = 50
    bench_qualities: tuple[int, ...] = (10, 50, 90)
    bench_images: int = 50
    bench_repeats: int = 5
    serve: bool = False
    serve_images: int = 100
    retrain: bool = False
    threads: int = 1

    def __post_init__(self) -> None:
        for name, kind in (("teacher_train", TrainConfig), ("student", StudentConfig),
                           ("codec", CodecConfig)):
            if not isinstance(getattr(self, name), kind):
                raise TypeError(f"{name} must be a {kind.__name__}, got "
                                f"{checks.describe(getattr(self, name))}")
        quality = partial(checks.integer, low=1, high=100)
        check_fields(self, train_per_class=_optional_count, student_images=_optional_count,
                     betas=each(POSITIVE, empty=False), lambdas=each(POSITIVE, empty=False),
                     eval_images=partial(checks.integer, low=10, high=10000),
                     codecs=each(_codec_name), qualities=each(quality),
                     bandwidths_mbps=each(POSITIVE), latency_images=POSITIVE_INT,
                     bench_qualities=each(quality), bench_images=POSITIVE_INT,
                     bench_repeats=POSITIVE_INT, serve=flag, serve_images=POSITIVE_INT,
                     retrain=flag, threads=POSITIVE_INT)

    @classmethod
    def quick(cls) -> Config:
        return cls(
            train_per_class=300,
            student_images=1000,
            student=StudentConfig(stage1_epochs=4, stage1_milestones=(3,), stage2_epochs=2),
            betas=(0.1, 1.0, 10.0),
            codec=CodecConfig(epochs=20, milestones=(15,)),
            lambdas=(3.0, 30.0, 300.0),
            eval_images=200,
            qualities=(5, 20, 50, 95),
            latency_images=5,
            bench_images=10,
            bench_repeats=3,
            serve_images=20,
        )

    @classmethod
    def full(cls) -> Config:
        """The size that fits this project's machines: 42 min wall on one torch thread of the
        shared 2-core machine (measured 2026-11-30; per epoch per 1,000 training images:
        teacher 6.5-10 s, student stage 1 / 2 8-11 s, codec 6-9 s). Teacher 8 epochs on 10,000
        training images; 3 students (5 + 3 epochs) and 3 codecs (12 epochs) on 3,000 of them;
        1,000 test images.

        The paper's size: ImageNet (1.28M images), an ImageNet-pretrained ResNet-50 teacher,
        10 + 10 student epochs, beta swept 0.01..2.56, 50,000 validation images. Its CIFAR-10
        analogue (all 20,000 training images, teacher 30 epochs, students 10 + 10 epochs, 5
        betas and 5 lambdas, 10,000 test images) would take roughly 10-15 h of one core here;
        build it as a ``Config``.
        """
        return cls()

    def with_options(self, options: Mapping[str, Any]) -> Config:
        """Apply ``--retrain``, ``--betas``, ``--lambdas``, ``--eval-images``, ``--serve``."""
        cfg = with_training_options(self, options)
        if "serve" in options:
            cfg = dataclasses.replace(cfg, serve=bool(options["serve"]))
        for key in ("betas", "lambdas"):
            if key in options:
                cfg = dataclasses.replace(cfg, **{key: tuple(options[key])})
        return cfg


def _optional_count(value: Any, name: str) -> int | None:
    return None if value is None else POSITIVE_INT(value, name)


def _codec_name(value: Any, name: str) -> str:
    if value not in CODEC_NAMES:
        raise ValueError(f"{name} must be one of {sorted(CODEC_NAMES)}, got "
                         f"{checks.describe(value)}")
    return value


# ---------------------------------------------------------------------------------------------
# models


def trained_models(ctx: RunContext, cfg: Config
                   ) -> tuple[nn.Module, dict[float, EntropicStudent], dict[str, Any], ImageSet]:
    """The teacher and one student per beta (cached or trained now), how they were made, and
    the students' training images."""
    train = load_cifar10("train", ctx.data_root, cfg.train_per_class)
    tcfg = dataclasses.replace(cfg.teacher_train, seed=ctx.seed)
    trained = fit(TeacherSpec(), train, tcfg, retrain=cfg.retrain)
    teacher = trained.model.eval()
    info: dict[str, Any] = {
        "teacher_checkpoint": str(trained.path), "teacher_cached": trained.cached,
        "train_images": len(train), "teacher_train_seconds": round(trained.train_seconds, 1),
        "students": {},
    }
    students = {}
    student_data = students_images(train, cfg, ctx.seed)
    info["student_train_images"] = len(student_data)
    for beta in cfg.betas:
        scfg = dataclasses.replace(cfg.student, beta=beta, seed=ctx.seed)
        student, path, cached, seconds = train_student(
            teacher, student_data, scfg, teacher_key=trained.path.name, retrain=cfg.retrain)
        students[beta] = student
        info["students"][str(beta)] = {"checkpoint": str(path), "cached": cached,
                                       "train_seconds": round(seconds, 1)}
    return teacher, students, info, student_data


def students_images(train: ImageSet, cfg: Config, seed: int) -> ImageSet:
    """The students' training images: the first ``cfg.student_images`` of the teacher's in a
    seeded shuffle (all of them when ``None``)."""
    if cfg.student_images is None:
        return train
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))
    return train.subset(order[: cfg.student_images])


def student_checkpoint(cfg: Config, beta: float, seed: int = 0,
                       data_root: str | os.PathLike[str] | None = None) -> Path:
    """Where ``run`` with ``cfg`` and ``seed`` caches the student of ``beta``, computed without
    training anything (the file exists only once such a run has trained it). Reads the CIFAR-10
    training images, whose fingerprint is part of the key, from ``data_root`` (or the searched
    roots); raises :class:`~paperlab.core.data.DataNotFoundError` if they are in none."""
    train = load_cifar10("train", data_root, cfg.train_per_class)
    teacher = checkpoint_path(TeacherSpec(), dataclasses.replace(cfg.teacher_train, seed=seed),
                              train)
    scfg = dataclasses.replace(cfg.student, beta=beta, seed=seed)
    return student_path(teacher.name, scfg, students_images(train, cfg, seed))


def trained_codecs(cfg: Config, data: ImageSet, seed: int
                   ) -> tuple[dict[float, ImageCodec], dict[str, Any]]:
    """One neural image codec per lambda, trained (or cached) on ``data``, and how."""
    codecs, info = {}, {}
    for lam in cfg.lambdas:
        ccfg = dataclasses.replace(cfg.codec, lam=lam, seed=seed)
        codec, path, cached, seconds = train_codec(data, ccfg, retrain=cfg.retrain)
        codecs[lam] = codec
        info[str(lam)] = {"checkpoint": str(path), "cached": cached,
                          "train_seconds": round(seconds, 1)}
    return codecs, info


# ---------------------------------------------------------------------------------------------
# evaluation


def _per_ms(fn, items: Sequence[Any]) -> float:  # noqa: ANN001 - a callable of one item
    """Median milliseconds of ``fn(item)`` over ``items`` (one warm-up call)."""
    fn(items[0])
    times = []
    for item in items:
        tic = time.perf_counter()
        fn(item)
        times.append(time.perf_counter() - tic)
    return 1e3 * float(np.median(times))


@dataclass(frozen=True)
class Scored:
    """One evaluated setting: its result row, and per test image whether the teacher's (or the
    student's) label was right (``correct``, bool ``(N,)``) and the bytes sent (``sizes``,
    ``(N,)``). The row's ``acc`` and ``bytes_per_image`` are their means; ``acc_ci95`` is the
    accuracy's Clopper-Pearson interval (the plot's bars)."""

    row: dict[str, Any]
    correct: np.ndarray
    sizes: np.ndarray


def scored(method: str, setting: str, correct: torch.Tensor, sizes: Sequence[float],
           **columns: Any) -> Scored:
    """A :class:`Scored` from per-image correctness ``(N,)`` and bytes; ``columns`` (latencies,
    PSNR) go into the row after the accuracy."""
    hits = correct.numpy().astype(bool)
    return Scored({"method": method, "setting": setting,
                   "bytes_per_image": float(np.mean(sizes)), "acc": float(hits.mean()),
                   "acc_ci95": proportion_interval(int(hits.sum()), len(hits)), **columns},
                  hits, np.asarray(sizes, dtype=float))


def student_row(student: EntropicStudent, beta: float, test: ImageSet,
                latency_images: int) -> Scored:
    """Each test image encoded alone; accuracy from the decoded bitstreams; mean real bytes."""
    check_image_set(test, "test", student.num_classes)
    streams = [encode(student, test.images[i : i + 1]) for i in range(len(test))]
    pred = torch.cat([decode_and_classify(student, s) for s in streams])
    k = min(latency_images, len(test))
    return scored(
        STUDENT, f"beta={beta}", pred == test.labels, [len(s) for s in streams],
        encode_ms=_per_ms(lambda i: encode(student, test.images[i : i + 1]), range(k)),
        server_ms=_per_ms(lambda i: decode_and_classify(student, streams[i]), range(k)),
    )


def neural_codec_row(codec: ImageCodec, lam: float, teacher: nn.Module, test: ImageSet,
                     latency_images: int) -> Scored:
    """Each test image encoded alone by the codec; the teacher classifies the decoded images."""
    check_image_set(test, "test")
    streams = [encode(codec, test.images[i : i + 1]) for i in range(len(test))]
    decoded = torch.cat([decode_images(codec, s) for s in streams])
    mse = float(((decoded.float() - test.images.float()) ** 2).mean())
    k = min(latency_images, len(test))
    return scored(
        NEURAL_CODEC, f"lambda={lam:g}", predict(teacher, decoded) == test.labels,
        [len(s) for s in streams],
        psnr_db=10 * float(np.log10(255.0**2 / max(mse, 1e-12))),
        encode_ms=_per_ms(lambda i: encode(codec, test.images[i : i + 1]), range(k)),
        server_ms=_per_ms(lambda i: _teacher_ms(teacher, decode_images(codec, streams[i])[0]),
                          range(k)),
    )


def _teacher_ms(teacher: nn.Module, image: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return teacher(normalize(image[None])).argmax(-1)


def codec_rows(teacher: nn.Module, test: ImageSet, codec: str, quality: int,
               latency_images: int) -> list[Scored]:
    """The teacher fed ``codec`` re-encodings at ``quality`` (JPEG: also its payload count)."""
    check_image_set(test, "test")
    files = [encode_image(img, codec, quality) for img in test.images]
    decoded = torch.stack([decode_image(f) for f in files])
    correct = predict(teacher, decoded) == test.labels
    k = min(latency_images, len(test))
    timed = {
        "encode_ms": _per_ms(lambda i: encode_image(test.images[i], codec, quality), range(k)),
        "server_ms": _per_ms(lambda i: _teacher_ms(teacher, decode_image(files[i])), range(k)),
    }
    out = [scored(CODEC_NAMES[codec], f"q={quality}", correct, [len(f) for f in files], **timed)]
    if codec == "jpeg":
        out.append(scored("JPEG payload only (no headers/tables)", f"q={quality}", correct,
                          [jpeg_payload_bytes(f) for f in files], **timed))
    return out


def add_end_to_end(rows: list[dict[str, Any]], bandwidths_mbps: Sequence[float]) -> None:
    """``e2e_ms_<bw>Mbps`` = encode + bytes * 8 / bandwidth + server, per row (in place)."""
    for row in rows:
        for bw in bandwidths_mbps:
            transfer_ms = row["bytes_per_image"] * 8 / (bw * 1e6) * 1e3
            row[f"e2e_ms_{bw:g}Mbps"] = row["encode_ms"] + transfer_ms + row["server_ms"]


def best_acc_at(rows: Sequence[Mapping[str, Any]], method: str, max_bytes: float
                ) -> float | None:
    """Best accuracy of ``method`` at <= ``max_bytes`` per image (None if no setting fits)."""
    accs = [r["acc"] for r in rows if r["method"] == method and r["bytes_per_image"] <= max_bytes]
    return max(accs) if accs else None


def min_bytes_at(rows: Sequence[Mapping[str, Any]], method: str, min_acc: float
                 ) -> float | None:
    """Fewest bytes per image of ``method`` reaching ``min_acc`` (None if none does)."""
    sizes = [r["bytes_per_image"] for r in rows if r["method"] == method and r["acc"] >= min_acc]
    return min(sizes) if sizes else None


def _holding(ci: dict[str, Any], point: float) -> dict[str, Any]:
    """``ci`` widened, if need be, to hold ``point``: a percentile bootstrap of a best-of or
    fewest-of over settings is biased (each replicate picks its own luckiest setting) and can
    miss the full-sample figure; widening only makes the interval more cautious."""
    return {**ci, "lo": min(ci["lo"], point), "hi": max(ci["hi"], point)}


def acc_gap_at_interval(results: Sequence[Scored], method_a: str, method_b: str,
                        max_bytes: float, seed: int = 0) -> dict[str, Any] | None:
    """95 % interval of ``best_acc_at(a) - best_acc_at(b)`` at ``max_bytes`` per image (accuracy
    as a fraction); None if a method has no setting that fits.

    A bootstrap over the test images of the whole selection: each replicate rescores, on the
    same resampled images, every setting whose mean bytes on the full test set fit, and takes
    each method's best. The settings that fit stay those of the full test set (the budget picks
    operating points; bytes per image vary far less than accuracy), but which of them wins may
    change, so the interval carries the choice of the best setting, not only the paired noise
    of the two settings the full test set picked.
    """
    def fitting(method: str) -> np.ndarray | None:
        cols = [s.correct for s in results
                if s.row["method"] == method and s.row["bytes_per_image"] <= max_bytes]
        return np.stack(cols, 1) if cols else None  # (images, settings)

    a, b = fitting(method_a), fitting(method_b)
    if a is None or b is None:
        return None

    def gap(x: np.ndarray, y: np.ndarray) -> float:
        return float(x.mean(0).max() - y.mean(0).max())

    return _holding(bootstrap_interval(gap, a, b, seed=seed, unit="test images"), gap(a, b))


def bytes_to_reach(correct: np.ndarray, sizes: np.ndarray, target: float) -> float:
    """Fewest mean bytes per image of the settings (columns of ``correct`` and ``sizes``,
    ``(images, settings)``) whose accuracy reaches ``target``; :data:`RAW_BYTES` when none does,
    since sending the raw image always gives the teacher its own accuracy."""
    reached = correct.mean(0) >= target
    return float(sizes.mean(0)[reached].min()) if reached.any() else float(RAW_BYTES)


def bytes_saved_near_teacher(results: Sequence[Scored], teacher: Scored, method: str,
                             baseline: str, seed: int = 0
                             ) -> tuple[float, dict[str, Any]] | None:
    """Bytes per image ``baseline`` needs to come within 2 points of the teacher minus those
    ``method`` needs (:func:`bytes_to_reach`; > 0: ``method`` sends fewer), and its 95 %
    interval; None if either method has no setting in ``results``.

    The interval is a bootstrap over the test images of the whole procedure: the teacher's
    accuracy (so the target), each setting's accuracy and mean bytes, and so which setting is
    the cheapest to reach the target, all recomputed on the resampled images.
    """
    def stacked(name: str) -> tuple[np.ndarray, np.ndarray] | None:
        mine = [s for s in results if s.row["method"] == name]
        if not mine:
            return None
        return np.stack([s.correct for s in mine], 1), np.stack([s.sizes for s in mine], 1)

    ours, theirs = stacked(method), stacked(baseline)
    if ours is None or theirs is None:
        return None

    def saved(teacher_correct: np.ndarray, correct_a: np.ndarray, sizes_a: np.ndarray,
              correct_b: np.ndarray, sizes_b: np.ndarray) -> float:
        target = teacher_correct.mean() - NEAR_TEACHER
        return bytes_to_reach(correct_b, sizes_b, target) - bytes_to_reach(correct_a, sizes_a,
                                                                            target)

    point = saved(teacher.correct, *ours, *theirs)
    ci = bootstrap_interval(saved, teacher.correct, *ours, *theirs, seed=seed,
                            unit="test images")
    return point, _holding(ci, point)


# ---------------------------------------------------------------------------------------------
# run


def run(ctx: RunContext, config: Config | None = None) -> Result:
    cfg = resolve_config(ctx, Config, config)
    seed_everything(ctx.seed)
    if cfg.serve:
        return serve_demo(ctx, cfg)
    with torch_threads(cfg.threads):
        teacher, students, info, student_data = trained_models(ctx, cfg)
        test = load_cifar10("test", ctx.data_root, max(1, cfg.eval_images // 10))
        k = min(cfg.latency_images, len(test))
        teacher_raw = scored(
            "teacher, raw image", "uint8", predict(teacher, test.images) == test.labels,
            [RAW_BYTES] * len(test), encode_ms=0.0,
            server_ms=_per_ms(lambda i: _teacher_ms(teacher, test.images[i]), range(k)))
        results = [teacher_raw]
        for beta, student in students.items():
            results.append(student_row(student, beta, test, cfg.latency_images))
            log.info("student beta=%s: %s", beta, results[-1].row)
        codecs_nn, info["codecs"] = trained_codecs(cfg, student_data, ctx.seed)
        for lam, codec in codecs_nn.items():
            results.append(neural_codec_row(codec, lam, teacher, test, cfg.latency_images))
            log.info("neural codec lambda=%s: %s", lam, results[-1].row)
        codecs = available_codecs(cfg.codecs)
        for codec in codecs:
            for quality in cfg.qualities:
                results.extend(codec_rows(teacher, test, codec, quality, cfg.latency_images))
    rows = [r.row for r in results]
    add_end_to_end(rows, cfg.bandwidths_mbps)
    acc_teacher = teacher_raw.row["acc"]
    _plot(ctx, rows, teacher_raw.row)
    target = acc_teacher - NEAR_TEACHER
    summary: dict[str, Any] = {
        "acc_teacher": acc_teacher,
        "acc_student_at_300_bytes": best_acc_at(rows, STUDENT, BUDGET_BYTES),
        "acc_webp_at_300_bytes": best_acc_at(rows, "WebP", BUDGET_BYTES),
        "acc_avif_at_300_bytes": best_acc_at(rows, "AVIF", BUDGET_BYTES),
        "bytes_student_at_teacher_minus_2pts": min_bytes_at(rows, STUDENT, target),
        "bytes_webp_at_teacher_minus_2pts": min_bytes_at(rows, "WebP", target),
        "bytes_avif_at_teacher_minus_2pts": min_bytes_at(rows, "AVIF", target),
        "acc_neural_codec_at_300_bytes": best_acc_at(rows, NEURAL_CODEC, BUDGET_BYTES),
        "bytes_neural_codec_at_teacher_minus_2pts": min_bytes_at(rows, NEURAL_CODEC, target),
    }
    # The claims' 95 % intervals: bootstraps over the test images of each whole comparison
    # (which setting is best or cheapest included), on the scale of the claims' figures.
    for baseline, name in (("WebP", "webp"), (NEURAL_CODEC, "neural_codec")):
        summary[f"acc_student_minus_{name}_at_300_bytes_ci95"] = acc_gap_at_interval(
            results, STUDENT, baseline, BUDGET_BYTES, seed=ctx.seed)
    saved = bytes_saved_near_teacher(results, teacher_raw, STUDENT, "WebP", seed=ctx.seed)
    if saved is not None:
        summary["bytes_saved_vs_webp_at_teacher_minus_2pts"] = saved[0]
        summary["bytes_saved_vs_webp_at_teacher_minus_2pts_ci95"] = saved[1]
    notes = [
        f"Teacher: torchvision ResNet-18 (standard stem) trained here for "
        f"{cfg.teacher_train.epochs} epochs on {info['train_images']} CIFAR-10 training JPEGs "
        f"(quality-75 copies); {len(test)} test images; no pretrained weights.",
        f"Students: b={cfg.student.b}, stage 1 {cfg.student.stage1_epochs} epochs + stage 2 "
        f"{cfg.student.stage2_epochs} epochs on {info['student_train_images']} of the teacher's "
        f"training images; beta is per bit "
        "per input pixel with mean-reduced MSEs (not the paper's scale).",
        f"Bytes = length of the real bitstream of each image encoded alone (batch 1): "
        f"{HEADER.size + 1}-byte header (shape, image count, CRC-32) + {CHECK.size}-byte latent "
        "checksum + range-coded latent; codecs: the whole Pillow file.",
        f"Codecs available in this Pillow: {', '.join(codecs)}.",
        f"Neural image codec: our factorized-prior codec (3 Conv5x5 s2 + GDN -> "
        f"{cfg.codec.m}x4x4 latent, N={cfg.codec.n}; same entropy bottleneck, range coder and "
        f"container as the student), one per lambda in {list(cfg.lambdas)}, trained "
        f"{cfg.codec.epochs} epochs (MSE on 0..255 + lambda * bits/pixel) on the students' "
        f"{info['student_train_images']} training images; the unmodified teacher classifies "
        "its decoded images.",
        f"Latencies: median wall-clock ms per image, batch 1, {cfg.threads} torch thread(s), on "
        "a shared loaded CPU; e2e = encode + bytes*8/bandwidth + server.",
        f"Intervals (95%): acc_ci95 per setting is Clopper-Pearson over the {len(test)} test "
        "images (the plot's bars). The claims' *_ci95 are bootstraps over the test images of "
        "each whole comparison: the best accuracy at <= 300 B per method (settings that fit "
        "on the full test set; the best re-picked per replicate), and the bytes WebP needs "
        "minus the student's to come within 2 points of the teacher (target, accuracies, bytes "
        f"and cheapest setting recomputed; a method that never gets there counts the raw "
        f"{RAW_BYTES:,} B).",
    ]
    return Result(results=rows, summary=summary, data={"training": info, "config": str(cfg)},
                  notes=notes)


def _plot(ctx: RunContext, rows: Sequence[Mapping[str, Any]], teacher: Mapping[str, Any]
          ) -> None:
    """Accuracy against bytes per image, each point with its 95 % interval; the teacher on the
    raw image as a line with its interval as a band."""
    fig, ax = plots.figure(title="CIFAR-10: accuracy vs bytes per image (95% intervals)",
                           size=4.0)
    # The band first: errorbars fixes the y-limits to hold its bars, and the band is data.
    ax.axhspan(teacher["acc_ci95"]["lo"], teacher["acc_ci95"]["hi"], color="grey", alpha=0.15)
    ax.axhline(teacher["acc"], color="grey", lw=0.8,
               label=f"teacher, raw ({RAW_BYTES} B; band: 95% interval)")
    methods = [m for m in dict.fromkeys(r["method"] for r in rows) if m != teacher["method"]]
    for method in methods:
        pts = sorted((r for r in rows if r["method"] == method),
                     key=lambda r: r["bytes_per_image"])
        marker, line = {STUDENT: ("o", "-"), NEURAL_CODEC: ("s", "-")}.get(method, (".", "--"))
        plots.errorbars(ax, [r["bytes_per_image"] for r in pts], [r["acc"] for r in pts],
                        [r["acc_ci95"] for r in pts], marker=marker, ls=line, ms=4, capsize=2,
                        elinewidth=0.8, label=method)
    ax.axvline(BUDGET_BYTES, color="black", lw=0.6, ls=":", label=f"{BUDGET_BYTES} B budget")
    ax.set_xscale("log")
    ax.set_xlabel("bytes per image (real bitstream / file)")
    ax.set_ylabel("top-1 accuracy")
    plots.legend_outside(ax)
    plots.save(fig, ctx.plot_path("rate_accuracy"))


def serve_demo(ctx: RunContext, cfg: Config) -> Result:
    """The split over a loopback socket: the first beta's student, a server process, and the
    edge side sending each test image's bitstream."""
    with torch_threads(cfg.threads):
        teacher, students, info, _ = trained_models(
            ctx, dataclasses.replace(cfg, betas=cfg.betas[:1]))
        student = students[cfg.betas[0]]
        path = info["students"][str(cfg.betas[0])]["checkpoint"]
        test = load_cifar10("test", ctx.data_root, max(1, cfg.serve_images // 10))
        with SplitServer(path, timeout_s=60) as server:
            rows = split_inference(student, server, test.images)
        local = torch.cat([decode_and_classify(student, encode(student, test.images[i : i + 1]))
                           for i in range(len(test))])
    labels = torch.tensor([r["label"] for r in rows])
    summary = {
        "images": len(rows),
        "mean_bytes_sent": float(np.mean([r["bytes"] for r in rows])),
        "median_end_to_end_ms": float(np.median([r["end_to_end_ms"] for r in rows])),
        "median_encode_ms": float(np.median([r["encode_ms"] for r in rows])),
        "median_server_ms": float(np.median([r["server_ms"] for r in rows])),
        "acc": float((labels == test.labels).float().mean()),
        "agrees_with_local": bool(torch.equal(labels, local)),
    }
    notes = [f"Two processes on 127.0.0.1, student beta={cfg.betas[0]}, one image per message; "
             "end_to_end_ms = encode + socket round trip (server decode + classify included)."]
    return Result(results=rows, summary=summary, data={"training": info}, notes=notes)


# ---------------------------------------------------------------------------------------------
# bench


def bench(ctx: RunContext, config: Config | None = None) -> Result:
    cfg = resolve_config(ctx, Config, config)
    seed_everything(ctx.seed)
    rows = []
    with torch_threads(cfg.threads):
        _, students, _, student_data = trained_models(ctx, cfg)
        codecs_nn, _ = trained_codecs(cfg, student_data, ctx.seed)
        test = load_cifar10("test", ctx.data_root, max(1, cfg.bench_images // 10))
        images = test.images[: cfg.bench_images]
        n = images.shape[0]
        contenders: dict[str, tuple[Any, float]] = {}
        learned = {**{f"{STUDENT} beta={b}": s for b, s in students.items()},
                   **{f"{NEURAL_CODEC} lambda={lam:g}": c for lam, c in codecs_nn.items()}}
        for name, model in learned.items():
            sizes = [len(encode(model, images[i : i + 1])) for i in range(n)]
            contenders[name] = (lambda m=model: [encode(m, images[i : i + 1]) for i in range(n)],
                                float(np.mean(sizes)))
        for codec in available_codecs(cfg.codecs):
            for q in cfg.bench_qualities:
                sizes = [len(encode_image(images[i], codec, q)) for i in range(n)]
                contenders[f"{CODEC_NAMES[codec]} q={q}"] = (
                    lambda c=codec, q=q: [encode_image(images[i], c, q) for i in range(n)],
                    float(np.mean(sizes)))
        for name, (fn, size) in contenders.items():
            timing = measure(fn, warmup=1, repeats=cfg.bench_repeats)
            rows.append({"encoder": name, "bytes_per_image": size,
                         "encode_ms_per_image": 1e3 * timing.median / n,
                         "encode_cpu_ms_per_image": 1e3 * timing.cpu_median / n})
    student_ms = [r["encode_ms_per_image"] for r in rows if r["encoder"].startswith(STUDENT)]
    codec_ms = [r["encode_ms_per_image"] for r in rows if r["encoder"].startswith(NEURAL_CODEC)]
    summary = {"student_encode_ms_batch1": float(np.median(student_ms)),
               "neural_codec_encode_ms_batch1": float(np.median(codec_ms))}
    for codec in available_codecs(cfg.codecs):
        ms = [r["encode_ms_per_image"] for r in rows
              if r["encoder"].startswith(CODEC_NAMES[codec] + " ")]
        summary[f"{codec}_encode_ms_batch1"] = float(np.median(ms))
    notes = [f"Batch 1, {n} test images encoded one by one per repeat, median of "
             f"{cfg.bench_repeats} repeats, {cfg.threads} torch thread(s), shared loaded CPU. "
             "Student / neural codec encode = analysis network + range coding + header."]
    return Result(results=rows, summary=summary, notes=notes)
