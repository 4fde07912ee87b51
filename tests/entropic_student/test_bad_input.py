"""Bad arguments at the Entropic Student's public entry points raise a named error that says what
was expected and what came; NumPy and 0-d tensor numbers are accepted as numbers.

Before these checks: ``EntropicStudent(None)`` failed with ``'NoneType' object has no attribute
'layer2'``; ``b=2.5`` with ``empty() received an invalid combination of arguments`` deep in torch;
``b=0`` built a student whose first forward pass failed; a tensor given where an ImageSet was
expected failed with ``'Tensor' object has no attribute 'fingerprint'``; a checkpoint of garbage
bytes with an unpickling error; ``StudentConfig(beta=np.float32(0.1))`` was accepted and then
failed to make its cache key (``Object of type float32 is not JSON serializable``).
"""

from __future__ import annotations

import dataclasses
import math
import zipfile

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from paperlab.entropic_student.codec import GDN, EntropyBottleneck
from paperlab.entropic_student.experiment import Config, codec_row, student_row
from paperlab.entropic_student.image_codec import ImageCodec, load_codec, save_codec
from paperlab.entropic_student.model import (
    CheckpointError,
    EntropicStudent,
    encode,
    load_student,
    make_encoder,
    save_student,
    teacher_features,
)
from paperlab.entropic_student.train import (
    CodecConfig,
    StudentConfig,
    codec_path,
    fit_codec,
    student_path,
    train_codec,
    train_stages,
    train_student,
)
from paperlab.vision.data import ImageSet
from paperlab.vision.train import QUICK_CIFAR_TEACHER

FAST = settings(max_examples=25, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
SCALARS = {"int": int, "numpy int64": np.int64, "numpy uint8": np.uint8,
           "0-d tensor": torch.tensor, "0-d array": np.array}
# widths that are not a positive integer below 256: zero, negative, fractional, too wide, not
# numbers at all
BAD_WIDTHS = st.one_of(
    st.integers(max_value=0), st.integers(min_value=256, max_value=10**9),
    st.floats(allow_nan=True, allow_infinity=True), st.none(), st.booleans(),
    st.text(max_size=3), st.just(torch.ones(2, dtype=torch.int64)))


@pytest.fixture(scope="module")
def teacher():
    torch.manual_seed(0)
    return QUICK_CIFAR_TEACHER.build().eval()


@pytest.fixture(scope="module")
def data():
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8, generator=gen)
    return ImageSet(images, torch.arange(8) % 10, tuple(str(i) for i in range(10)), "toy")


def _imagenet_stem(_: nn.Module) -> nn.Module:
    """torchvision's ResNet-18 as it comes: the stride-2 conv1 and max-pool leave stage 1 of a
    32x32 image at 8x8."""
    from torchvision.models import resnet18

    return resnet18(weights=None, num_classes=10)


def _strided_conv1(_: nn.Module) -> nn.Module:
    other = QUICK_CIFAR_TEACHER.build()
    other.conv1 = nn.Conv2d(3, 8, 3, 2, 1, bias=False)
    return other


def _grey(_: nn.Module) -> nn.Module:
    other = QUICK_CIFAR_TEACHER.build()
    other.conv1 = nn.Conv2d(1, 8, 3, 1, 1, bias=False)
    return other


def _bottleneck_blocks(_: nn.Module) -> nn.Module:
    from torchvision.models.resnet import Bottleneck

    other = QUICK_CIFAR_TEACHER.build()
    other.layer3 = nn.Sequential(Bottleneck(16, 8, 2, nn.Conv2d(16, 32, 1, 2)))
    return other


def _headless(_: nn.Module) -> nn.Module:
    other = QUICK_CIFAR_TEACHER.build()
    other.fc = nn.Sequential(nn.Linear(512, 10))
    return other


def _empty_stage(_: nn.Module) -> nn.Module:
    other = QUICK_CIFAR_TEACHER.build()
    other.layer2 = nn.Sequential()
    return other


# -- the teacher ------------------------------------------------------------------------------


