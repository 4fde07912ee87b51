"""Why the student trails WebP above ~200 bytes: the teacher's stage features, side by side.

On the run's evaluated test images, each way of getting the teacher's stage features
(``layer1..layer4``) is scored by its relative MSE per stage against the teacher's features on
the raw image (the MSE over images, positions and channels divided by the variance of the
teacher's features there: 0 is a perfect copy, 1 no better than the teacher's mean), with a
bootstrap interval over the images, and by its accuracy:

* the trained student as it classifies: its decoder's output (the rounded latent decoded from
  each image's own bitstream) through its own ``layer2..4`` and head, fine-tuned in stage 2;
* the same decoder output through the teacher's own, frozen ``layer2..4`` and head;
* the teacher on WebP reconstructions and on the neural codec's reconstructions (the codec's
  decoded bitstreams), i.e. the reconstruction pushed through the teacher's early layers; with
  ``codec_steps`` also codecs trained longer than the students' budget (trained and cached
  here), the codec baseline nearer convergence;
* the student after stage 1, from its training record (held-out images, no interval): in stage
  1 the student's tail is a frozen copy of the teacher's, so its record is the stage-1 decoder
  through the teacher's tail.

Side by side, each student (decoder -> the teacher's tail, so both sides pass through the
teacher's layers) against the WebP setting and the neural codec setting nearest in mean bytes:
per stage, the difference of relative MSEs with a paired bootstrap interval over the images,
and the accuracy differences with exact paired intervals.

:func:`diagnose` measures given models (no I/O); :func:`run_diagnosis` loads the run's cached
models through the experiment's own functions.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from paperlab.core import checks
from paperlab.core.results import Result, RunContext, markdown, markdown_table
from paperlab.core.seed import seed_everything, torch_threads
from paperlab.core.stats import (
    bootstrap_interval,
    paired_difference_interval,
    proportion_interval,
)
from paperlab.entropic_student.baselines import available_codecs, decode_image, encode_image
from paperlab.entropic_student.experiment import (
    NEURAL_CODEC,
    RAW_BYTES,
    STUDENT,
    Config,
    teacher_checkpoint,
    test_sets,
    trained_codecs,
    trained_models,
)
from paperlab.entropic_student.image_codec import ImageCodec, decode_images
from paperlab.entropic_student.model import (
    STAGES,
    EntropicStudent,
    check_image_set,
    check_teacher,
    decode_latent,
    encode,
    teacher_features,
)
from paperlab.entropic_student.train import (
    EVAL_BATCH,
    NON_NEGATIVE,
    POSITIVE_INT,
    codec_path,
    each,
    relative_mse_of_sums,
    student_path,
    train_codec,
)
from paperlab.vision.data import ImageSet, load_cifar10, normalize

WEBP_QUALITIES = (5, 10, 20, 30, 50, 75)  # 145..341 B per CIFAR-10 image: the students' range
N_BOOT = 2000
OWN_TAIL = "decoder -> own tail (stage 2)"
TEACHER_TAIL = "decoder -> teacher's tail (frozen)"
AFTER_STAGE1 = "stage-1 decoder -> teacher's tail (training record)"
RECONSTRUCTION = "reconstruction -> teacher"
STAGE_TRAINING = (
    "Stage 1 trains the encoder, the entropy model and the decoder (Adam); the student's copies "
    "of the teacher's layer2..4 and head stay frozen in eval mode (BatchNorm statistics too), so "
    "after stage 1 the student's tail is exactly the teacher's. Stage 2 trains the decoder, "
    "layer2, layer3, layer4 and fc (SGD, BatchNorm in train mode, so its running statistics move "
    "too) on 0.5 CE + 0.5 KL to the teacher's logits; the encoder and the entropy model stay "
    "frozen. No student variant is fine-tuned with the tail frozen: the stage-1 student is that "
    "variant before stage 2, and its record is the row marked 'training record'.")


# ---------------------------------------------------------------------------------------------
# relative MSE per stage, per image


def _tensors(values: object, name: str) -> list[torch.Tensor]:
    if not isinstance(values, (list, tuple)) or not all(isinstance(v, torch.Tensor)
                                                        for v in values):
        raise TypeError(f"{name} must be a list of tensors (one per stage), got "
                        f"{checks.describe(values)}")
    if not values:
        raise ValueError(f"{name} must hold at least one stage's features")
    return list(values)


def stage_sums(features: Sequence[torch.Tensor], reference: Sequence[torch.Tensor]
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, ...]]:
    """Per image and stage, what :func:`relative_mse` needs: the summed squared error of
    ``features`` against ``reference`` ``(N, S)``, the sum and the sum of squares of
    ``reference`` ``(N, S)`` (float64), and the elements per image of each stage. Stage ``s`` of
    both is a ``(N, ...)`` tensor of one shape; every stage has the same ``N >= 1``."""
    features, reference = _tensors(features, "features"), _tensors(reference, "reference")
    if len(features) != len(reference):
        raise ValueError(f"features has {len(features)} stages, reference {len(reference)}")
    n = reference[0].shape[0] if reference[0].ndim else 0
    for s, (f, r) in enumerate(zip(features, reference, strict=True)):
        if f.shape != r.shape:
            raise ValueError(f"stage {s}: features {tuple(f.shape)} and reference "
                             f"{tuple(r.shape)} differ in shape")
        if r.ndim < 2 or r.shape[0] != n or n == 0 or r.shape[1:].numel() == 0:
            raise ValueError(f"stage {s}: expected (N, ...) with the same N >= 1 in every stage "
                             f"and elements per image, got {tuple(r.shape)}")

    def per_image(t: torch.Tensor) -> np.ndarray:
        return t.detach().double().flatten(1).sum(1).cpu().numpy()

    sse = np.stack([per_image((f.double() - r.double()).pow(2))
                    for f, r in zip(features, reference, strict=True)], 1)
    first = np.stack([per_image(r) for r in reference], 1)
    second = np.stack([per_image(r.double().pow(2)) for r in reference], 1)
    return sse, first, second, tuple(int(r.shape[1:].numel()) for r in reference)


def relative_mse(sse: np.ndarray, first: np.ndarray, second: np.ndarray, count: int) -> float:
    """One stage's relative MSE from per-image sums (:func:`stage_sums`, one column each): the
    mean squared error over all images and elements divided by the variance of the reference
    over all images and elements (``count`` elements per image)."""
    count = checks.integer(count, "count", low=1)
    arrays = [np.asarray(a, dtype=np.float64) for a in (sse, first, second)]
    if any(a.ndim != 1 for a in arrays) or len({len(a) for a in arrays}) != 1 or not len(sse):
        raise ValueError("sse, first and second must be 1-d arrays of one length >= 1 (one value "
                         f"per image), got shapes {[a.shape for a in arrays]}")
    sse, first, second = arrays
    return float(relative_mse_of_sums(sse.sum(), first.sum(), second.sum(), len(sse) * count))


# ---------------------------------------------------------------------------------------------
# measuring


@dataclass(frozen=True)
class Probe:
    """One way of getting the teacher's stage features for the test images, measured.

    Attributes:
        source, setting, features: what it is (``"WebP"``, ``"q=30"``, ``RECONSTRUCTION``).
        sizes: bytes sent per image ``(N,)``. sse: summed squared error per image and stage
        against the teacher on the raw image ``(N, 4)``. correct: its label was right ``(N,)``.
    """

    source: str
    setting: str
    features: str
    sizes: np.ndarray
    sse: np.ndarray
    correct: np.ndarray

    @property
    def name(self) -> str:
        """``"<source> <setting>"``."""
        return f"{self.source} {self.setting}"


def _teacher_tail(teacher: nn.Module, stage1: torch.Tensor) -> list[torch.Tensor]:
    # The student's tail is built from the teacher's attributes of the same names.
    return EntropicStudent.tail(teacher, stage1)  # type: ignore[arg-type]


def _decoded(student: EntropicStudent, y_hat: torch.Tensor,
             tail: Callable[[torch.Tensor], list[torch.Tensor]]
             ) -> Callable[[slice], list[torch.Tensor]]:
    """The features of a slice of the images: the student's decoder output of their rounded
    latents ``y_hat``, then ``tail`` of it."""
    def feed(sl: slice) -> list[torch.Tensor]:
        stage1 = student.decoder(y_hat[sl])
        return [stage1, *tail(stage1)]

    return feed


def _check_models(teacher: object, students: object, codecs: object) -> None:
    check_teacher(teacher)
    for what, kind, models in (("students", EntropicStudent, students),
                               ("codecs", ImageCodec, codecs)):
        if not isinstance(models, Mapping) or not all(isinstance(m, kind)
                                                      for m in models.values()):
            raise TypeError(f"{what} must map rate weights to {kind.__name__}s, got "
                            f"{checks.describe(models)}")
    width, classes = teacher.layer1[-1].conv2.out_channels, teacher.fc.out_features
    for beta, student in students.items():
        if (student.t, student.num_classes) != (width, classes):
            raise ValueError(f"the student of beta={beta} (stage-1 width {student.t}, "
                             f"{student.num_classes} classes) was not built from this teacher "
                             f"({width}, {classes})")


def _codec_setting(key: float | str) -> str:
    """A codec's row label: ``lambda=<key>`` for a rate weight, else the key itself."""
    return key if isinstance(key, str) else f"lambda={key:g}"


