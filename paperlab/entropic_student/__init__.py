"""Entropic Student: supervised compression for split computing (Matsubara et al., WACV 2022),
on the shared vision substrate (:mod:`paperlab.vision`), with real bitstreams.

Public API::

    from paperlab import entropic_student as es
    student = es.EntropicStudent(teacher, b=24, stride=4)  # teacher: a CIFAR-stem ResNet
    student.bottleneck.update()                           # freeze the coding tables
    data = es.encode(student, images)                     # edge: uint8 (N, 3, 32, 32) -> bytes
    labels = es.decode_and_classify(student, data)        # server: bytes -> (N,) class ids

A bitstream that was not written for its header (empty, random, another image count, truncated,
bytes left over) raises ``es.BitstreamError``; ``encode`` works ``chunk_size`` images at a time.

The public names are imported on first use, so importing this package imports no torch.
"""

from collections.abc import Mapping
from typing import Any

from paperlab.core.claims import (
    Bound,
    Claim,
    NotMeasured,
    Verdict,
    difference,
    interval_of,
)
from paperlab.core.lazy import lazy_exports
from paperlab.core.registry import Option, System, Tool, comma_list


def _positive_floats(text: str) -> tuple[float, ...]:
    """``"0.1,0.4"`` -> ``(0.1, 0.4)``, each > 0."""
    values = tuple(float(v) for v in comma_list(text))
    if not values or not all(v > 0 for v in values):
        raise ValueError(f"expected positive numbers, got {text!r}")
    return values


_NEAR = ("bytes_student_at_teacher_minus_2pts", "bytes_webp_at_teacher_minus_2pts")
# WebP's bytes minus the student's to come within 2 points of the teacher (a method that never
# does counts the raw 3,072 B image), and its 95 % interval: a bootstrap over the test images
# of the whole procedure (experiment.bytes_saved_near_teacher).
_SAVED = "bytes_saved_vs_webp_at_teacher_minus_2pts"


def _fewer_bytes_than_webp(summary: Mapping[str, Any]) -> Verdict:
    """Reproduced if the student comes within 2 points of the teacher with fewer real bytes per
    image than WebP needs for that (or WebP never does); a student that never gets there (the
    run wrote None) did not reproduce it. Keys absent altogether: not measured. With the
    interval of the bytes saved: within noise if it holds 0, else its side decides."""
    if any(k not in summary for k in _NEAR):
        raise NotMeasured(f"no {' or '.join(k for k in _NEAR if k not in summary)} in the "
                          "summary")
    ci = interval_of(summary, f"{_SAVED}_ci95")
    if ci is not None:
        if ci.holds(0.0):
            return Verdict.WITHIN_NOISE
        return Verdict.REPRODUCED if ci.lo > 0 else Verdict.NOT_REPRODUCED
    ours, webp = (summary[k] for k in _NEAR)
    if ours is None:
        return Verdict.NOT_REPRODUCED
    return Verdict.REPRODUCED if webp is None or ours < webp else Verdict.NOT_REPRODUCED


def _fewer_bytes_shown(summary: Mapping[str, Any]) -> str:
    ours, webp = (summary.get(k) for k in _NEAR)
    shown = f"student {ours or 'never'} vs WebP {webp or 'never'} B"
    saved = summary.get(_SAVED)
    return shown if saved is None else f"{shown}: {saved:+.0f} B saved (never = raw 3,072 B)"


