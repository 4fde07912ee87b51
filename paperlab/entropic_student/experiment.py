"""Reproduction and benchmark of the Entropic Student on CIFAR-10 (spec "Offline protocol").

``run``: the vision substrate's CNN teacher (:data:`paperlab.vision.train.CIFAR_TEACHER`, a
CIFAR-stem ResNet, shared with the other vision systems and cached) classifies; one Entropic
Student per rate weight beta and one factorized-prior image codec per lambda are trained on the
same images with the same number of optimisation steps (cached); every test image is then
encoded alone (batch 1) into a real bitstream, sent as bytes, decoded and classified.
Input-compression baselines: the unmodified teacher fed Pillow JPEG / WebP / AVIF re-encodings
over a quality sweep, and the raw 3,072-byte image. Each row counts the real bytes per image
(file or container, headers included) and the payload alone (headers left out); accuracy with
its Clopper-Pearson interval; each student against the WebP and neural-codec settings nearest
in bytes (exact paired interval and McNemar's p on the same test images). Encode and server
latency at batch 1, end-to-end latency (encode + bytes / bandwidth + server) at several link
bandwidths. Plots: accuracy against bytes per image (real and payload-only), and the students'
and codecs' training curves with the held-out checks. ``--serve 1`` runs the two-process
loopback socket demo instead.

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
from paperlab.core.stats import (
    bootstrap_interval,
    mcnemar,
    paired_difference_interval,
    proportion_interval,
)
from paperlab.core.timing import measure
from paperlab.entropic_student.baselines import (
    available_codecs,
    decode_image,
    encode_image,
    payload_bytes,
)
from paperlab.entropic_student.codec import CHECK, HEADER, unpack
from paperlab.entropic_student.image_codec import ImageCodec, decode_images
from paperlab.entropic_student.model import (
    STAGES,
    EntropicStudent,
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
from paperlab.vision.models import CifarResNetSpec
from paperlab.vision.train import (
    CIFAR_TEACHER,
    CIFAR_TEACHER_TRAINING,
    QUICK_CIFAR_TEACHER,
    QUICK_CIFAR_TEACHER_TRAINING,
    TrainConfig,
    checkpoint_path,
    fit_cifar10,
    predict,
)

log = logging.getLogger(__name__)

STUDENT = "Entropic Student"
NEURAL_CODEC = "Neural codec (factorized prior)"
CODEC_NAMES = {"jpeg": "JPEG", "webp": "WebP", "avif": "AVIF"}
RAW_BYTES = 3 * 32 * 32
BUDGET_BYTES = 300  # the claims' rate budget per image
NEAR_TEACHER = 0.02  # "within 2 points of the teacher", as a fraction
PAIRED = {"webp": "WebP", "neural_codec": NEURAL_CODEC}  # each student against these


@dataclass(frozen=True)
class Config:
    """One reproduction (and benchmark) size.

    Attributes:
        teacher, teacher_train: the teacher and its training (the vision substrate's shared
            CNN teacher; trained once by :func:`~paperlab.vision.train.fit_cifar10` and cached).
        train_per_class: CIFAR-10 training images per class (of 2,000; None: all) for the
            teacher, the students and the codecs.
        student: the students' training (its ``beta`` is replaced by each of ``betas``).
        codec, lambdas: the neural image codec baseline's training (its ``lam`` replaced by
            each of ``lambdas``); its ``steps`` and ``batch_size`` must equal the student's two
            stages together (equal optimisation budgets).
        eval_images: test images evaluated (the first ``eval_images / 10`` per class).
        monitor_images: further test images (the next ``monitor_images / 10`` per class,
            disjoint from the evaluated ones) for the convergence checks during training.
        codecs, qualities: the input-compression sweep.
        bandwidths_mbps: links for end-to-end latency. latency_images: images timed per setting.
        bench_qualities, bench_images, bench_repeats: the benchmark. serve: run the socket demo
            instead of the reproduction; serve_images: images it sends.
        retrain: train the students and codecs again even if cached (the shared teacher is
            never retrained here). threads: torch threads.
    """

    teacher: CifarResNetSpec = CIFAR_TEACHER
    teacher_train: TrainConfig = CIFAR_TEACHER_TRAINING
    train_per_class: int | None = None
    student: StudentConfig = StudentConfig()
    betas: tuple[float, ...] = (0.02, 0.16, 1.28, 10.24)
    codec: CodecConfig = CodecConfig()
    lambdas: tuple[float, ...] = (3.0, 10.0, 30.0, 100.0, 300.0)
    eval_images: int = 2000
    monitor_images: int = 500
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
        for name, kind in (("teacher", CifarResNetSpec), ("teacher_train", TrainConfig),
                           ("student", StudentConfig), ("codec", CodecConfig)):
            if not isinstance(getattr(self, name), kind):
                raise TypeError(f"{name} must be a {kind.__name__}, got "
                                f"{checks.describe(getattr(self, name))}")
        quality = partial(checks.integer, low=1, high=100)
        check_fields(self, train_per_class=_optional_count, betas=each(POSITIVE, empty=False),
                     lambdas=each(POSITIVE, empty=False),
                     eval_images=partial(checks.integer, low=10, high=10000),
                     monitor_images=partial(checks.integer, low=10, high=5000),
                     codecs=each(_codec_name), qualities=each(quality),
                     bandwidths_mbps=each(POSITIVE), latency_images=POSITIVE_INT,
                     bench_qualities=each(quality), bench_images=POSITIVE_INT,
                     bench_repeats=POSITIVE_INT, serve=flag, serve_images=POSITIVE_INT,
                     retrain=flag, threads=POSITIVE_INT)
        if self.eval_images + self.monitor_images > 10000:
            raise ValueError(f"eval_images + monitor_images must be <= 10000 test images, got "
                             f"{self.eval_images} + {self.monitor_images}")
        budget = (self.student.steps, self.student.batch_size)
        if (self.codec.steps, self.codec.batch_size) != budget:
            raise ValueError(
                "the codec's budget must equal the student's (equal optimisation budgets): "
                f"codec.steps, codec.batch_size = {self.codec.steps}, {self.codec.batch_size}; "
                f"student stage1_steps + stage2_steps, batch_size = {budget[0]}, {budget[1]}")

    @classmethod
    def quick(cls) -> Config:
        """A few minutes of one core: the quick teacher on 3,000 training images, 3 students
        and 3 codecs of 150 + 50 steps, 300 test images (+100 held out)."""
        student = StudentConfig(stage1_steps=150, stage2_steps=50)
        return cls(
            teacher=QUICK_CIFAR_TEACHER,
            teacher_train=QUICK_CIFAR_TEACHER_TRAINING,
            train_per_class=300,
            student=student,
            betas=(0.02, 0.16, 1.28),
            codec=CodecConfig(steps=student.steps),
            lambdas=(3.0, 30.0, 300.0),
            eval_images=300,
            monitor_images=100,
            qualities=(5, 20, 50, 95),
            latency_images=5,
            bench_images=10,
            bench_repeats=3,
            serve_images=20,
        )

    @classmethod
    def full(cls) -> Config:
        """The size that fits about 80 minutes of one core of this machine with the teacher
        cached (about 0.85 s a student step, 0.17 s a codec step at batch 64, one thread; the
        students' steps run the 48-384 teacher): the shared CIFAR teacher (all 20,000 training
        images); 4 students (beta 0.02 .. 10.24) of 600 + 400 steps and 5 codecs (lambda 3 ..
        300 by half decades, gradient norm clipped at 1) of 1,000 steps, batch 64, on the same
        20,000 augmented images; 2,000 test images evaluated, 500 held out for the convergence
        checks."""
        return cls()

    def with_options(self, options: Mapping[str, Any]) -> Config:
        """Apply ``--retrain``, ``--betas``, ``--lambdas``, ``--eval-images``, ``--serve`` and
        ``--stage1-steps`` (the students' stage 1; the codecs get the students' new total, so
        the budgets stay equal)."""
        changes: dict[str, Any] = {}
        if "stage1_steps" in options:
            student = dataclasses.replace(self.student, stage1_steps=int(options["stage1_steps"]))
            changes["student"] = student
            changes["codec"] = dataclasses.replace(self.codec, steps=student.steps)
        for key in ("retrain", "serve"):
            if key in options:
                changes[key] = bool(options[key])
        if "eval_images" in options:
            changes["eval_images"] = int(options["eval_images"])
        for key in ("betas", "lambdas"):
            if key in options:
                changes[key] = tuple(options[key])
        return dataclasses.replace(self, **changes)


def _optional_count(value: Any, name: str) -> int | None:
    return None if value is None else POSITIVE_INT(value, name)


def _codec_name(value: Any, name: str) -> str:
    if value not in CODEC_NAMES:
        raise ValueError(f"{name} must be one of {sorted(CODEC_NAMES)}, got "
                         f"{checks.describe(value)}")
    return value


# ---------------------------------------------------------------------------------------------
# data and models


def test_sets(ctx: RunContext, cfg: Config) -> tuple[ImageSet, ImageSet]:
    """The evaluated test images (the first ``eval_images / 10`` of each class) and the held-out
    ones for the convergence checks (the next ``monitor_images / 10`` of each class)."""
    k_eval, k_mon = max(1, cfg.eval_images // 10), max(1, cfg.monitor_images // 10)
    test = load_cifar10("test", ctx.data_root, k_eval + k_mon)
    rank = torch.zeros(len(test), dtype=torch.long)
    for c in test.labels.unique():
        where = torch.nonzero(test.labels == c).flatten()
        rank[where] = torch.arange(len(where))
    return (test.subset(torch.nonzero(rank < k_eval).flatten()),
            test.subset(torch.nonzero(rank >= k_eval).flatten()))


def _teacher(ctx: RunContext, cfg: Config) -> tuple[nn.Module, ImageSet, dict[str, Any]]:
    trained, train, info = fit_cifar10(cfg.teacher, cfg.teacher_train, data_root=ctx.data_root,
                                       per_class=cfg.train_per_class, seed=ctx.seed)
    return trained.model.eval(), train, {"teacher": info}


def trained_models(ctx: RunContext, cfg: Config, monitor: ImageSet | None = None
                   ) -> tuple[nn.Module, dict[float, EntropicStudent], dict[str, Any], ImageSet]:
    """The teacher (cached or trained now), one student per beta (cached or trained now, with
    its convergence checks on ``monitor`` images), how they were made, and the training
    images."""
    teacher, train, info = _teacher(ctx, cfg)
    key = Path(info["teacher"]["checkpoint"]).name
    students, info["students"] = {}, {}
    for beta in cfg.betas:
        scfg = dataclasses.replace(cfg.student, beta=beta, seed=ctx.seed)
        fitted = train_student(teacher, train, scfg, teacher_key=key, held_out=monitor,
                               retrain=cfg.retrain)
        students[beta] = fitted.model
        info["students"][f"{beta:g}"] = {"checkpoint": str(fitted.path), "cached": fitted.cached,
                                         "train_seconds": round(fitted.seconds, 1),
                                         "history": fitted.history}
    return teacher, students, info, train


def student_checkpoint(cfg: Config, beta: float, seed: int = 0,
                       data_root: str | os.PathLike[str] | None = None) -> Path:
    """Where ``run`` with ``cfg`` and ``seed`` caches the student of ``beta``, computed without
    training anything (the file exists only once such a run has trained it). Reads the CIFAR-10
    training images, whose fingerprint is part of the key, from ``data_root`` (or the searched
    roots); raises :class:`~paperlab.core.data.DataNotFoundError` if they are in none."""
    train = load_cifar10("train", data_root, cfg.train_per_class)
    scfg = dataclasses.replace(cfg.student, beta=beta, seed=seed)
    return student_path(teacher_checkpoint(cfg, seed, train).name, scfg, train)


def teacher_checkpoint(cfg: Config, seed: int, train: ImageSet) -> Path:
    """Where ``run`` with ``cfg`` and ``seed`` caches the teacher trained on ``train`` (the
    CIFAR-10 training images; their fingerprint is part of the key), computed without
    training anything."""
    return checkpoint_path(cfg.teacher, dataclasses.replace(cfg.teacher_train, seed=seed), train)


def trained_codecs(cfg: Config, data: ImageSet, seed: int
                   ) -> tuple[dict[float, ImageCodec], dict[str, Any]]:
    """One neural image codec per lambda, trained (or cached) on ``data``, and how."""
    codecs, info = {}, {}
    for lam in cfg.lambdas:
        ccfg = dataclasses.replace(cfg.codec, lam=lam, seed=seed)
        fitted = train_codec(data, ccfg, retrain=cfg.retrain)
        codecs[lam] = fitted.model
        info[f"{lam:g}"] = {"checkpoint": str(fitted.path), "cached": fitted.cached,
                            "train_seconds": round(fitted.seconds, 1),
                            "history": fitted.history}
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
    ``(N,)``). The row's ``acc``, ``bytes_per_image`` and ``payload_bytes_per_image`` (the
    bytes without headers) are means; ``acc_ci95`` is the accuracy's Clopper-Pearson interval
    (the plot's bars)."""

    row: dict[str, Any]
    correct: np.ndarray
    sizes: np.ndarray