@torch.inference_mode()
def measure(teacher: nn.Module, students: Mapping[float, EntropicStudent],
            codecs: Mapping[float | str, ImageCodec], test: ImageSet,
            webp_qualities: Sequence[int] = WEBP_QUALITIES
            ) -> tuple[list[Probe], np.ndarray, np.ndarray, tuple[int, ...]]:
    """Every probe of the module docstring on ``test`` (each image encoded alone; WebP rows
    only if this Pillow writes WebP), and the teacher's per-image sums and squares per stage on
    the raw images (the relative MSE's denominators, :func:`stage_sums`). The teacher on the
    raw image is the first probe (zero error). ``codecs`` are keyed by their rate weight or by
    a label of their own (a longer-trained codec)."""
    _check_models(teacher, students, codecs)
    check_image_set(test, "test", teacher.fc.out_features)
    qualities = each(partial(checks.integer, low=1, high=100))(webp_qualities, "webp_qualities")
    teacher.eval()
    images, n = test.images, len(test)
    # per probe: its description, bytes per image, and its features for a slice of the images
    specs: list[tuple[str, str, str, np.ndarray]] = [
        ("teacher, raw image", "uint8", RECONSTRUCTION, np.full(n, float(RAW_BYTES)))]
    feeds: list[Callable[[slice], list[torch.Tensor]]] = [
        lambda sl: teacher_features(teacher, normalize(images[sl]))]

    def through_teacher(recon: torch.Tensor) -> Callable[[slice], list[torch.Tensor]]:
        return lambda sl: teacher_features(teacher, normalize(recon[sl]))

    for beta, student in students.items():
        student.eval()
        streams = [encode(student, images[i : i + 1]) for i in range(n)]
        y_hat = torch.cat([decode_latent(student, s) for s in streams])
        sizes = np.array([len(s) for s in streams], dtype=float)
        for features, tail in ((OWN_TAIL, student.tail),
                               (TEACHER_TAIL, partial(_teacher_tail, teacher))):
            specs.append((STUDENT, f"beta={beta:g}", features, sizes))
            feeds.append(_decoded(student, y_hat, tail))
    for lam, codec in codecs.items():
        codec.eval()
        streams = [encode(codec, images[i : i + 1]) for i in range(n)]
        recon = torch.cat([decode_images(codec, s) for s in streams])
        specs.append((NEURAL_CODEC, _codec_setting(lam), RECONSTRUCTION,
                      np.array([len(s) for s in streams], dtype=float)))
        feeds.append(through_teacher(recon))
    if "webp" in available_codecs(("webp",)):
        for q in qualities:
            files = [encode_image(img, "webp", q) for img in images]
            specs.append(("WebP", f"q={q}", RECONSTRUCTION,
                          np.array([len(f) for f in files], dtype=float)))
            feeds.append(through_teacher(torch.stack([decode_image(f) for f in files])))
    sse = np.zeros((len(feeds), n, len(STAGES)))
    correct = np.zeros((len(feeds), n), dtype=bool)
    first, second = np.zeros((n, len(STAGES))), np.zeros((n, len(STAGES)))
    count: tuple[int, ...] = ()
    for start in range(0, n, EVAL_BATCH):
        sl = slice(start, start + EVAL_BATCH)
        raw = feeds[0](sl)
        reference = raw[:4]
        for k, feed in enumerate(feeds):
            out = raw if k == 0 else feed(sl)
            sse[k, sl], first[sl], second[sl], count = stage_sums(out[:4], reference)
            correct[k, sl] = (out[-1].argmax(-1) == test.labels[sl]).numpy()
    probes = [Probe(*spec, sse[k], correct[k]) for k, spec in enumerate(specs)]
    return probes, first, second, count