# Accuracies are fractions; bytes are real bitstream lengths per image. The accuracy gaps'
# intervals are bootstraps over the test images of the best setting at <= 300 B per method
# (experiment.acc_gap_at_interval).
_CLAIMS = (
    Claim("beats_webp_at_300_bytes",
          "At <= 300 bytes per image the student is more accurate than WebP feeding the teacher",
          paper="better rate-accuracy than input compression at every rate (ImageNet)",
          rule=Bound(difference("acc_student_at_300_bytes", "acc_webp_at_300_bytes",
                                ci="acc_student_minus_webp_at_300_bytes_ci95"),
                     limit=0.0)),
    Claim("beats_neural_codec_at_300_bytes",
          "At <= 300 bytes per image the student is more accurate than a factorized-prior neural "
          "image codec feeding the teacher",
          paper="better rate-accuracy than neural image codecs (factorized prior, hyperprior)",
          rule=Bound(difference("acc_student_at_300_bytes", "acc_neural_codec_at_300_bytes",
                                ci="acc_student_minus_neural_codec_at_300_bytes_ci95"),
                     limit=0.0)),
    Claim("fewer_bytes_near_teacher",
          "Within 2 points of the teacher the student sends fewer bytes than WebP",
          paper="fewer bytes than JPEG/WebP at equal accuracy",
          rule=_fewer_bytes_than_webp,
          keys=("acc_teacher",),
          ours=_fewer_bytes_shown,
          ci=f"{_SAVED}_ci95",
          how="reproduced if the student's bytes are fewer (a student that never comes within "
              "2 points is not reproduced); judged on the 95% interval of WebP's bytes minus "
              "the student's (never = the raw 3,072 B): within noise if it holds 0"),
)

SYSTEM = System(
    name="entropic_student",
    paper="Supervised Compression for Resource-Constrained Edge Computing Systems "
          "(Matsubara, Yang, Levorato, Mandt, WACV 2022)",
    claim="A student whose first stage is a learned encoder + entropy-coded bottleneck, distilled "
          "from the teacher, classifies better than input compression (JPEG/WebP) feeding the "
          "teacher at every rate, with lower end-to-end latency",
    run="paperlab.entropic_student.experiment:run",
    bench="paperlab.entropic_student.experiment:bench",
    options=(
        Option("retrain", int, "1: retrain the students and neural codecs even if cached "
               "(the shared teacher is not retrained)",
               choices=(0, 1)),
        Option("betas", _positive_floats, "rate weights beta of the students",
               metavar="B1,B2,..."),
        Option("lambdas", _positive_floats, "rate weights lambda of the neural image codecs",
               metavar="L1,L2,..."),
        Option("eval_images", int, "test images evaluated (of 10,000)", min=10, max=10000),
        Option("stage1_steps", int, "the students' stage-1 (head distillation) Adam steps "
               "(full 600, quick 150); the codecs get the students' new total of steps",
               min=1, metavar="N"),
        Option("serve", int, "1: run the two-process loopback socket demo instead",
               choices=(0, 1)),
    ),
    claims=_CLAIMS,
    tools=(
        Tool("encode", "images (any size, any format Pillow reads) -> one bitstream per image "
             "or one container", "paperlab.entropic_student.cli:encode_tool"),
        Tool("decode", "bitstreams -> the predicted label of each image (here or via a server)",
             "paperlab.entropic_student.cli:decode_tool"),
        Tool("serve", "the server side of the split as a socket server, until Ctrl-C",
             "paperlab.entropic_student.cli:serve_tool"),
        Tool("diagnose", "the run's students, codecs and WebP side by side on the teacher's "
             "stage features (relative MSE per stage, tail frozen vs fine-tuned)",
             "paperlab.entropic_student.cli:diagnose_tool"),
    ),
)

_EXPORTS = {
    **dict.fromkeys(("GDN", "BitstreamError", "EntropyBottleneck", "pack", "unpack"),
                    "paperlab.entropic_student.codec"),
    **dict.fromkeys(("ImageCodec", "decode_images", "load_codec", "save_codec"),
                    "paperlab.entropic_student.image_codec"),
    **dict.fromkeys(
        ("CheckpointError", "EntropicStudent", "check_image_set", "check_images",
         "check_teacher", "decode_and_classify", "decode_latent", "encode", "load_student",
         "quantized_latent", "save_student", "teacher_features"),
        "paperlab.entropic_student.model"),
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = ["SYSTEM", *_EXPORTS]