@pytest.mark.parametrize("make, error, problem", [
    (lambda t: None, TypeError, r"ResNet in torchvision's layout .* got None \(NoneType\)"),
    (lambda t: "resnet18", TypeError, "got 'resnet18'"),
    (lambda t: nn.Linear(3, 10), TypeError, "this Linear has no conv1, bn1"),
    (lambda t: nn.Sequential(*t.children()), TypeError, "this Sequential has no conv1"),
    (_headless, TypeError, "teacher.fc must be a Linear"),
    (_imagenet_stem, ValueError, r"stride 1 \(the CIFAR stem.*total stem stride 4"),
    (_strided_conv1, ValueError, r"total stem stride 2 \(conv1 2 x max-pool 1\)"),
    (_grey, ValueError, "must take 3 channels"),
    (_bottleneck_blocks, TypeError, "teacher.layer3 must be a Sequential of torchvision "
                                    "BasicBlocks .* got Sequential of Bottleneck"),
    (_empty_stage, TypeError, "teacher.layer2 must be a Sequential of torchvision BasicBlocks"),
])
def test_teacher_that_is_not_a_resnet(teacher, data, make, error, problem):
    bad = make(teacher)
    with pytest.raises(error, match=problem):
        EntropicStudent(bad, b=4)
    with pytest.raises(error, match=problem):
        train_student(bad, data, StudentConfig(b=4), teacher_key="t", cache=False)
    with pytest.raises(error, match=problem):
        teacher_features(bad, torch.zeros(1, 3, 32, 32))


def test_teacher_must_be_the_students_own(teacher, data):
    student = EntropicStudent(teacher, b=4)
    other = dataclasses.replace(QUICK_CIFAR_TEACHER, num_classes=5).build()
    with pytest.raises(ValueError, match=r"5 classes\) is not the one the student was built"):
        train_stages(student, other, data, StudentConfig(b=4))
    with pytest.raises(TypeError, match="student must be an EntropicStudent, got None"):
        train_stages(None, teacher, data, StudentConfig(b=4))
    with pytest.raises(TypeError, match="normalized float images"):
        teacher_features(teacher, torch.zeros(1, 3, 32, 32, dtype=torch.uint8))


# -- widths and other numbers -----------------------------------------------------------------


@FAST
@given(b=BAD_WIDTHS)
def test_bad_bottleneck_width(teacher, b):
    for build in (lambda: EntropicStudent(teacher, b=b), lambda: make_encoder(b),
                  lambda: StudentConfig(b=b), lambda: ImageCodec(n=4, m=b),
                  lambda: CodecConfig(m=b)):
        with pytest.raises((TypeError, ValueError), match=r"\b[bm] must be") as caught:
            build()
        if isinstance(b, int) and not isinstance(b, bool):  # an integer out of range
            assert f"in [1, 255], got {b}" in str(caught.value)


@FAST
@given(n=st.one_of(st.integers(max_value=0), st.floats(), st.none(), st.booleans()))
def test_bad_channel_counts(n):
    for build in (lambda: GDN(n), lambda: EntropyBottleneck(n), lambda: ImageCodec(n=n, m=4),
                  lambda: CodecConfig(n=n)):
        with pytest.raises((TypeError, ValueError), match="channels|must be"):
            build()


@pytest.mark.parametrize("kind", sorted(SCALARS))
def test_numpy_and_tensor_widths_are_numbers(teacher, kind):
    b = SCALARS[kind](4)
    student = EntropicStudent(teacher, b=b)
    assert student.b == 4 and type(student.b) is int and student.latent_shape == (4, 8, 8)
    codec = ImageCodec(n=SCALARS[kind](3), m=b)
    assert (codec.n, codec.m) == (3, 4) and type(codec.m) is int
    assert StudentConfig(b=b).b == 4 and CodecConfig(m=b).m == 4


@FAST
@given(beta=st.floats(0, 1e3), lam=st.floats(0, 1e3),
       kind=st.sampled_from(["numpy float32", "numpy float64", "0-d tensor", "0-d array"]))
def test_numpy_and_tensor_reals_are_numbers(data, beta, lam, kind):
    wrap = {"numpy float32": np.float32, "numpy float64": np.float64,
            "0-d tensor": lambda v: torch.tensor(v, dtype=torch.float64),
            "0-d array": np.array}[kind]
    cfg = StudentConfig(beta=wrap(beta), stage1_lr=wrap(1e-3), b=np.int64(4))
    assert type(cfg.beta) is float and cfg.beta == pytest.approx(beta, rel=1e-6, abs=1e-30)
    codec_cfg = CodecConfig(lam=wrap(lam), seed=torch.tensor(3))
    assert type(codec_cfg.lam) is float and codec_cfg.seed == 3
    # the cache keys (JSON of the configs) can be made from them
    assert student_path("t", cfg, data).name.startswith("student-")
    assert codec_path(codec_cfg, data).name.startswith("codec-")


