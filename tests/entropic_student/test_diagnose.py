"""The diagnosis: the relative MSE against a hand computation, zero for the teacher's own
features, bad input refused, agreement with the training's held-out check, and the whole
diagnosis on tiny untrained models and synthetic images."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from paperlab.core.seed import torch_threads
from paperlab.entropic_student.diagnose import (
    AFTER_STAGE1,
    OWN_TAIL,
    RECONSTRUCTION,
    TEACHER_TAIL,
    DiagnoseConfig,
    diagnose,
    diagnosis_markdown,
    recorded_students,
    relative_mse,
    stage_sums,
)
from paperlab.entropic_student.experiment import NEURAL_CODEC
from paperlab.vision.data import ImageSet


def test_relative_mse_by_hand():
    reference = [torch.tensor([[1.0, 2.0], [3.0, 4.0]]),
                 torch.tensor([[[0.0, 2.0]], [[0.0, 2.0]]])]  # a second stage, (N, 1, 2)
    features = [torch.tensor([[2.0, 2.0], [3.0, 3.0]]),
                torch.tensor([[[1.0, 2.0]], [[0.0, 0.0]]])]
    sse, first, second, count = stage_sums(features, reference)
    np.testing.assert_array_equal(sse, [[1.0, 1.0], [1.0, 4.0]])
    np.testing.assert_array_equal(first, [[3.0, 2.0], [7.0, 2.0]])
    np.testing.assert_array_equal(second, [[5.0, 4.0], [25.0, 4.0]])
    assert count == (2, 2)
    # stage 1: MSE 2/4 = 0.5; values 1, 2, 3, 4 have mean 2.5 and variance 1.25
    assert relative_mse(sse[:, 0], first[:, 0], second[:, 0], count[0]) == pytest.approx(0.4)
    # stage 2: MSE 5/4; values 0, 2, 0, 2 have variance 1
    assert relative_mse(sse[:, 1], first[:, 1], second[:, 1], count[1]) == pytest.approx(1.25)


def test_the_teachers_own_features_have_zero_error():
    gen = torch.Generator().manual_seed(0)
    reference = [torch.randn(5, 3, 4, 4, generator=gen), torch.randn(5, 7, generator=gen)]
    sse, first, second, count = stage_sums([r.clone() for r in reference], reference)
    assert not sse.any()
    for s in range(2):
        assert relative_mse(sse[:, s], first[:, s], second[:, s], count[s]) == 0.0
    # predicting the reference's mean everywhere scores 1
    mean = [torch.full_like(r, float(r.double().mean())) for r in reference]
    sse, first, second, count = stage_sums(mean, reference)
    assert relative_mse(sse[:, 0], first[:, 0], second[:, 0], count[0]) == pytest.approx(1.0)


def test_bad_input_is_refused():
    a = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="differ in shape"):
        stage_sums([a], [torch.zeros(2, 4)])
    with pytest.raises(ValueError, match="stages"):
        stage_sums([a, a], [a])
    with pytest.raises(ValueError, match="same N"):
        stage_sums([a, torch.zeros(3, 3)], [a, torch.zeros(3, 3)])
    with pytest.raises(ValueError, match="same N"):
        stage_sums([torch.zeros(3)], [torch.zeros(3)])
    with pytest.raises(ValueError, match="at least one"):
        stage_sums([], [])
    with pytest.raises(TypeError, match="list of tensors"):
        stage_sums(a, [a])
    with pytest.raises(TypeError, match="list of tensors"):
        stage_sums([np.zeros((2, 3))], [a])
    ones = np.ones(2)
    with pytest.raises(ValueError, match="variance"):
        relative_mse(ones, ones, ones, 1)  # values all 1: no variance
    with pytest.raises(ValueError, match="one length"):
        relative_mse(ones, np.ones(3), ones, 1)
    with pytest.raises(ValueError, match="one length"):
        relative_mse(np.ones((2, 2)), ones, ones, 1)
    with pytest.raises(ValueError, match="count"):
        relative_mse(ones, ones, 2 * ones, 0)
    with pytest.raises(ValueError, match="webp_qualities"):
        DiagnoseConfig(run=_quick_config(), webp_qualities=(0,))
    with pytest.raises(TypeError, match="experiment Config"):
        DiagnoseConfig(run=None)
    with pytest.raises(ValueError, match="codec_steps"):
        DiagnoseConfig(run=_quick_config(), codec_steps=0)
    with pytest.raises(ValueError, match="codec_clip applies to the codecs of codec_steps"):
        DiagnoseConfig(run=_quick_config(), codec_clip=1.0)
    with pytest.raises(ValueError, match="codec_clip"):
        DiagnoseConfig(run=_quick_config(), codec_steps=10, codec_clip=-1.0)
    assert DiagnoseConfig(run=_quick_config(), codec_steps=10, codec_clip=0).codec_clip == 0


def _quick_config():
    from paperlab.entropic_student.experiment import Config

    return Config.quick()


@pytest.fixture(scope="module")
def toy():
    """A tiny untrained teacher, two students and a codec of it (tables frozen), 12 images."""
    from paperlab.entropic_student.image_codec import ImageCodec
    from paperlab.entropic_student.model import EntropicStudent
    from paperlab.vision.models import CifarResNetSpec

    with torch_threads(1):
        torch.manual_seed(0)
        teacher = CifarResNetSpec(widths=(4, 8, 8, 8), blocks=(1, 1, 1, 1)).build().eval()
        students = {0.5: EntropicStudent(teacher, b=4).eval(),
                    4.0: EntropicStudent(teacher, b=2).eval()}
        codec = ImageCodec(n=8, m=8).eval()
        for model in (*students.values(), codec):
            model.bottleneck.update()
    gen = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (12, 3, 32, 32), dtype=torch.uint8, generator=gen)
    test = ImageSet(images, torch.arange(12) % 10, tuple(map(str, range(10))), "synthetic")
    return teacher, students, {30.0: codec}, test


def test_the_diagnosis_on_tiny_models(toy):
    from paperlab.entropic_student.baselines import available_codecs
    from paperlab.entropic_student.train import relative_errors
    from paperlab.vision.train import predict

    teacher, students, codecs, test = toy
    histories = {0.5: {"relative_errors": {f"layer{k}": 0.1 * k for k in range(1, 5)},
                       "acc_after_stage1": 0.3},
                 4.0: None}  # a cached student without a record of its checks
    with torch_threads(1):
        result = diagnose(teacher, students, codecs, test, webp_qualities=(10, 60),
                          histories=histories, monitor_images=10, n_boot=50)
        reference = {b: relative_errors(s, teacher, test.images) for b, s in students.items()}
        raw_correct = (predict(teacher, test.images) == test.labels).float().mean()
    webp = "webp" in available_codecs(("webp",))
    rows = result.results
    assert len(rows) == 1 + 2 * 2 + 1 + 2 * webp + 1
    raw = rows[0]
    assert raw["features"] == RECONSTRUCTION and raw["bytes_per_image"] == 3072
    assert all(raw[f"rel_mse_layer{k}"] == 0 for k in range(1, 5))
    assert raw["acc"] == pytest.approx(float(raw_correct))
    for beta in students:
        own, frozen = (next(r for r in rows if r["setting"] == f"beta={beta:g}"
                            and r["features"] == f) for f in (OWN_TAIL, TEACHER_TAIL))
        assert own["bytes_per_image"] == frozen["bytes_per_image"] > 15  # header + checksum
        for k in range(1, 5):
            # an untrained student's tail is the teacher's copy: both tails give the same
            assert own[f"rel_mse_layer{k}"] == pytest.approx(frozen[f"rel_mse_layer{k}"])
            # the training's held-out check, on these images, agrees
            assert own[f"rel_mse_layer{k}"] == pytest.approx(reference[beta][f"layer{k}"],
                                                             rel=1e-5)
            ci = own[f"rel_mse_layer{k}_ci95"]
            assert ci["lo"] <= ci["hi"] and ci["lo"] > 0
        assert own["acc"] == frozen["acc"]
        gap = result.summary[f"acc_teacher_tail_minus_own_beta{beta:g}"]
        ci = result.summary[f"acc_teacher_tail_minus_own_beta{beta:g}_ci95"]
        assert gap == 0 and ci["lo"] <= 0 <= ci["hi"]
    record = next(r for r in rows if r["features"] == AFTER_STAGE1)
    assert record["setting"] == "beta=0.5" and record["rel_mse_layer3"] == pytest.approx(0.3)
    assert record["acc_ci95"]["lo"] < 0.3 < record["acc_ci95"]["hi"]
    side = result.data["side_by_side"]
    assert len(side) == len(students) * (1 + webp) * 6
    for r in side:
        if r["measure"].startswith("rel_mse"):
            assert r["difference"] == pytest.approx(r["student_value"] - r["versus_value"])
            assert r["difference_ci95"]["lo"] <= r["difference_ci95"]["hi"]
    if webp:
        assert "rel_mse_layer1_student_minus_webp_beta0.5_ci95" in result.summary
    assert [t["student"] for t in result.data["tails"]] == ["beta=0.5", "beta=4"]


def test_a_codec_under_a_label_of_its_own_is_measured_like_the_others(toy):
    """A longer-trained codec is keyed by its label (``codec_steps``): same probe, own row."""
    teacher, students, codecs, test = toy
    (codec,) = codecs.values()
    with torch_threads(1):
        result = diagnose(teacher, {}, {30.0: codec, "lambda=30, 2 steps": codec}, test,
                          webp_qualities=(10,), n_boot=20)
    rows = {r["setting"]: r for r in result.results if r["source"] == NEURAL_CODEC}
    assert set(rows) == {"lambda=30", "lambda=30, 2 steps"}
    same, labelled = rows["lambda=30"], rows["lambda=30, 2 steps"]
    assert {k: v for k, v in same.items() if k != "setting"} == {
        k: v for k, v in labelled.items() if k != "setting"}


def test_the_diagnosis_refuses_models_that_do_not_fit(toy):
    from paperlab.entropic_student.model import EntropicStudent
    from paperlab.vision.models import CifarResNetSpec

    teacher, students, codecs, test = toy
    with pytest.raises(TypeError, match="students must map"):
        diagnose(teacher, {0.1: codecs[30.0]}, codecs, test)
    with pytest.raises(TypeError, match="codecs must map"):
        diagnose(teacher, students, [codecs[30.0]], test)
    other = CifarResNetSpec(widths=(6, 8, 8, 8), blocks=(1, 1, 1, 1)).build()
    with pytest.raises(ValueError, match="not built from this teacher"):
        diagnose(teacher, {0.1: EntropicStudent(other, b=2)}, {}, test)
    one = ImageSet(test.images[:1], test.labels[:1], test.classes, "one")
    with pytest.raises(ValueError, match="at least 2 images"):
        diagnose(teacher, students, codecs, one)
    with pytest.raises(ValueError, match="webp_qualities"):
        diagnose(teacher, {}, {}, test, webp_qualities=(101,))
    with pytest.raises(TypeError, match="ImageSet"):
        diagnose(teacher, {}, {}, test.images)


def test_the_record_and_its_markdown(toy, tmp_path):
    from paperlab import entropic_student
    from paperlab.core.results import RunContext, record

    teacher, _, codecs, test = toy
    with torch_threads(1):
        result = diagnose(teacher, {}, codecs, test, webp_qualities=(30,), n_boot=20)
    run = tmp_path / "entropic_student.json"
    run.write_text(json.dumps({"quick": True, "results": [
        {"method": "Entropic Student", "setting": "beta=0.02", "bytes_per_image": 450.0,
         "acc": 0.7, "acc_ci95": {"lo": 0.6, "hi": 0.8}, "vs_nearest_webp": "q=75 (341 B)"},
        {"method": "WebP", "setting": "q=5"}]}))
    assert recorded_students(run, quick=True) == [
        {"setting": "beta=0.02", "bytes_per_image": 450.0, "acc": 0.7,
         "acc_ci95": {"lo": 0.6, "hi": 0.8}, "vs_nearest_webp": "q=75 (341 B)"}]
    assert recorded_students(run, quick=False) is None  # another size's record
    assert recorded_students(tmp_path / "none.json", quick=True) is None
    result.data["run_record"] = recorded_students(run, quick=True)
    rec = record(entropic_student.SYSTEM, RunContext("entropic_student", quick=True), result, 1.0)
    text = diagnosis_markdown(json.loads(json.dumps(rec)))
    assert "## Side by side" in text and "q=75 (341 B)" in text


def test_the_command_refuses_uncached_full_size_models(monkeypatch, tmp_path, capsys):
    from paperlab import cli
    from paperlab.entropic_student import diagnose as module

    monkeypatch.setattr(module, "missing_models",
                        lambda cfg, seed, root: [Path("/cache/student-x.pt")])
    assert cli.main(["entropic-student", "diagnose", "--out", str(tmp_path)]) == 3
    err = capsys.readouterr().err
    assert "student-x.pt" in err and "paperlab run entropic_student" in err
    assert not list(tmp_path.iterdir())
    with pytest.raises(SystemExit):
        cli.main(["entropic-student", "diagnose", "--betas", "0,1"])
    with pytest.raises(SystemExit):
        cli.main(["entropic-student", "diagnose", "--webp-qualities", "200"])