# ---------------------------------------------------------------------------------------------
# the tables


def _rel_interval(count: int, seed: int, n_boot: int, *samples: np.ndarray) -> dict[str, Any]:
    """Bootstrap over the images of one relative MSE (``sse, first, second``) or of the
    difference of two on the same images (``sse_a, sse_b, first, second``)."""
    def statistic(*s: np.ndarray) -> float:
        if len(s) == 3:
            return relative_mse(*s, count)
        return relative_mse(s[0], *s[2:], count) - relative_mse(s[1], *s[2:], count)

    return bootstrap_interval(statistic, *samples, n_boot=n_boot, seed=seed, unit="test images")


def _probe_row(p: Probe, first: np.ndarray, second: np.ndarray, count: tuple[int, ...],
               seed: int, n_boot: int) -> dict[str, Any]:
    row: dict[str, Any] = {"source": p.source, "setting": p.setting, "features": p.features,
                           "bytes_per_image": float(p.sizes.mean())}
    for s, stage in enumerate(STAGES):
        row[f"rel_mse_{stage}"] = relative_mse(p.sse[:, s], first[:, s], second[:, s], count[s])
        row[f"rel_mse_{stage}_ci95"] = (
            None if not p.sse[:, s].any()  # the teacher itself: exactly 0
            else _rel_interval(count[s], seed, n_boot, p.sse[:, s], first[:, s], second[:, s]))
    row["acc"] = float(p.correct.mean())
    row["acc_ci95"] = proportion_interval(int(p.correct.sum()), len(p.correct))
    return row