def scored(method: str, setting: str, correct: torch.Tensor, sizes: Sequence[float],
           payload: Sequence[float], **columns: Any) -> Scored:
    """A :class:`Scored` from per-image correctness ``(N,)``, bytes and payload bytes;
    ``columns`` (latencies, PSNR) go into the row after the accuracy."""
    hits = correct.numpy().astype(bool)
    return Scored({"method": method, "setting": setting,
                   "bytes_per_image": float(np.mean(sizes)),
                   "payload_bytes_per_image": float(np.mean(payload)), "acc": float(hits.mean()),
                   "acc_ci95": proportion_interval(int(hits.sum()), len(hits)), **columns},
                  hits, np.asarray(sizes, dtype=float))


def container_payload(stream: bytes) -> int:
    """The range-coded words of a one-image bitstream of :func:`encode`: its length without the
    container's header, image count and checksum."""
    payload, shape = unpack(stream)
    if shape[0] != 1:
        raise ValueError(f"expected a one-image bitstream, got {shape[0]} images")
    return len(payload) - CHECK.size


def student_row(student: EntropicStudent, beta: float, test: ImageSet,
                latency_images: int) -> Scored:
    """Each test image encoded alone; accuracy from the decoded bitstreams; mean real bytes."""
    check_image_set(test, "test", student.num_classes)
    streams = [encode(student, test.images[i : i + 1]) for i in range(len(test))]
    pred = torch.cat([decode_and_classify(student, s) for s in streams])
    k = min(latency_images, len(test))
    return scored(
        STUDENT, f"beta={beta:g}", pred == test.labels, [len(s) for s in streams],
        [container_payload(s) for s in streams],
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
        [len(s) for s in streams], [container_payload(s) for s in streams],
        psnr_db=10 * float(np.log10(255.0**2 / max(mse, 1e-12))),
        encode_ms=_per_ms(lambda i: encode(codec, test.images[i : i + 1]), range(k)),
        server_ms=_per_ms(lambda i: _teacher_ms(teacher, decode_images(codec, streams[i])[0]),
                          range(k)),
    )