@pytest.mark.parametrize("changes, error, problem", [
    ({"beta": -0.1}, ValueError, "beta must be >= 0"),
    ({"beta": math.nan}, ValueError, "beta must be a finite number"),
    ({"beta": "0.1"}, TypeError, "beta must be a real number"),
    ({"stage1_lr": 0.0}, ValueError, "stage1_lr must be > 0"),
    ({"stage1_steps": 1.5}, TypeError, "stage1_steps must be an integer, got 1.5"),
    ({"stride": 3}, ValueError, r"stride must be one of \(2, 4\), got 3"),
    ({"batch_size": 0}, ValueError, "batch_size must be >= 1"),
    ({"stage1_decay_at": 0.5}, TypeError, "stage1_decay_at must be a tuple"),
    ({"stage2_decay_at": (0.5, 1.0)}, ValueError, r"each of stage2_decay_at must be in \(0, 1\)"),
    ({"augment": 1}, TypeError, "augment must be True or False"),
    ({"seed": -1}, ValueError, "seed must be >= 0"),
])
def test_bad_student_config(changes, error, problem):
    with pytest.raises(error, match=problem):
        StudentConfig(**changes)


@pytest.mark.parametrize("changes, error, problem", [
    ({"eval_images": 5}, ValueError, r"eval_images must be in \[10, 10000\]"),
    ({"eval_images": 100.0}, TypeError, "eval_images must be an integer"),
    ({"betas": ()}, ValueError, "betas must hold at least one value"),
    ({"betas": 0.1}, TypeError, "betas must be a tuple"),
    ({"lambdas": (3.0, -1.0)}, ValueError, "each of lambdas must be > 0"),
    ({"codecs": ("gif",)}, ValueError, "each of codecs must be one of"),
    ({"qualities": (0,)}, ValueError, r"each of qualities must be in \[1, 100\]"),
    ({"train_per_class": 0}, ValueError, "train_per_class must be >= 1"),
    ({"monitor_images": 5}, ValueError, r"monitor_images must be in \[10, 5000\]"),
    ({"eval_images": 9000, "monitor_images": 2000}, ValueError,
     r"eval_images \+ monitor_images must be <= 10000"),
    ({"codec": CodecConfig(steps=7)}, ValueError, "the codec's budget must equal the student's"),
    ({"teacher": None}, TypeError, "teacher must be a CifarResNetSpec, got None"),
    ({"student": None}, TypeError, "student must be a StudentConfig, got None"),
    ({"threads": 1.5}, TypeError, "threads must be an integer"),
])
def test_bad_experiment_config(changes, error, problem):
    with pytest.raises(error, match=problem):
        dataclasses.replace(Config.quick(), **changes)


def test_experiment_config_takes_numpy_numbers():
    cfg = dataclasses.replace(Config.quick(), eval_images=np.int64(100),
                              betas=(np.float32(0.5), torch.tensor(2.0)), train_per_class=None)
    assert cfg.eval_images == 100 and type(cfg.eval_images) is int
    assert cfg.betas == (0.5, 2.0) and all(type(b) is float for b in cfg.betas)


@pytest.mark.parametrize("chunk_size, error", [
    (0, ValueError), (-3, ValueError), (2.5, TypeError), ("2", TypeError), (None, TypeError),
    (True, TypeError),
])
def test_bad_chunk_size(student, images, chunk_size, error):
    with pytest.raises(error, match="chunk_size"):
        encode(student, images, chunk_size=chunk_size)


def test_numpy_and_tensor_chunk_sizes(student, images):
    expected = encode(student, images)
    assert encode(student, images, chunk_size=np.int64(2)) == expected
    assert encode(student, images, chunk_size=torch.tensor(1)) == expected


def test_encode_needs_a_coder(images):
    with pytest.raises(TypeError, match="EntropicStudent or an ImageCodec.*got None"):
        encode(None, images)
    with pytest.raises(TypeError, match=r"got Linear\(in_features=2.*\(Linear\)"):
        encode(nn.Linear(2, 2), images)


# -- image sets -------------------------------------------------------------------------------


@pytest.mark.parametrize("what", ["tensor", "list", "None", "dict"])
def test_tensor_where_an_image_set_is_expected(teacher, student, data, what):
    bad = {"tensor": data.images, "list": list(data.images), "None": None,
           "dict": {"images": data.images, "labels": data.labels}}[what]
    problem = "data must be an ImageSet, got " + (r"a Tensor of shape \(8, 3, 32, 32\) "
                                                  r"\(wrap images" if what == "tensor" else "")
    codec = ImageCodec(n=4, m=4)
    for call in (lambda: train_student(teacher, bad, StudentConfig(b=4), teacher_key="t"),
                 lambda: train_stages(EntropicStudent(teacher, b=4), teacher, bad,
                                      StudentConfig(b=4)),
                 lambda: fit_codec(codec, bad, CodecConfig(n=4, m=4)),
                 lambda: train_codec(bad, CodecConfig(n=4, m=4)),
                 lambda: student_path("t", StudentConfig(), bad),
                 lambda: codec_path(CodecConfig(), bad)):
        with pytest.raises(TypeError, match=problem):
            call()
    with pytest.raises(TypeError, match="test must be an ImageSet"):
        student_row(student, 0.1, bad, 1)
    with pytest.raises(TypeError, match="test must be an ImageSet"):
        codec_row(teacher, bad, "jpeg", 50, 1)