def _record_rows(histories: Mapping[float, Any], monitor_images: int) -> list[dict[str, Any]]:
    """The students' stage-1 checks from their training records, as rows (no bytes; relative
    MSEs without intervals; accuracy on ``monitor_images`` held-out images)."""
    rows = []
    for beta, h in histories.items():
        if not isinstance(h, Mapping) or "relative_errors" not in h or not monitor_images:
            continue
        hits = round(h["acc_after_stage1"] * monitor_images)
        rows.append({"source": STUDENT, "setting": f"beta={beta:g}", "features": AFTER_STAGE1,
                     "bytes_per_image": None,
                     **{k: v for stage in STAGES
                        for k, v in ((f"rel_mse_{stage}", h["relative_errors"][stage]),
                                     (f"rel_mse_{stage}_ci95", None))},
                     "acc": h["acc_after_stage1"],
                     "acc_ci95": proportion_interval(hits, monitor_images)})
    return rows


def _side_by_side(ours: Probe, own: Probe, theirs: Probe, first: np.ndarray,
                  second: np.ndarray, count: tuple[int, ...], seed: int, n_boot: int
                  ) -> list[dict[str, Any]]:
    """``ours`` (decoder -> teacher's tail) against ``theirs``: per stage the relative MSEs and
    their difference (paired bootstrap), then both accuracies (``own``: the student's own
    tail) minus ``theirs`` (exact paired interval)."""
    head = {"student": ours.setting, "student_bytes": float(ours.sizes.mean()),
            "versus": theirs.name, "versus_bytes": float(theirs.sizes.mean())}
    rows = []
    for s, stage in enumerate(STAGES):
        a, b = (relative_mse(p.sse[:, s], first[:, s], second[:, s], count[s])
                for p in (ours, theirs))
        rows.append({**head, "measure": f"rel_mse_{stage}", "student_value": a,
                     "versus_value": b, "difference": a - b,
                     "difference_ci95": _rel_interval(count[s], seed, n_boot, ours.sse[:, s],
                                                      theirs.sse[:, s], first[:, s],
                                                      second[:, s])})
    for label, p in (("acc, own tail", own), ("acc, teacher's tail", ours)):
        rows.append({**head, "measure": label, "student_value": float(p.correct.mean()),
                     "versus_value": float(theirs.correct.mean()),
                     "difference": float(p.correct.mean() - theirs.correct.mean()),
                     "difference_ci95": paired_difference_interval(p.correct, theirs.correct)})
    return rows