def _teacher_ms(teacher: nn.Module, image: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return teacher(normalize(image[None])).argmax(-1)


def codec_row(teacher: nn.Module, test: ImageSet, codec: str, quality: int,
              latency_images: int) -> Scored:
    """The teacher fed ``codec`` re-encodings at ``quality``: whole files and their payloads
    (:func:`~paperlab.entropic_student.baselines.payload_bytes`)."""
    check_image_set(test, "test")
    files = [encode_image(img, codec, quality) for img in test.images]
    decoded = torch.stack([decode_image(f) for f in files])
    correct = predict(teacher, decoded) == test.labels
    k = min(latency_images, len(test))
    return scored(
        CODEC_NAMES[codec], f"q={quality}", correct, [len(f) for f in files],
        [payload_bytes(f, codec) for f in files],
        encode_ms=_per_ms(lambda i: encode_image(test.images[i], codec, quality), range(k)),
        server_ms=_per_ms(lambda i: _teacher_ms(teacher, decode_image(files[i])), range(k)))


def versus_nearest(ours: Scored, results: Sequence[Scored], method: str
                   ) -> dict[str, Any] | None:
    """``ours`` against the setting of ``method`` nearest to it in mean bytes per image, on the
    same test images: that setting, its bytes, the accuracy difference (``ours`` minus it, a
    fraction), its exact paired 95 % interval and McNemar's two-sided p. None if ``method`` has
    no setting in ``results``."""
    theirs = [s for s in results if s.row["method"] == method]
    if not theirs:
        return None
    size = ours.row["bytes_per_image"]
    near = min(theirs, key=lambda s: abs(s.row["bytes_per_image"] - size))
    return {"setting": near.row["setting"], "bytes_per_image": near.row["bytes_per_image"],
            "acc_gap": ours.row["acc"] - near.row["acc"],
            "acc_gap_ci95": paired_difference_interval(ours.correct, near.correct),
            "mcnemar_p": mcnemar(ours.correct, near.correct)["p"]}


def _shown(versus: Mapping[str, Any] | None) -> str | None:
    """A table cell for :func:`versus_nearest`: ``"q=20 (196 B): +1.2 [-0.5, 2.9] pts, p=0.18"``."""
    if versus is None:
        return None
    ci = versus["acc_gap_ci95"]
    return (f"{versus['setting']} ({versus['bytes_per_image']:.0f} B): "
            f"{100 * versus['acc_gap']:+.1f} [{100 * ci['lo']:+.1f}, {100 * ci['hi']:+.1f}] pts, "
            f"p={versus['mcnemar_p']:.2g}")


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
        test, monitor = test_sets(ctx, cfg)
        teacher, students, info, train = trained_models(ctx, cfg, monitor)
        codecs_nn, info["codecs"] = trained_codecs(cfg, train, ctx.seed)
        k = min(cfg.latency_images, len(test))
        teacher_raw = scored(
            "teacher, raw image", "uint8", predict(teacher, test.images) == test.labels,
            [RAW_BYTES] * len(test), [RAW_BYTES] * len(test), encode_ms=0.0,
            server_ms=_per_ms(lambda i: _teacher_ms(teacher, test.images[i]), range(k)))
        results = [teacher_raw]
        for beta, student in students.items():
            results.append(student_row(student, beta, test, cfg.latency_images))
            log.info("student beta=%s: %s", beta, results[-1].row)
        for lam, codec in codecs_nn.items():
            results.append(neural_codec_row(codec, lam, teacher, test, cfg.latency_images))
            log.info("neural codec lambda=%s: %s", lam, results[-1].row)
        codecs = available_codecs(cfg.codecs)
        for codec in codecs:
            for quality in cfg.qualities:
                results.append(codec_row(teacher, test, codec, quality, cfg.latency_images))
    for r in results:
        r.row["train_steps"] = {STUDENT: cfg.student.steps,
                                NEURAL_CODEC: cfg.codec.steps}.get(r.row["method"])
    rows = [r.row for r in results]
    add_end_to_end(rows, cfg.bandwidths_mbps)
    comparisons = {}
    for r in results:
        if r.row["method"] == STUDENT:
            versus = {key: versus_nearest(r, results, method) for key, method in PAIRED.items()}
            comparisons[r.row["setting"]] = versus
            for key, value in versus.items():
                r.row[f"vs_nearest_{key}"] = _shown(value)
    info["comparisons"] = comparisons
    _plot(ctx, rows, teacher_raw.row)
    _plot_training(ctx, info)
    summary = _summary(results, teacher_raw, ctx.seed)
    return Result(results=rows, summary=summary, data={"training": info, "config": str(cfg)},
                  notes=_notes(cfg, info, len(test), len(monitor), codecs))


def _summary(results: Sequence[Scored], teacher: Scored, seed: int) -> dict[str, Any]:
    """The claims' figures and their 95 % intervals (bootstraps over the test images of each
    whole comparison: which setting is best or cheapest included)."""
    rows = [r.row for r in results]
    target = teacher.row["acc"] - NEAR_TEACHER
    summary: dict[str, Any] = {"acc_teacher": teacher.row["acc"]}
    for name, method in (("student", STUDENT), ("webp", "WebP"), ("avif", "AVIF"),
                         ("jpeg", "JPEG"), ("neural_codec", NEURAL_CODEC)):
        summary[f"acc_{name}_at_300_bytes"] = best_acc_at(rows, method, BUDGET_BYTES)
        summary[f"bytes_{name}_at_teacher_minus_2pts"] = min_bytes_at(rows, method, target)
    for name, baseline in PAIRED.items():
        summary[f"acc_student_minus_{name}_at_300_bytes_ci95"] = acc_gap_at_interval(
            results, STUDENT, baseline, BUDGET_BYTES, seed=seed)
    saved = bytes_saved_near_teacher(results, teacher, STUDENT, "WebP", seed=seed)
    if saved is not None:
        summary["bytes_saved_vs_webp_at_teacher_minus_2pts"] = saved[0]
        summary["bytes_saved_vs_webp_at_teacher_minus_2pts_ci95"] = saved[1]
    return summary


def _notes(cfg: Config, info: Mapping[str, Any], n_test: int, n_monitor: int,
           codecs: Sequence[str]) -> list[str]:
    teacher, s = info["teacher"], cfg.student
    notes = [
        f"Teacher: the vision substrate's {type(cfg.teacher).__name__}{tuple(cfg.teacher.widths)}"
        f" (CIFAR stem: stage outputs 32/16/8/4 a side), {cfg.teacher_train.epochs} epochs on "
        f"{teacher['train_images']:,} CIFAR-10 training JPEGs (quality-75 copies), cached; "
        f"{n_test:,} test images evaluated; no pretrained weights.",
        f"Students: b={s.b}, encoder stride {s.stride} (latent {s.b}x{32 // s.stride}x"
        f"{32 // s.stride}), decoder to the teacher's 32x32 stage-1 map; stage 1 "
        f"{s.stage1_steps} Adam steps (lr {s.stage1_lr:g}, x0.1 at {s.stage1_decay_at} of "
        f"them), stage 2 {s.stage2_steps} SGD steps (lr {s.stage2_lr:g}, x0.1 at "
        f"{s.stage2_decay_at}), batch {s.batch_size}, on the same {teacher['train_images']:,} "
        f"images{' augmented (crop + flip)' if s.augment else ''}. Loss per image: the summed "
        "squared error over the 4 distilled layers + beta * bits (the authors' form).",
        f"Neural codec: factorized prior (3 Conv5x5 s2 + GDN -> {cfg.codec.m}x4x4 latent, "
        f"N={cfg.codec.n}), MSE (0..255) + lambda * bits/pixel, {cfg.codec.steps} Adam steps "
        f"(lr {cfg.codec.lr:g}, x0.1 at {cfg.codec.decay_at}, gradient norm "
        + (f"clipped at {cfg.codec.clip_norm:g}" if cfg.codec.clip_norm else "not clipped")
        + f"), batch {cfg.codec.batch_size}: "
        "the students' images, augmentation and number of steps (train_steps column); the "
        "unmodified teacher classifies its decoded images.",
        f"Bytes = the real bitstream or file of each image encoded alone (batch 1): the "
        f"student's and neural codec's container is a {HEADER.size + 1}-byte header + "
        f"{CHECK.size}-byte checksum + the range-coded latent; payload = without headers "
        "(container; JPEG markers and tables; WebP RIFF and chunk headers; AVIF ftyp and meta "
        f"boxes). Codecs available in this Pillow: {', '.join(codecs)}.",
        f"Intervals (95%): acc_ci95 Clopper-Pearson over the {n_test:,} test images; "
        "vs_nearest_*: the student minus the WebP / neural-codec setting nearest in bytes, "
        "exact paired interval (points) and McNemar p on the same images; the claims' *_ci95 "
        "are bootstraps over the test images of each whole comparison.",
        f"Latencies: median wall-clock ms per image, batch 1, {cfg.threads} torch thread(s), "
        "on a shared CPU; e2e = encode + bytes*8/bandwidth + server.",
    ]
    for beta, student in info["students"].items():
        h = student["history"] or {}
        if "relative_errors" not in h:
            continue
        rel = "/".join(f"{h['relative_errors'][k]:.2f}" for k in STAGES)
        probes = [row["held_out_acc"] for row in h["stage2"] if "held_out_acc" in row]
        notes.append(
            f"Convergence, beta={beta} ({n_monitor} held-out test images, rounded latent): "
            f"relative MSE of layer1/2/3/4 after stage 1 {rel} (MSE / teacher variance); "
            f"accuracy {100 * h['acc_after_stage1']:.1f} % after stage 1, then "
            + " -> ".join(f"{100 * a:.1f}" for a in probes) + " % through stage 2.")
    return notes


def _plot(ctx: RunContext, rows: Sequence[Mapping[str, Any]], teacher: Mapping[str, Any]
          ) -> None:
    """Accuracy against bytes per image, real (left) and payload only (right), each point with
    its 95 % interval; the teacher on the raw image as a line with its interval as a band."""
    from matplotlib import ticker

    fig, axes = plots.figure(ncols=2, title="CIFAR-10: accuracy vs bytes per image "
                             "(95% intervals)", size=4.0)
    methods = [m for m in dict.fromkeys(r["method"] for r in rows) if m != teacher["method"]]
    for ax, key, label in ((axes[0], "bytes_per_image", "bytes per image (real bitstream / file)"),
                           (axes[1], "payload_bytes_per_image", "payload bytes per image "
                            "(headers left out)")):
        # The band first: errorbars fixes the y-limits to hold its bars, and the band is data.
        ax.axhspan(teacher["acc_ci95"]["lo"], teacher["acc_ci95"]["hi"], color="grey",
                   alpha=0.15)
        ax.axhline(teacher["acc"], color="grey", lw=0.8,
                   label=f"teacher, raw ({RAW_BYTES} B; band: 95% interval)")
        for method in methods:
            pts = sorted((r for r in rows if r["method"] == method), key=lambda r: r[key])
            marker, line = {STUDENT: ("o", "-"), NEURAL_CODEC: ("s", "-")}.get(method,
                                                                                (".", "--"))
            plots.errorbars(ax, [r[key] for r in pts], [r["acc"] for r in pts],
                            [r["acc_ci95"] for r in pts], marker=marker, ls=line, ms=4,
                            capsize=2, elinewidth=0.8, label=method)
        ax.axvline(BUDGET_BYTES, color="black", lw=0.6, ls=":", label=f"{BUDGET_BYTES} B")
        ax.set_xscale("log")
        # Byte counts at 1-2-5 steps: over less than a decade matplotlib would label minor
        # ticks in 10^k notation, on top of each other.
        ax.xaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        ax.set_xlabel(label)
        ax.set_ylabel("top-1 accuracy")
    plots.legend_outside(axes[1])
    plots.save(fig, ctx.plot_path("rate_accuracy"))


def _plot_training(ctx: RunContext, info: Mapping[str, Any]) -> None:
    """The training curves: stage 1's summed squared feature error and bits per image, stage
    2's loss and held-out accuracy (per beta), the codecs' MSE and bits per pixel (per
    lambda), against optimisation steps."""
    fig, axes = plots.figure(nrows=2, ncols=3, title="Training curves (per window of steps)",
                             size=3.8)
    panels = [
        (axes[0][0], "stage1", lambda r: sum(r[f"sse_{k}"] for k in STAGES),
         "stage 1: squared error / image", True),
        (axes[0][1], "stage1", lambda r: r["bits"], "stage 1: bits / image", True),
        (axes[1][0], "stage2", lambda r: 0.5 * (r["ce"] + r["kl"]),
         "stage 2: 0.5 CE + 0.5 KL", False),
        (axes[1][1], "stage2", lambda r: r.get("held_out_acc"),
         "stage 2: held-out accuracy", False),
    ]
    for ax, stage, value, title, log_y in panels:
        for beta, student in info["students"].items():
            curve = [r for r in (student["history"] or {}).get(stage, [])
                     if value(r) is not None]
            ax.plot([r["step"] for r in curve], [value(r) for r in curve], marker=".",
                    label=f"beta={beta}")
        ax.set_title(title)
        ax.set_xlabel("step")
        if log_y:
            ax.set_yscale("log")
    for ax, key, title in ((axes[0][2], "mse", "codec: MSE (0..255)"),
                           (axes[1][2], "bpp", "codec: bits / pixel")):
        for lam, codec in info["codecs"].items():
            curve = codec["history"] or []
            ax.plot([r["step"] for r in curve], [r[key] for r in curve], marker=".",
                    label=f"lambda={lam}")
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.set_yscale("log")
    axes[0][0].legend(fontsize="small")
    axes[0][2].legend(fontsize="small")
    plots.save(fig, ctx.plot_path("training"))


def serve_demo(ctx: RunContext, cfg: Config) -> Result:
    """The split over a loopback socket: the first beta's student, a server process, and the
    edge side sending each test image's bitstream."""
    with torch_threads(cfg.threads):
        _, students, info, _ = trained_models(ctx, dataclasses.replace(cfg, betas=cfg.betas[:1]))
        beta = cfg.betas[0]
        student = students[beta]
        path = info["students"][f"{beta:g}"]["checkpoint"]
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
    notes = [f"Two processes on 127.0.0.1, student beta={beta:g}, one image per message; "
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
        learned = {**{f"{STUDENT} beta={b:g}": s for b, s in students.items()},
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