def test_image_set_labels_and_images(teacher, data):
    out_of_range = dataclasses.replace(data, labels=data.labels + 5)
    with pytest.raises(ValueError, match=r"data.labels must be in 0..9 .* got 5..12"):
        train_student(teacher, out_of_range, StudentConfig(b=4), teacher_key="t", cache=False)
    float_labels = dataclasses.replace(data, labels=data.labels.float())
    with pytest.raises(TypeError, match="data.labels must be integer class ids"):
        train_student(teacher, float_labels, StudentConfig(b=4), teacher_key="t", cache=False)
    small = ImageSet(data.images[:, :, :16, :16].contiguous(), data.labels, data.classes, "x")
    with pytest.raises(ValueError, match="data.images must be 32x32"):
        train_codec(small, CodecConfig(n=4, m=4))


# -- checkpoints ------------------------------------------------------------------------------


@FAST
@given(garbage=st.binary(max_size=300))
def test_checkpoint_of_garbage_bytes(tmp_path_factory, garbage):
    path = tmp_path_factory.mktemp("garbage") / "student.pt"
    path.write_bytes(garbage)
    for load, writer in ((load_student, "save_student"), (load_codec, "save_codec")):
        with pytest.raises(CheckpointError, match=rf"{path}.*written by {writer}"):
            load(path)


def test_checkpoints_of_the_wrong_kind(tmp_path, student):
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load_student(tmp_path / "missing.pt")
    zipped = tmp_path / "other.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("notes.txt", "hello")
    with pytest.raises(CheckpointError, match="without torch.save's data.pkl"):
        load_student(zipped)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(CheckpointError,
                       match="expected the fields b, stride, num_classes, widths, blocks, state"):
        load_student(other)
    good = tmp_path / "student.pt"
    save_student(student, good)
    with pytest.raises(CheckpointError, match="expected the fields n, m, state"):
        load_codec(good)  # a student is not a codec
    for b, problem in ((0, r"b must be an integer in 1..255, got 0"),
                       (4.0, r"b must be an integer in 1..255, got 4.0"),
                       (4, r"does not fit a EntropicStudent .*shape: encoder.0.weight")):
        payload = torch.load(good, weights_only=True)
        payload["b"] = b
        torch.save(payload, tmp_path / "edited.pt")
        with pytest.raises(CheckpointError, match=problem):
            load_student(tmp_path / "edited.pt")
    for key, value, problem in (
            ("stride", 3, "stride must be one of"),
            ("stride", 8, r"stride must be an integer in 2..4"),
            ("widths", [8, 16, 32], r"widths must be 4 integers in 1..65536, got \[8, 16, 32\]"),
            ("blocks", [1, 1, 0], "blocks must be 3 integers"),
            ("widths", [8, 16, 32, 128], r"does not fit .*shape: layer4")):
        payload = torch.load(good, weights_only=True)
        payload[key] = value
        torch.save(payload, tmp_path / "edited.pt")
        with pytest.raises(CheckpointError, match=problem):
            load_student(tmp_path / "edited.pt")
    codec_file = tmp_path / "codec.pt"
    save_codec(ImageCodec(n=4, m=4), codec_file)
    payload = torch.load(codec_file, weights_only=True)
    del payload["state"]["decoder.0.weight"]
    torch.save(payload, codec_file)
    with pytest.raises(CheckpointError, match="missing: decoder.0.weight"):
        load_codec(codec_file)
    with pytest.raises(TypeError, match="model must be an EntropicStudent"):
        save_student(ImageCodec(n=4, m=4), tmp_path / "x.pt")


def test_stage1_steps_option_keeps_the_budgets_equal():
    from paperlab.entropic_student.experiment import Config

    cfg = Config.full().with_options({"stage1_steps": 2400})
    assert cfg.student.stage1_steps == 2400 and cfg.student.stage2_steps == 400
    assert cfg.codec.steps == cfg.student.steps == 2800
    assert cfg.codec.clip_norm == 1.0  # the run's codecs train with the clipped recipe
    with pytest.raises(ValueError, match="stage1_steps"):
        Config.full().with_options({"stage1_steps": -1})