def diagnose(teacher: nn.Module, students: Mapping[float, EntropicStudent],
             codecs: Mapping[float | str, ImageCodec], test: ImageSet, *,
             webp_qualities: Sequence[int] = WEBP_QUALITIES,
             histories: Mapping[float, Any] | None = None, monitor_images: int = 0,
             seed: int = 0, n_boot: int = N_BOOT) -> Result:
    """The diagnosis of the module docstring on ``test`` (at least 2 images) for trained,
    update()d ``students`` (by beta) and ``codecs`` (by lambda) of ``teacher``. ``histories``:
    each student's training record (:func:`~paperlab.entropic_student.train.train_stages`'s,
    by beta) whose stage-1 checks ran on ``monitor_images`` held-out images.

    Returns the rows (one per probe, then the training records' stage-1 rows), the summary
    (per beta, each stage's relative-MSE difference to the nearest WebP with its interval, and
    the accuracy of the teacher's tail minus the own tail with its exact paired interval), and
    ``data["side_by_side"]`` / ``data["tails"]``."""
    n_boot = POSITIVE_INT(n_boot, "n_boot")
    monitor_images = checks.integer(monitor_images, "monitor_images", low=0)
    check_image_set(test, "test")
    if len(test) < 2:
        raise ValueError(f"test needs at least 2 images for the bootstrap, got {len(test)}")
    probes, first, second, count = measure(teacher, students, codecs, test, webp_qualities)
    rows = [_probe_row(p, first, second, count, seed, n_boot) for p in probes]
    rows += _record_rows(histories or {}, monitor_images)
    side, tails, summary = [], [], {}
    for beta in students:
        setting = f"beta={beta:g}"
        own, ours = (next(p for p in probes if p.source == STUDENT and p.setting == setting
                          and p.features == f) for f in (OWN_TAIL, TEACHER_TAIL))
        size = float(ours.sizes.mean())
        for method in ("WebP", NEURAL_CODEC):
            theirs = [p for p in probes if p.source == method]
            if not theirs:
                continue
            near = min(theirs, key=lambda p: abs(float(p.sizes.mean()) - size))
            pair = _side_by_side(ours, own, near, first, second, count, seed, n_boot)
            side += pair
            if method == "WebP":
                for r in pair[: len(STAGES)]:
                    key = f"{r['measure']}_student_minus_webp_beta{beta:g}"
                    summary[key], summary[f"{key}_ci95"] = r["difference"], r["difference_ci95"]
        gap = float(ours.correct.mean() - own.correct.mean())
        summary[f"acc_teacher_tail_minus_own_beta{beta:g}"] = gap
        summary[f"acc_teacher_tail_minus_own_beta{beta:g}_ci95"] = paired_difference_interval(
            ours.correct, own.correct)
        tails.append({"student": setting, "bytes_per_image": size,
                      "acc_own_tail": float(own.correct.mean()),
                      "acc_teacher_tail": float(ours.correct.mean()),
                      "teacher_minus_own": gap,
                      "teacher_minus_own_ci95": summary[
                          f"acc_teacher_tail_minus_own_beta{beta:g}_ci95"]})
    notes = [
        f"{len(test):,} test images, each encoded alone (bytes = its whole bitstream or file). "
        "rel_mse_<stage> = MSE against the teacher's features on the raw image / the variance "
        "of those features (over images, positions, channels); intervals 95 %, bootstraps "
        f"over the test images ({n_boot} resamples; the relative MSE's denominator resampled "
        "too); accuracy Clopper-Pearson; side-by-side accuracy differences exact paired "
        "intervals on the same images.",
        f"Features: '{OWN_TAIL}' = what the student classifies with (the rounded latent decoded "
        f"from its bitstream); '{TEACHER_TAIL}' = the same decoder output through the teacher's "
        f"own layer2..4 and head; '{RECONSTRUCTION}' = the teacher on the decoded image; "
        f"'{AFTER_STAGE1}' = the stage-1 checks of the student's training ({monitor_images} "
        "held-out test images, disjoint from these; rounded latent; no interval on the "
        "relative MSEs).",
        STAGE_TRAINING,
        "Side by side: each student's decoder output through the teacher's tail against the "
        "WebP and the neural-codec setting nearest in mean bytes per image, both through the "
        "teacher's layers; difference = student minus that setting (relative MSE: > 0, the "
        "student's error at that stage is the larger).",
    ]
    return Result(results=rows, summary=summary,
                  data={"side_by_side": side, "tails": tails, "images": len(test)},
                  notes=notes)


# ---------------------------------------------------------------------------------------------
# the run's models


@dataclass(frozen=True)
class DiagnoseConfig:
    """One diagnosis: the reproduction's size (its models, test images, threads; ``run.betas``
    picks the students), the WebP qualities and the bootstrap resamples; ``codec_steps``: also
    train (cached) and measure one codec per ``run.lambdas`` with this many steps instead of
    the students' budget (the learning-rate decays at the same fractions of them), their
    gradients' norm clipped at ``codec_clip`` (None: as the run's codecs, ``run.codec.clip_norm``;
    0: not clipped)."""

    run: Config
    webp_qualities: tuple[int, ...] = WEBP_QUALITIES
    n_boot: int = N_BOOT
    codec_steps: int | None = None
    codec_clip: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.run, Config):
            raise TypeError(f"run must be an experiment Config, got {checks.describe(self.run)}")
        object.__setattr__(self, "webp_qualities", each(
            partial(checks.integer, low=1, high=100), empty=False)(self.webp_qualities,
                                                                   "webp_qualities"))
        object.__setattr__(self, "n_boot", POSITIVE_INT(self.n_boot, "n_boot"))
        if self.codec_steps is not None:
            object.__setattr__(self, "codec_steps",
                               POSITIVE_INT(self.codec_steps, "codec_steps"))
        if self.codec_clip is not None:
            if self.codec_steps is None:
                raise ValueError("codec_clip applies to the codecs of codec_steps; set both")
            object.__setattr__(self, "codec_clip",
                               NON_NEGATIVE(self.codec_clip, "codec_clip"))


def missing_models(cfg: Config, seed: int, data_root: str | Path | None = None) -> list[Path]:
    """The checkpoints ``paperlab run entropic_student`` with ``cfg`` and ``seed`` caches (the
    teacher, each beta's student, each lambda's codec) that are not in the cache."""
    train = load_cifar10("train", data_root, cfg.train_per_class)
    teacher = teacher_checkpoint(cfg, seed, train)
    paths = [teacher]
    paths += [student_path(teacher.name, dataclasses.replace(cfg.student, beta=b, seed=seed),
                           train) for b in cfg.betas]
    paths += [codec_path(dataclasses.replace(cfg.codec, lam=lam, seed=seed), train)
              for lam in cfg.lambdas]
    return [p for p in paths if not p.is_file()]


def recorded_students(path: Path, quick: bool) -> list[dict[str, Any]] | None:
    """The student rows of the run's record at ``path`` (setting, bytes, accuracy with its
    interval, the nearest WebP setting and the paired difference), if it is a record of that
    size; None otherwise."""
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(rec, dict) or rec.get("quick") != quick:
        return None
    keys = ("setting", "bytes_per_image", "acc", "acc_ci95", "vs_nearest_webp")
    return [{k: r.get(k) for k in keys} for r in rec.get("results", [])
            if isinstance(r, dict) and r.get("method") == STUDENT]


def run_diagnosis(ctx: RunContext, cfg: DiagnoseConfig) -> Result:
    """Load the run's teacher, students (``cfg.run.betas``) and codecs from the cache through
    the experiment's own functions and :func:`diagnose` them on the run's evaluated test images.
    The quick size trains what is not cached (a few minutes); the full size trains only the
    longer codecs of ``cfg.codec_steps`` (cached like the run's):

    Raises:
        FileNotFoundError: a full-size model is not cached (naming the files).
    """
    run = cfg.run
    if not ctx.quick:
        missing = missing_models(run, ctx.seed, ctx.data_root)
        if missing:
            raise FileNotFoundError(
                f"not cached: {', '.join(str(p) for p in missing)}; run 'paperlab run "
                "entropic_student --out results/full' (with these --betas) first, or diagnose "
                "--quick")
    seed_everything(ctx.seed)
    with torch_threads(run.threads):
        test, monitor = test_sets(ctx, run)
        teacher, students, info, train = trained_models(ctx, run, monitor)
        codecs: dict[float | str, ImageCodec] = dict(trained_codecs(run, train, ctx.seed)[0])
        longer = {}
        clip = run.codec.clip_norm if cfg.codec_clip is None else cfg.codec_clip or None
        for lam in run.lambdas if cfg.codec_steps else ():
            ccfg = dataclasses.replace(run.codec, lam=lam, seed=ctx.seed, steps=cfg.codec_steps,
                                       clip_norm=clip)
            fitted = train_codec(train, ccfg, retrain=run.retrain)
            label = f"lambda={lam:g}, {cfg.codec_steps:,} steps" + (
                f", gradient norm clipped at {clip:g}" if clip else ", not clipped")
            codecs[label] = fitted.model
            longer[label] = {"checkpoint": str(fitted.path), "cached": fitted.cached,
                             "train_seconds": round(fitted.seconds, 1),
                             "history": fitted.history}
        histories = {b: info["students"][f"{b:g}"]["history"] for b in students}
        result = diagnose(teacher, students, codecs, test, webp_qualities=cfg.webp_qualities,
                          histories=histories, monitor_images=len(monitor), seed=ctx.seed,
                          n_boot=cfg.n_boot)
    record = recorded_students(ctx.out_dir / "entropic_student.json", ctx.quick)
    result.data["run_record"] = record
    if longer:
        result.data["longer_codecs"] = longer
        result.notes.append(
            f"Codecs 'lambda=L, {cfg.codec_steps:,} steps': trained here for that many steps "
            f"(the run's codecs and students get {run.codec.steps:,}), same images, "
            "augmentation, batch and schedule fractions: the codec baseline nearer "
            "convergence, not at the students' budget.")
    result.data["checkpoints"] = {
        "teacher": info["teacher"]["checkpoint"],
        **{f"student beta={b}": s["checkpoint"] for b, s in info["students"].items()}}
    if record:
        result.notes.append("Accuracy against bytes, each student beside the nearest WebP "
                            "setting: from the run's record (entropic_student.json in this "
                            "folder, on the run's evaluated test images), not measured here.")
    return result


def diagnosis_markdown(rec: Mapping[str, Any]) -> str:
    """The diagnosis record as Markdown: the rows, the side-by-side table, the tails, and the
    run record's student rows when there are."""
    data = rec["data"]
    out = [markdown(rec),
           "## Side by side: student (decoder -> teacher's tail) minus the nearest WebP / "
           "neural codec setting", "", markdown_table(data["side_by_side"]),
           "## The student's decoder output through its own tail and the teacher's", "",
           markdown_table(data["tails"])]
    if data.get("run_record"):
        out += ["## From the run's record: accuracy against bytes beside the nearest WebP", "",
                markdown_table(data["run_record"])]
    return "\n".join(out)
